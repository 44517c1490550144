"""HTTP routes of code scanning (state in ``code_scan``): the Code Quality API's reads and a revision's
source code. Starting and polling a code analysis and a generated-code package are ``long_running_routes``.

The Code Quality API's query parameters are PascalCase (``AssetKeys``, ``Limit``); ASP.NET binds them in any
case, arrays as repeated keys or comma-separated, so they are read by hand, case-insensitively.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from airflow_provider_odc.emulator.code_scan import (
    CATEGORIES,
    PATTERNS,
    SEVERITIES,
    CompletedAnalysis,
    day_of,
    latest_per_revision,
    quality_score,
    summary,
)
from airflow_provider_odc.emulator.state import EmulatorState
from airflow_provider_odc.emulator.validation import INT32_MAX, ApiError
from airflow_provider_odc.emulator.web import Guard, QueryError, date_time, make_endpoint, page_with_totals

QUALITY = "/api/code-quality/v1"
FINDINGS_ROUTE = f"{QUALITY}/findings"
SUMMARY_ROUTE = f"{QUALITY}/assets/{{assetKey}}/revisions/{{revision}}/analysis-summary"
TREND_ROUTE = f"{QUALITY}/findings-trend"
PATTERNS_ROUTE = f"{QUALITY}/patterns"
PATTERN_ROUTE = f"{QUALITY}/patterns/{{patternId}}"
SOURCE_CODE_ROUTE = "/api/asset-repository/v1/assets/{assetKey}/revisions/{revisionNumber}/source-code"
DEFAULT_WINDOW = 14 * 24 * 3600.0  # Since defaults to 14 days before To


def _values(request: Request, name: str) -> list[str]:
    wanted = name.casefold()
    found: list[str] = []
    for key, value in request.query_params.multi_items():
        if key.casefold() == wanted:
            found += [part.strip() for part in value.split(",") if part.strip()]
    return found


def _one_of(request: Request, name: str, allowed: Iterable[str]) -> set[str]:
    values = _values(request, name)
    allowed = tuple(allowed)
    for value in values:
        if value not in allowed:
            raise QueryError(name, f"The value '{value}' is not valid for {name}. Allowed: {', '.join(allowed)}.")
    return set(values)


def _int(request: Request, name: str, default: int, minimum: int, maximum: int) -> int:
    values = _values(request, name)
    if not values:
        return default
    try:
        number = int(values[-1])
    except ValueError:
        raise QueryError(name, f"The value '{values[-1]}' is not valid for {name}.") from None
    if not minimum <= number <= maximum:
        raise QueryError(name, f"The field {name} must be between {minimum} and {maximum}.")
    return number


def _window(request: Request, now: float) -> tuple[float, float]:
    """``Since`` and ``To`` as epoch seconds (Since: 14 days before To; To: now)."""
    bounds: list[float | None] = []
    for name in ("Since", "To"):
        values = _values(request, name)
        if not values:
            bounds.append(None)
            continue
        try:
            bounds.append(date_time(values[-1]).timestamp())
        except ValueError as error:
            raise QueryError(name, str(error)) from None
    to = bounds[1] if bounds[1] is not None else now
    since = bounds[0] if bounds[0] is not None else to - DEFAULT_WINDOW
    return since, to


def register_code_scan_routes(app: FastAPI, state: EmulatorState, guard: Guard) -> None:
    """Add the routes (before the app's catch-all ``/api`` route)."""

    endpoint = make_endpoint(app, guard)
    scans = state.jobs.scans

    def analysed(request: Request) -> tuple[list[CompletedAnalysis], float]:
        analyses, now = state.jobs.completed_code_analyses()
        asset_keys = {key.lower() for key in _values(request, "AssetKeys")}
        return [a for a in analyses if not asset_keys or a.asset_key in asset_keys], now

    @endpoint("GET", FINDINGS_ROUTE, "OS-CQ-40001")
    async def list_findings(request: Request) -> Response:
        limit = _int(request, "Limit", 100, 1, 1000)
        offset = _int(request, "Offset", 0, 0, INT32_MAX)
        severities = _one_of(request, "Severities", SEVERITIES)
        categories = _one_of(request, "Categories", CATEGORIES)
        statuses = set(_values(request, "Status"))
        patterns = set(_values(request, "PatternIds"))
        latest_only = [v.lower() for v in _values(request, "IsLatest")] == ["true"]
        analyses, now = analysed(request)
        since, to = _window(request, now)
        chosen: Iterable[CompletedAnalysis] = latest_per_revision(analyses).values()
        if latest_only:
            newest: dict[str, CompletedAnalysis] = {}
            for analysis in sorted(chosen, key=lambda a: a.finished_at):
                newest[analysis.asset_key] = analysis
            chosen = newest.values()
        findings = [
            {name: value for name, value in finding.items() if name != "category"}  # FindingsResponseV1 has none
            for analysis in sorted(chosen, key=lambda a: (a.asset_key, a.revision))
            if since <= analysis.finished_at <= to
            for finding in scans.findings_of(analysis)
            if (not severities or finding["severity"] in severities)
            and (not categories or finding["category"] in categories)
            and (not statuses or finding["status"] in statuses)
            and (not patterns or finding["patternId"] in patterns)
        ]
        return JSONResponse(page_with_totals(findings, limit, offset))

    @endpoint("GET", SUMMARY_ROUTE, "OS-CQ-40001")
    async def revision_summary(assetKey: str, revision: str) -> Response:
        analyses, _ = state.jobs.completed_code_analyses()
        wanted = next(
            (a for key, a in latest_per_revision(analyses).items() if key == (assetKey.lower(), _number(revision))),
            None,
        )
        if wanted is None:
            raise ApiError(404, f"No analysis found for asset '{assetKey}' revision {revision}.", "OS-CQ-40404")
        findings = scans.findings_of(wanted)
        body = {
            "assetKey": wanted.asset_key,
            "assetRevision": wanted.revision,
            "analysisDate": day_of(wanted.finished_at),
            "qualityScore": quality_score(findings),
            "summary": summary(findings),
        }
        return JSONResponse(body)

    @endpoint("GET", TREND_ROUTE, "OS-CQ-40001")
    async def findings_trend(request: Request) -> Response:
        severities = _one_of(request, "Severities", SEVERITIES)
        categories = _one_of(request, "Categories", CATEGORIES)
        analyses, now = analysed(request)
        since, to = _window(request, now)
        per_day: dict[str, dict[tuple[str, int], CompletedAnalysis]] = {}
        for analysis in sorted(analyses, key=lambda a: a.finished_at):
            if since <= analysis.finished_at <= to:
                per_day.setdefault(day_of(analysis.finished_at), {})[(analysis.asset_key, analysis.revision)] = analysis
        results = []
        for day, chosen in sorted(per_day.items()):
            counts = dict.fromkeys(("Open", "Snoozed", "Resolved", "Dismissed", "Closed"), 0)
            for analysis in chosen.values():
                for finding in scans.findings_of(analysis):
                    if (not severities or finding["severity"] in severities) and (
                        not categories or finding["category"] in categories
                    ):
                        counts[str(finding["status"])] = counts.get(str(finding["status"]), 0) + 1
            results.append(
                {
                    "openFindingsCount": counts["Open"],
                    "snoozedFindingsCount": counts["Snoozed"],
                    "resolvedFindingsCount": counts["Resolved"],
                    "dismissedFindingsCount": counts["Dismissed"],
                    "closedFindingsCount": counts["Closed"],
                    "analysisDate": day,
                }
            )
        return JSONResponse({"results": results})

    @endpoint("GET", PATTERNS_ROUTE, "OS-CQ-40001")
    async def list_patterns(request: Request) -> Response:
        limit = _int(request, "Limit", 100, 1, 1000)
        offset = _int(request, "Offset", 0, 0, INT32_MAX)
        return JSONResponse(page_with_totals([_pattern(key) for key in PATTERNS], limit, offset))

    @endpoint("GET", PATTERN_ROUTE, "OS-CQ-40001")
    async def get_pattern(patternId: str) -> Response:
        if patternId not in PATTERNS:
            raise ApiError(404, f"Pattern '{patternId}' was not found.", "OS-CQ-40405")
        return JSONResponse(page_with_totals([_pattern(patternId)], 1, 0))

    @endpoint("GET", SOURCE_CODE_ROUTE, "OS-APPS-40001")
    async def source_code(assetKey: str, revisionNumber: str) -> Response:
        revision = state.release.revision(assetKey, _number(revisionNumber))  # 404 as the revision GET
        name = f"source-code/{revision['assetKey']}/{revision['revision']}.oml"
        return JSONResponse({"sourceCodeBinaryUrl": scans.download_url(name), "sourceCodeDigest": _digest(name)})


def _number(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ApiError(400, f"The value '{raw}' is not valid.", "OS-CQ-40001") from None


def _pattern(pattern_id: str) -> dict[str, Any]:
    known = PATTERNS[pattern_id]
    return {
        "id": pattern_id,
        "name": known["name"],
        "description": known["name"],
        "impact": None,
        "howToSolve": None,
        "category": known["category"],
        "documentationUrl": None,
        "showFlowViz": False,
        "showOpenInSS": True,
        "showHierarchyTree": False,
        "showConsumedElements": False,
        "showWhereObject": True,
        "showWhoObject": False,
        "showCreatedByUsername": False,
        "severity": known["severity"],
    }


def _digest(name: str) -> str:
    import uuid

    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))
