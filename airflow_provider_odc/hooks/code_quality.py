"""``OdcHook``'s Code Quality API methods: start and read code analyses, findings, summaries, trends, patterns.

Paths, query shapes and typed results live in ``airflow_provider_odc.api.code_quality``; this mixin only sends.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from airflow_provider_odc.api import code_quality
from airflow_provider_odc.api.code_quality import CodeAnalysis, Finding, Pattern, RevisionSummary, TrendPoint
from airflow_provider_odc.exceptions import OdcApiError, OdcError

if TYPE_CHECKING:
    from airflow_provider_odc.attach import TryMemory
    from airflow_provider_odc.hooks._mixin import HookCore

#: The most findings one analysis read pages through (a gate needs them all; a runaway list stops here).
MAX_ANALYSIS_FINDINGS = 20_000


class CodeQualityHookMixin:
    """Typed calls of ``/api/code-quality/v1`` (API client permission: Analyze > View Code Quality findings;
    starting an analysis: Analyze > Manage code quality findings)."""

    def start_code_analysis(self: HookCore, asset_key: str, revision: int, *, memory: TryMemory | None = None) -> str:
        """Start a code analysis of a revision; return its ``analysisKey``.

        The POST is sent at most once per try. ODC lists no code analyses, so a lost answer cannot be
        recovered: the error says so, and the task's retry starts a new analysis (an analysis only reads
        the revision). With ``memory`` (the task's), a retry of the same task instance first re-attaches to
        the analysis an earlier try started, unless it ended ``Failed`` or ``Timeout``.
        """
        if memory is not None:
            earlier = memory.recall()
            key = earlier.get("key") if earlier else None
            if isinstance(key, str):
                try:
                    status = CodeQualityHookMixin.get_code_analysis_status(self, key)
                except OdcApiError as exc:
                    if exc.status != 404:
                        raise
                    status = None
                if status is not None and status not in code_quality.CODE_ANALYSIS.failure:
                    self.log.info("Attaching to code analysis %s, which an earlier try started.", key)
                    return key
            memory.note(posted_at=time.time())
        try:
            body = self.request_json(
                "POST", code_quality.CODE_ANALYSES, json=code_quality.start_body(asset_key, revision)
            )
        except OdcApiError as exc:
            if exc.status is None or exc.status >= 500:
                raise OdcError(
                    f"{exc} ODC may have started the code analysis of asset {asset_key} revision {revision}; "
                    "it lists no analyses to look it up, so it is not sent again in this try.",
                ) from None
            raise
        key = body.get(code_quality.START_KEY_FIELD) if isinstance(body, dict) else None
        if not isinstance(key, str) or not key:
            raise OdcError(f"ODC POST {code_quality.CODE_ANALYSES} answered without an analysisKey.")
        if memory is not None:
            memory.note(posted_at=time.time(), key=key)
        return key

    def get_code_analysis_status(self: HookCore, analysis_key: str) -> str | None:
        """Only the status of an analysis (one page of one finding)."""
        body = self.request_json("GET", code_quality.analysis_path(analysis_key), params={"Limit": 1})
        return body.get("status") if isinstance(body, dict) and isinstance(body.get("status"), str) else None

    def get_code_analysis(
        self: HookCore, analysis_key: str, *, max_findings: int = MAX_ANALYSIS_FINDINGS
    ) -> CodeAnalysis:
        """An analysis with its score, severity counts and every finding (ODC pages them with ``Limit`` and
        ``Offset`` and no page object: pages are read until one comes back short)."""
        path = code_quality.analysis_path(analysis_key)
        limit = code_quality.ANALYSIS_PAGE
        first = self.request_json("GET", path, params={"Limit": limit, "Offset": 0})
        findings = list(_list(first.get("findings") if isinstance(first, dict) else None))
        page = findings
        while len(page) == limit and len(findings) < max_findings:
            body = self.request_json("GET", path, params={"Limit": limit, "Offset": len(findings)})
            page = list(_list(body.get("findings") if isinstance(body, dict) else None))
            findings.extend(page)
        return CodeAnalysis.from_json(first, findings[:max_findings])

    def get_revision_quality(self: HookCore, asset_key: str, revision: int) -> RevisionSummary:
        """The latest analysis summary of a revision; a revision never analysed is an OdcError saying so."""
        try:
            body = self.request_json("GET", code_quality.summary_path(asset_key, revision))
        except OdcApiError as exc:
            if exc.status == 404:
                raise OdcError(
                    f"ODC has no code analysis of asset {asset_key} revision {revision} (404). Analyse that "
                    "revision first (OdcCodeQualityGateOperator, or ODC Portal > Code quality).",
                    conn_id=self.odc_conn_id,
                ) from None
            raise
        return RevisionSummary.from_json(body)

    def list_code_findings(
        self: HookCore,
        *,
        asset_keys: list[str] | None = None,
        severities: list[str] | None = None,
        categories: list[str] | None = None,
        statuses: list[str] | None = None,
        pattern_ids: list[str] | None = None,
        is_latest: bool | None = None,
        since: str | None = None,
        to: str | None = None,
        page_size: int | None = 1000,
        max_items: int | None = None,
    ) -> list[Finding]:
        """Findings, filtered as ODC allows (``since`` defaults, in ODC, to 14 days before ``to``)."""
        params = code_quality.findings_params(
            asset_keys=asset_keys,
            severities=severities,
            categories=categories,
            statuses=statuses,
            pattern_ids=pattern_ids,
            is_latest=is_latest,
            since=since,
            to=to,
        )
        items = self.paginate(code_quality.FINDINGS, params, page_size=page_size, max_items=max_items)
        return [Finding.from_json(item) for item in items]

    def revision_findings(self: HookCore, asset_key: str, revision: int) -> list[Finding]:
        """The findings ODC recorded for one revision (every status, since the beginning)."""
        CodeQualityHookMixin.get_revision_quality(self, asset_key, revision)  # a clear error if never analysed
        found = CodeQualityHookMixin.list_code_findings(
            self, asset_keys=[asset_key], is_latest=False, since=code_quality.BEGINNING
        )
        return [f for f in found if f.asset_revision == revision]

    def get_findings_trend(
        self: HookCore,
        *,
        asset_keys: list[str] | None = None,
        severities: list[str] | None = None,
        categories: list[str] | None = None,
        since: str | None = None,
        to: str | None = None,
    ) -> list[TrendPoint]:
        """Per-day counts of open, snoozed, resolved, dismissed and closed findings."""
        params = code_quality.findings_params(
            asset_keys=asset_keys, severities=severities, categories=categories, since=since, to=to
        )
        return [TrendPoint.from_json(item) for item in self.paginate(code_quality.FINDINGS_TREND, params)]

    def get_code_pattern(self: HookCore, pattern_id: str) -> Pattern | None:
        """A pattern by id (ODC answers a one-item page), or None when ODC does not know it."""
        try:
            body = self.request_json("GET", code_quality.pattern_path(pattern_id))
        except OdcApiError as exc:
            if exc.status == 404:
                return None
            raise
        items = body.get("results") if isinstance(body, dict) else None
        for item in _list(items):
            pattern = Pattern.from_json(item)
            if pattern.id == pattern_id:
                return pattern
        return None


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []
