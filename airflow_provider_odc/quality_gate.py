"""The code-quality gate's verdict: which of the user's thresholds a finished analysis breaks. No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow_provider_odc.api.code_quality import SEVERITIES, CodeAnalysis, Finding, most_severe, new_since


@dataclass(frozen=True)
class QualityThresholds:
    """What fails the gate; None switches a check off.

    :param min_quality_score: the analysis' quality score (0-100) must be at least this.
    :param max_critical: at most this many Critical findings.
    :param max_high: at most this many High findings.
    :param max_new_findings: at most this many findings (of ``new_finding_severities``) that the baseline
        revision did not have. Needs a baseline revision.
    :param new_finding_severities: which severities count as new findings (default: all).
    """

    min_quality_score: float | None = None
    max_critical: int | None = 0
    max_high: int | None = None
    max_new_findings: int | None = None
    new_finding_severities: tuple[str, ...] = SEVERITIES

    def __post_init__(self) -> None:
        for name in ("max_critical", "max_high", "max_new_findings"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"{name} must be None or an integer >= 0, not {value!r}.")
        score = self.min_quality_score
        if score is not None and (
            isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 100
        ):
            raise ValueError(f"min_quality_score must be None or a number from 0 to 100, not {score!r}.")
        unknown = [s for s in self.new_finding_severities if s not in SEVERITIES]
        if unknown:
            raise ValueError(f"new_finding_severities: {unknown} are not ODC severities ({', '.join(SEVERITIES)}).")


@dataclass(frozen=True)
class GateVerdict:
    breaches: list[str]
    new_findings: list[Finding] | None
    top: list[Finding]

    @property
    def passed(self) -> bool:
        return not self.breaches


def judge(
    analysis: CodeAnalysis,
    thresholds: QualityThresholds,
    *,
    baseline: list[Finding] | None = None,
    top: int = 10,
) -> GateVerdict:
    """The thresholds ``analysis`` breaks (each a sentence), the new findings (when a baseline was read) and
    the ``top`` most severe findings (new ones first when there is a baseline)."""
    breaches = []
    counts = _counts(analysis)
    score = analysis.quality_score
    if thresholds.min_quality_score is not None:
        if score is None:
            breaches.append(f"ODC gave no quality score; min_quality_score={thresholds.min_quality_score} needs one")
        elif score < thresholds.min_quality_score:
            breaches.append(f"quality score {score:g} is below min_quality_score={thresholds.min_quality_score:g}")
    for severity, limit in (("Critical", thresholds.max_critical), ("High", thresholds.max_high)):
        if limit is not None and counts[severity] > limit:
            breaches.append(f"{counts[severity]} {severity} findings, more than max_{severity.lower()}={limit}")
    new = None
    if baseline is not None:
        wanted = set(thresholds.new_finding_severities)
        new = [f for f in new_since(analysis.findings, baseline) if f.severity in wanted]
        if thresholds.max_new_findings is not None and len(new) > thresholds.max_new_findings:
            breaches.append(
                f"{len(new)} new findings since the baseline, more than max_new_findings={thresholds.max_new_findings}"
            )
    shown = most_severe(new, top) if new else []
    shown += most_severe([f for f in analysis.findings if f not in shown], top - len(shown))
    return GateVerdict(breaches, new, shown)


def _counts(analysis: CodeAnalysis) -> dict[str, int]:
    """The summary's counts; when ODC sent no summary, counted from the findings."""
    if any(analysis.counts.values()) or not analysis.findings:
        return analysis.counts
    counts = dict.fromkeys(SEVERITIES, 0)
    for finding in analysis.findings:
        if finding.severity in counts:
            counts[finding.severity] += 1
    return counts


def summary(
    analysis: CodeAnalysis, verdict: GateVerdict, *, asset_key: str, revision: int, baseline_revision: int | None
) -> dict[str, Any]:
    """The compact XCom of a gate: small whatever the number of findings."""
    return {
        "analysisKey": analysis.analysis_key,
        "assetKey": asset_key,
        "revision": revision,
        "passed": verdict.passed,
        "qualityScore": analysis.quality_score,
        "counts": _counts(analysis),
        "findings": len(analysis.findings),
        "baselineRevision": baseline_revision,
        "newFindings": None if verdict.new_findings is None else len(verdict.new_findings),
        "breaches": verdict.breaches,
        "top": [finding.as_dict() for finding in verdict.top[:5]],
    }
