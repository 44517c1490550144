"""Dependency Management API (``/api/dependency-management/v1``): deployment and deletion analyses.

An analysis ends ``Finished`` in ``processStatus`` even when it found errors: the verdict is its
``report.status`` (``ErrorsFound`` fails it), and the findings are in the report.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_odc.api._parse import objects
from airflow_provider_odc.api.long_running import kind, message_line

DEPLOYMENT_ANALYSES = "/api/dependency-management/v1/deployment-analyses"
DELETION_ANALYSES = "/api/dependency-management/v1/deletion-analyses"
ERRORS_FOUND = "ErrorsFound"

DEPLOYMENT_ANALYSIS = kind(
    "deployment_analysis",
    DEPLOYMENT_ANALYSES + "/{key}",
    {"Finished"},
    {"Failed"},
    status_field="processStatus",
    result_field="report.status",
    result_failure=frozenset({ERRORS_FOUND}),
    details_in_body=True,  # error (ProblemDetails), report.impactedAssets
)
DELETION_ANALYSIS = kind(
    "deletion_analysis",
    DELETION_ANALYSES + "/{key}",
    {"Finished"},
    {"Failed"},
    status_field="processStatus",
    result_field="report.status",
    result_failure=frozenset({ERRORS_FOUND}),
    details_in_body=True,
)


def analysis_errors(body: Mapping[str, Any]) -> list[str]:
    """A failed analysis' ``error`` (ProblemDetails), then the Error findings of its ``report``."""
    lines: list[str] = []
    problem = body.get("error")
    if isinstance(problem, dict):
        text = " - ".join(
            str(problem[k]) for k in ("title", "detail") if isinstance(problem.get(k), str) and problem[k]
        )
        lines.append(message_line(text or "the operation failed", problem.get("errorCode")))
    report = body.get("report")
    if isinstance(report, dict):
        lines += report_findings(report)
    return lines


def report_findings(report: Mapping[str, Any]) -> list[str]:
    """The Error-severity findings of a deployment or deletion analysis report."""
    lines = []
    for asset in objects(report.get("impactedAssets")):
        where = asset.get("name") or asset.get("assetKey") or "an asset"
        for issue in objects(asset.get("elementLevelIssues")):
            if issue.get("conflictSeverity") == "Error":
                what = "/".join(str(issue[k]) for k in ("conflictType", "incompatibilityType") if issue.get(k))
                lines.append(
                    message_line(
                        f"{where}: {issue.get('type') or 'element'} {issue.get('name')}: "
                        f"{what}: {issue.get('hint') or ''}"
                    )
                )
        for issue in objects(asset.get("applicationLevelIssues")):
            if issue.get("conflictSeverity") == "Error":
                lines.append(message_line(f"{where}: {issue.get('conflictType')}: {issue.get('hint') or ''}"))
        for revision in objects(asset.get("deployedRevisions")):
            if revision.get("severity") == "Error":
                hint = revision.get("indirectLibraryHint") or revision.get("consumerType") or "still uses it"
                stage = f" in stage {revision['environmentKey']}" if revision.get("environmentKey") else ""
                lines.append(message_line(f"{where} revision {revision.get('revision')}{stage}: {hint}"))
    return lines
