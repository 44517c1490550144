"""The code-quality gate (run ODC's code analysis of a revision, wait, fail on the user's thresholds) and a
report of findings and trends for report tasks.

The gate is an ``OdcOperationOperator``: it pushes the analysis key and a Portal link, waits (deferrable when
asked, as the release operators), and on ``Completed`` judges the analysis (``airflow_provider_odc.quality_gate``).
It logs the most severe findings with their patterns, returns a compact summary (XCom), and fails with the
thresholds that broke. ``Failed`` or ``Timeout`` fails with what ODC said.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.sdk import BaseOperator

from airflow_provider_odc.api.code_quality import SEVERITIES, CodeAnalysis, Finding
from airflow_provider_odc.exceptions import OdcError
from airflow_provider_odc.hooks.odc import OdcHook
from airflow_provider_odc.links import portal_url
from airflow_provider_odc.operators.lifecycle import OdcOperationOperator
from airflow_provider_odc.quality_gate import GateVerdict, QualityThresholds, judge, summary

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_odc.attach import TryMemory


TARGET_XCOM_KEY = "code_analysis_target"


class OdcCodeQualityGateFailed(OdcError):
    """The analysis completed, and broke at least one of the gate's thresholds."""

    def __init__(self, text: str, summary: dict[str, Any]) -> None:
        super().__init__(text)
        self.summary = summary


class OdcCodeQualityGateOperator(OdcOperationOperator):
    """Analyse a revision's code quality in ODC and fail when it breaks a threshold. Returns a summary.

    :param asset: asset key or exact name. Templated.
    :param revision: number, ``"latest"`` (default) or ``"highest-tag"``. Templated.
    :param min_quality_score: fail below this quality score (0-100). Default: not checked.
    :param max_critical: fail with more Critical findings than this. Default 0; None: not checked.
    :param max_high: fail with more High findings than this. Default: not checked.
    :param baseline_revision: compare with the findings ODC recorded for this revision (number,
        ``"highest-tag"`` for the last release, or ``"latest"``); it must have been analysed. Templated.
    :param max_new_findings: fail with more findings than this that the baseline did not have (needs
        ``baseline_revision``). Default: not checked.
    :param new_finding_severities: the severities that count as new findings. Default: all.
    :param fail_on_breach: fail the task on a breach (default); False only reports it (``passed: false``).
    :param top_findings: how many of the most severe findings to log (new ones first). Default 10.

    The summary (return value, XCom): ``analysisKey``, ``assetKey``, ``revision``, ``passed``,
    ``qualityScore``, ``counts`` by severity, ``findings``, ``baselineRevision``, ``newFindings``,
    ``breaches`` and the five most severe findings (``top``).
    """

    kind = "code_analysis"
    template_fields: Sequence[str] = ("asset", "revision", "baseline_revision")

    def __init__(
        self,
        *,
        asset: str,
        revision: int | str = "latest",
        min_quality_score: float | None = None,
        max_critical: int | None = 0,
        max_high: int | None = None,
        baseline_revision: int | str | None = None,
        max_new_findings: int | None = None,
        new_finding_severities: Sequence[str] = SEVERITIES,
        fail_on_breach: bool = True,
        top_findings: int = 10,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if max_new_findings is not None and baseline_revision is None:
            raise ValueError("max_new_findings needs a baseline_revision to compare with.")
        self.asset = asset
        self.revision = revision
        self.baseline_revision = baseline_revision
        self.thresholds = QualityThresholds(
            min_quality_score=min_quality_score,
            max_critical=max_critical,
            max_high=max_high,
            max_new_findings=max_new_findings,
            new_finding_severities=tuple(new_finding_severities),
        )
        self.fail_on_breach = fail_on_breach
        self.top_findings = top_findings
        self._target: dict[str, Any] = {}
        self._ti: Any = None

    def start(self, hook: OdcHook, memory: TryMemory) -> tuple[str, str]:
        asset = hook.find_asset(self.asset)
        revision = hook.resolve_revision(asset.asset_key, self.revision)
        baseline = None
        if self.baseline_revision is not None:
            baseline = hook.resolve_revision(asset.asset_key, self.baseline_revision)
        self._target = {"asset_key": asset.asset_key, "name": asset.name, "revision": revision, "baseline": baseline}
        self.log.info("Analysing the code quality of %s revision %s.", asset.name, revision)
        key = hook.start_code_analysis(asset.asset_key, revision, memory=memory)
        return key, portal_url(hook.settings.origin, asset.asset_key)

    def defer(self, *, trigger: Any, method_name: str, kwargs: dict[str, Any] | None = None, **rest: Any) -> NoReturn:
        """Carry what the analysis is of (asset, revision, baseline) to the resumed task: in the deferral's
        kwargs, and in an XCom (``dag.test()`` resumes with the trigger's event alone)."""
        if self._ti is not None:
            self._ti.xcom_push(key=TARGET_XCOM_KEY, value=self._target)
        super().defer(
            trigger=trigger, method_name=method_name, kwargs={**(kwargs or {}), "target": self._target}, **rest
        )

    def execute(self, context: Context) -> Any:
        self.wait_for_completion = True  # a gate without a verdict is no gate
        self._ti = context["ti"]
        key = super().execute(context)
        return self._judge(key)

    def execute_complete(self, context: Context, event: dict[str, Any], target: dict[str, Any] | None = None) -> Any:
        key = super().execute_complete(context, event)
        if target is None:
            ti = context["ti"]
            target = ti.xcom_pull(task_ids=ti.task_id, key=TARGET_XCOM_KEY, map_indexes=ti.map_index)
        if not isinstance(target, dict) or "asset_key" not in target:
            raise OdcError(f"Code analysis {key} ended, but which revision it analysed was lost; run the task again.")
        self._target = target
        return self._judge(key)

    def _judge(self, key: str) -> dict[str, Any]:
        hook = OdcHook(self.odc_conn_id)
        target = self._target
        analysis = hook.get_code_analysis(key)
        baseline_findings = None
        if target.get("baseline") is not None:
            baseline_findings = hook.revision_findings(target["asset_key"], target["baseline"])
        verdict = judge(analysis, self.thresholds, baseline=baseline_findings, top=self.top_findings)
        self._log_findings(hook, analysis, verdict)
        result = summary(
            analysis,
            verdict,
            asset_key=target["asset_key"],
            revision=target["revision"],
            baseline_revision=target.get("baseline"),
        )
        if verdict.passed:
            self.log.info("The code quality gate passed.")
            return result
        text = (
            f"The code quality gate failed for {target.get('name')} revision {target.get('revision')} "
            f"(ODC code analysis {key}): " + "; ".join(verdict.breaches) + "."
        )
        if not self.fail_on_breach:
            self.log.warning("%s fail_on_breach=False: reporting only.", text)
            return result
        raise OdcCodeQualityGateFailed(text, result)

    def _log_findings(self, hook: OdcHook, analysis: CodeAnalysis, verdict: GateVerdict) -> None:
        counts = ", ".join(f"{n} {s}" for s, n in analysis.counts.items())
        self.log.info(
            "ODC code analysis %s: quality score %s; findings: %s.",
            analysis.analysis_key,
            analysis.quality_score,
            counts,
        )
        if verdict.new_findings is not None:
            self.log.info("%d findings are new since the baseline.", len(verdict.new_findings))
        names = pattern_names(hook, verdict.top)
        new = {f.identity for f in verdict.new_findings or []}
        for finding in verdict.top:
            self.log.info(
                "%s%s %s in %s %s: pattern %s (%s)%s",
                "NEW " if finding.identity in new else "",
                finding.severity,
                finding.category,
                finding.element_type,
                hook.scrub(finding.element_name),
                finding.pattern_id,
                hook.scrub(names.get(finding.pattern_id or "", "name unknown")),
                f", in {hook.scrub(finding.where_element_name)}" if finding.where_element_name else "",
            )


def pattern_names(hook: OdcHook, findings: list[Finding]) -> dict[str, str]:
    """The names of the findings' patterns; a pattern that cannot be read is left out (the id is shown)."""
    names: dict[str, str] = {}
    for pattern_id in dict.fromkeys(f.pattern_id for f in findings if f.pattern_id):
        try:
            pattern = hook.get_code_pattern(pattern_id)
        except OdcError as exc:
            hook.log.warning("Pattern %s could not be read: %s", pattern_id, exc)
            continue
        if pattern is not None and pattern.name:
            names[pattern_id] = pattern.name
    return names


class OdcCodeQualityReportOperator(BaseOperator):
    """Read ODC's findings and their trend for a report; returns a compact, JSON-ready dict (XCom).

    :param assets: asset keys or exact names (None: every asset the API client sees). Templated.
    :param severities: only these severities (``Critical``, ``High``, ``Medium``, ``Low``). Templated.
    :param since: ISO date-time the findings and trend start at (ODC's default: 14 days ago). Templated.
    :param to: ISO date-time they end at (default: now). Templated.
    :param latest_only: only the findings of each asset's latest analysis (default True).
    :param top_patterns: how many of the most frequent patterns to list. Default 10.
    :param odc_conn_id: the ``odc`` connection.

    Returns ``{"findings": n, "bySeverity": {...}, "topPatterns": [{"patternId",
    "name", "count"}], "trend": [{"date", "open", "snoozed", "resolved", "dismissed", "closed"}]}``.
    """

    template_fields: Sequence[str] = ("assets", "severities", "since", "to")
    ui_color = "#c9e4ff"

    def __init__(
        self,
        *,
        assets: Sequence[str] | None = None,
        severities: Sequence[str] | None = None,
        since: str | None = None,
        to: str | None = None,
        latest_only: bool = True,
        top_patterns: int = 10,
        odc_conn_id: str = OdcHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.assets = assets
        self.severities = severities
        self.since = since
        self.to = to
        self.latest_only = latest_only
        self.top_patterns = top_patterns
        self.odc_conn_id = odc_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        hook = OdcHook(self.odc_conn_id)
        keys = [hook.find_asset(asset).asset_key for asset in self.assets] if self.assets else None
        severities = list(self.severities) if self.severities else None
        findings = hook.list_code_findings(
            asset_keys=keys, severities=severities, is_latest=self.latest_only, since=self.since, to=self.to
        )
        trend = hook.get_findings_trend(asset_keys=keys, severities=severities, since=self.since, to=self.to)
        report = findings_report(hook, findings, trend, self.top_patterns)
        self.log.info(
            "%d findings (%s); %d trend points.",
            report["findings"],
            ", ".join(f"{n} {s}" for s, n in report["bySeverity"].items()),
            len(report["trend"]),
        )
        return report


def findings_report(hook: OdcHook, findings: list[Finding], trend: list[Any], top_patterns: int) -> dict[str, Any]:
    by_pattern = Counter(f.pattern_id for f in findings if f.pattern_id)
    top = [pattern_id for pattern_id, _ in by_pattern.most_common(top_patterns)]
    names = pattern_names(hook, [f for f in findings if f.pattern_id in top][: len(findings)])
    return {
        "findings": len(findings),
        "bySeverity": {s: sum(1 for f in findings if f.severity == s) for s in SEVERITIES},
        "topPatterns": [{"patternId": p, "name": names.get(p), "count": by_pattern[p]} for p in top],
        "trend": [
            {
                "date": point.analysis_date,
                "open": point.open,
                "snoozed": point.snoozed,
                "resolved": point.resolved,
                "dismissed": point.dismissed,
                "closed": point.closed,
            }
            for point in trend
        ],
    }
