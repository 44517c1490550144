"""Code Quality API (``/api/code-quality/v1``): code analyses, which end ``Completed``, ``Failed`` or ``Timeout``,
their findings, per-revision summaries, trends and the patterns findings are instances of.

The spec leaves ``status`` a plain string; those three ends are the ones its use case ("code quality")
says to poll for. Its query parameters are PascalCase (``AssetKeys``, ``Limit``); arrays go as repeated keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_odc.api._parse import as_object, integer, objects, required_str, text
from airflow_provider_odc.api.long_running import kind

BASE = "/api/code-quality/v1"
CODE_ANALYSES = BASE + "/code-analyses"
FINDINGS = BASE + "/findings"
FINDINGS_TREND = BASE + "/findings-trend"
PATTERN = BASE + "/patterns/{pattern_id}"
START_KEY_FIELD = "analysisKey"

CODE_ANALYSIS = kind("code_analysis", CODE_ANALYSES + "/{key}", {"Completed"}, {"Failed", "Timeout"})

#: ``FindingSeverity``, most severe first; ``Categories``.
SEVERITIES: tuple[str, ...] = ("Critical", "High", "Medium", "Low")
CATEGORIES: tuple[str, ...] = ("security", "performance", "architecture", "maintainability")
#: The GET of an analysis pages its findings with ``Limit``/``Offset`` (no page object in the answer).
ANALYSIS_PAGE = 1000
#: Since when the baseline's findings are read (``Since`` defaults to 14 days before now).
BEGINNING = "2000-01-01T00:00:00"


def analysis_path(key: str) -> str:
    return CODE_ANALYSIS.path(key)


def summary_path(asset_key: str, revision: int) -> str:
    return f"{BASE}/assets/{asset_key}/revisions/{revision}/analysis-summary"


def pattern_path(pattern_id: str) -> str:
    return PATTERN.format(pattern_id=pattern_id)


def start_body(asset_key: str, revision: int) -> dict[str, Any]:
    """``AdhocAnalysisRequestV1``."""
    return {"assetKey": asset_key, "assetRevision": revision}


def findings_params(
    *,
    asset_keys: list[str] | None = None,
    severities: list[str] | None = None,
    categories: list[str] | None = None,
    statuses: list[str] | None = None,
    pattern_ids: list[str] | None = None,
    is_latest: bool | None = None,
    since: str | None = None,
    to: str | None = None,
) -> dict[str, Any]:
    """The query of ``GET /findings`` (and, without the finding-only filters, ``/findings-trend``)."""
    params: dict[str, Any] = {}
    for name, value in (
        ("AssetKeys", asset_keys),
        ("Severities", severities),
        ("Categories", categories),
        ("Status", statuses),
        ("PatternIds", pattern_ids),
        ("Since", since),
        ("To", to),
    ):
        if value:
            params[name] = list(value) if isinstance(value, list | tuple) else value
    if is_latest is not None:
        params["IsLatest"] = "true" if is_latest else "false"
    return params


@dataclass(frozen=True)
class Finding:
    """``RevisionFindingsResponseV1`` / ``FindingsResponseV1``: the fields a gate and a report read."""

    id: str | None
    pattern_id: str | None
    severity: str | None
    category: str | None
    status: str | None
    element_key: str | None
    element_name: str | None
    element_type: str | None
    where_element_key: str | None
    where_element_name: str | None
    asset_key: str | None
    asset_revision: int | None
    discovered_on: str | None

    @classmethod
    def from_json(cls, body: Any) -> Finding:
        item = as_object(body, "a code quality finding")
        return cls(
            id=text(item, "id"),
            pattern_id=text(item, "patternId"),
            severity=text(item, "severity"),
            category=text(item, "category"),
            status=text(item, "status"),
            element_key=text(item, "elementKey"),
            element_name=text(item, "elementName"),
            element_type=text(item, "elementType"),
            where_element_key=text(item, "whereElementKey"),
            where_element_name=text(item, "whereElementName"),
            asset_key=text(item, "assetKey"),
            asset_revision=integer(item, "assetRevision"),
            discovered_on=text(item, "discoveredOn"),
        )

    @property
    def identity(self) -> tuple[str, str, str]:
        """What makes two revisions' findings the same finding: its pattern, element and where-element
        (finding ids are not promised to stay the same across revisions)."""
        return (self.pattern_id or "", self.element_key or self.element_name or "", self.where_element_key or "")

    @property
    def rank(self) -> int:
        """0 for Critical, 1 for High, ...; unknown severities last."""
        return SEVERITIES.index(self.severity) if self.severity in SEVERITIES else len(SEVERITIES)

    def as_dict(self) -> dict[str, Any]:
        """The compact form a report or XCom carries."""
        return {
            "patternId": self.pattern_id,
            "severity": self.severity,
            "category": self.category,
            "elementName": self.element_name,
            "elementType": self.element_type,
            "whereElementName": self.where_element_name,
            "status": self.status,
        }


def severity_counts(summary: Any) -> dict[str, int]:
    """``FindingsSummary`` folded over its categories: ``{"Critical": n, "High": n, "Medium": n, "Low": n}``."""
    counts = dict.fromkeys(SEVERITIES, 0)
    categories = summary.get("categories") if isinstance(summary, Mapping) else None
    for breakdown in (categories or {}).values() if isinstance(categories, Mapping) else ():
        if not isinstance(breakdown, Mapping):
            continue
        for severity in SEVERITIES:
            value = integer(breakdown, f"{severity.lower()}Severity")
            counts[severity] += value or 0
    return counts


@dataclass(frozen=True)
class CodeAnalysis:
    """``CodeAnalysisStatusResponseV1``: status, score, severity counts and (all pages of) the findings."""

    analysis_key: str
    status: str | None
    quality_score: float | None
    counts: dict[str, int]
    findings: list[Finding] = field(default_factory=list)

    @classmethod
    def from_json(cls, body: Any, findings: list[Any] | None = None) -> CodeAnalysis:
        item = as_object(body, "a code analysis")
        score = item.get("qualityScore")
        return cls(
            analysis_key=required_str(item, "analysisKey", "a code analysis"),
            status=text(item, "status"),
            quality_score=float(score) if isinstance(score, int | float) and not isinstance(score, bool) else None,
            counts=severity_counts(item.get("summary")),
            findings=[Finding.from_json(f) for f in objects(item.get("findings") if findings is None else findings)],
        )


@dataclass(frozen=True)
class RevisionSummary:
    """``AssetRevisionSummaryResponse``: the latest analysis of one revision."""

    asset_key: str | None
    asset_revision: int | None
    analysis_date: str | None
    quality_score: float | None
    counts: dict[str, int]

    @classmethod
    def from_json(cls, body: Any) -> RevisionSummary:
        item = as_object(body, "an analysis summary")
        score = item.get("qualityScore")
        return cls(
            asset_key=text(item, "assetKey"),
            asset_revision=integer(item, "assetRevision"),
            analysis_date=text(item, "analysisDate"),
            quality_score=float(score) if isinstance(score, int | float) and not isinstance(score, bool) else None,
            counts=severity_counts(item.get("summary")),
        )


@dataclass(frozen=True)
class TrendPoint:
    """``FindingsTrendResponseV1``: one day's counts of findings by status."""

    analysis_date: str | None
    open: int
    snoozed: int
    resolved: int
    dismissed: int
    closed: int

    @classmethod
    def from_json(cls, body: Any) -> TrendPoint:
        item = as_object(body, "a findings trend point")
        return cls(
            analysis_date=text(item, "analysisDate"),
            open=integer(item, "openFindingsCount") or 0,
            snoozed=integer(item, "snoozedFindingsCount") or 0,
            resolved=integer(item, "resolvedFindingsCount") or 0,
            dismissed=integer(item, "dismissedFindingsCount") or 0,
            closed=integer(item, "closedFindingsCount") or 0,
        )


@dataclass(frozen=True)
class Pattern:
    """``PatternsResponse``: what a finding's ``patternId`` stands for."""

    id: str
    name: str | None
    severity: str | None
    category: str | None
    how_to_solve: str | None

    @classmethod
    def from_json(cls, body: Any) -> Pattern:
        item = as_object(body, "a code pattern")
        return cls(
            id=required_str(item, "id", "a code pattern"),
            name=text(item, "name"),
            severity=text(item, "severity"),
            category=text(item, "category"),
            how_to_solve=text(item, "howToSolve"),
        )


def most_severe(findings: list[Finding], limit: int) -> list[Finding]:
    """The ``limit`` most severe findings (stable: ODC's order within a severity)."""
    return sorted(findings, key=lambda f: f.rank)[:limit]


def new_since(findings: list[Finding], baseline: list[Finding]) -> list[Finding]:
    """The findings whose identity (pattern, element, where-element) the baseline did not have."""
    known = {f.identity for f in baseline}
    return [f for f in findings if f.identity not in known]
