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
    return findings(report, "Error")


# Starting an analysis and reading its report -----------------------------------------------------------

#: The field of the start POSTs' answers (``ReferenceKeyResponse``) that holds the analysis key.
START_KEY_FIELD = "analysisKey"
SEVERITIES = ("Error", "Warning")


def deployment_analysis_body(asset_key: str, revision: int, stage_key: str) -> dict[str, Any]:
    """``PublicLaunchDeploymentAnalysisRequest``."""
    return {"revision": revision, "environmentKey": stage_key, "assetKey": asset_key}


def deletion_analysis_body(asset_key: str) -> dict[str, Any]:
    """``PublicLaunchDeletionAnalysisRequest``."""
    return {"assetKey": asset_key}


def findings(report: Mapping[str, Any], severity: str) -> list[str]:
    """The findings of one severity (``Error`` or ``Warning``) of a deployment or deletion report, one line each."""
    lines = []
    for asset in objects(report.get("impactedAssets")):
        where = asset.get("name") or asset.get("assetKey") or "an asset"
        for issue in objects(asset.get("elementLevelIssues")):
            if issue.get("conflictSeverity") == severity:
                what = "/".join(str(issue[k]) for k in ("conflictType", "incompatibilityType") if issue.get(k))
                element = f"{issue.get('type') or 'element'} {issue.get('name')}"
                lines.append(
                    message_line(": ".join(str(part) for part in (where, element, what, issue.get("hint")) if part))
                )
        for issue in objects(asset.get("applicationLevelIssues")):
            if issue.get("conflictSeverity") == severity:
                parts = (where, issue.get("conflictType"), issue.get("hint"))
                lines.append(message_line(": ".join(str(part) for part in parts if part)))
        for revision in objects(asset.get("deployedRevisions")):
            if revision.get("severity") == severity:
                hint = revision.get("indirectLibraryHint") or revision.get("consumerType") or "still uses it"
                stage = f" in stage {revision['environmentKey']}" if revision.get("environmentKey") else ""
                lines.append(message_line(f"{where} revision {revision.get('revision')}{stage}: {hint}"))
    return lines


def impacted_assets(report: Mapping[str, Any]) -> list[str]:
    """The assets a report names as impacted (a deletion report's consumers), by name or key."""
    return [str(asset.get("name") or asset.get("assetKey")) for asset in objects(report.get("impactedAssets"))]


def report_summary(body: Mapping[str, Any], *, max_findings: int = 10) -> dict[str, Any]:
    """A compact, JSON-safe summary of a finished analysis for XCom: the verdict, counts and the first findings."""
    report = body.get("report") if isinstance(body.get("report"), dict) else {}
    assert isinstance(report, dict)
    errors, warnings = findings(report, "Error"), findings(report, "Warning")
    summary: dict[str, Any] = {
        "analysisKey": body.get("analysisKey"),
        "type": body.get("type"),
        "assetKey": body.get("assetKey"),
        "environmentKey": body.get("environmentKey"),
        "processStatus": body.get("processStatus"),
        "status": report.get("status"),
        "errors": len(errors),
        "warnings": len(warnings),
        "impactedAssets": impacted_assets(report),
        "findings": [*errors, *warnings][:max_findings],
    }
    if "deployedEnvironments" in report:
        summary["deployedEnvironments"] = [
            str(env.get("name") or env.get("environmentKey")) for env in objects(report.get("deployedEnvironments"))
        ]
    return summary
