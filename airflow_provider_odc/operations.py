"""ODC's long-running operations: where to poll each kind, and which statuses end it.

Everything in ODC that takes time is "POST to start, then GET by key until the status is terminal"
(``odc-api.md`` 3.3). Watch the spellings: builds fail with ``FinishedWithErrors``, deployments and
publishes with ``FinishedWithError``. No Airflow imports.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class OperationKind:
    """How to poll one kind of operation, and where ODC puts the reasons when it fails.

    ``result_field``/``result_failure``: a success status that still fails on the operation's verdict
    (an analysis ``Finished`` with ``report.status == "ErrorsFound"``). ``required_params``: query
    parameters the status and messages calls need (``poll_params``). ``severity_field``: which field of
    a message says it is an error (external library messages have ``type``, not ``severity``).
    """

    name: str
    status_path: str
    success: frozenset[str]
    failure: frozenset[str]
    status_field: str = "status"
    messages_path: str | None = None
    severity_field: str = "severity"
    result_field: str | None = None
    result_failure: frozenset[str] = frozenset()
    required_params: tuple[str, ...] = ()
    details_in_body: bool = False

    def path(self, key: str) -> str:
        return self.status_path.format(key=key)

    def status_of(self, body: Any) -> str | None:
        status = body.get(self.status_field) if isinstance(body, dict) else None
        return status if isinstance(status, str) else None

    def is_terminal(self, status: str | None) -> bool:
        return status in self.success or status in self.failure

    def result_of(self, body: Any) -> str | None:
        """The verdict field (``report.status``) of a finished operation, if this kind has one."""
        if self.result_field is None:
            return None
        value: Any = body
        for part in self.result_field.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return value if isinstance(value, str) else None

    def verdict(self, status: str | None, body: Any) -> str | None:
        """``"success"``, ``"failed"``, or None while the operation runs."""
        if status in self.failure:
            return "failed"
        if status not in self.success:
            return None
        return "failed" if self.result_of(body) in self.result_failure else "success"

    def needs_body(self, status: str | None) -> bool:
        """Whether judging or explaining this end needs the status body (re-read when not at hand)."""
        return (status in self.success and self.result_field is not None) or (
            status in self.failure and self.details_in_body
        )

    def missing_params(self, params: Mapping[str, Any] | None) -> list[str]:
        return [name for name in self.required_params if not (params or {}).get(name)]


_MAX_LINE = 500


def _kind(name: str, path: str, success: set[str], failure: set[str], **options: Any) -> OperationKind:
    return OperationKind(name, path, frozenset(success), frozenset(failure), **options)


OPERATION_KINDS: dict[str, OperationKind] = {
    kind.name: kind
    for kind in (
        _kind(
            "build",
            "/api/builds/v1/build-operations/{key}",
            {"Finished"},
            {"FinishedWithErrors", "Deleted", "ToBeDeleted"},
            messages_path="/api/builds/v1/build-operations/{key}/log-messages",
        ),
        _kind(
            "deployment",
            "/api/deployments/v1/deployment-operations/{key}",
            {"Finished"},
            {"FinishedWithError"},
            messages_path="/api/deployments/v1/deployment-operations/{key}/messages",
        ),
        _kind(
            "publish",
            "/api/deployments/v1/publish-operations/{key}",
            {"Finished"},
            {"FinishedWithError"},
            messages_path="/api/deployments/v1/publish-operations/{key}/messages",
        ),
        _kind(
            "generated_code",
            "/api/builds/v1/build-operations/{key}/generated-code",
            {"Finished"},
            {"TimedOut", "Failed"},
            details_in_body=True,  # errors[]
        ),
        _kind(
            "deployment_analysis",
            "/api/dependency-management/v1/deployment-analyses/{key}",
            {"Finished"},
            {"Failed"},
            status_field="processStatus",
            result_field="report.status",
            result_failure=frozenset({"ErrorsFound"}),
            details_in_body=True,  # error (ProblemDetails), report.impactedAssets
        ),
        _kind(
            "deletion_analysis",
            "/api/dependency-management/v1/deletion-analyses/{key}",
            {"Finished"},
            {"Failed"},
            status_field="processStatus",
            result_field="report.status",
            result_failure=frozenset({"ErrorsFound"}),
            details_in_body=True,
        ),
        _kind("code_analysis", "/api/code-quality/v1/code-analyses/{key}", {"Completed"}, {"Failed", "Timeout"}),
        _kind(
            "external_library",
            "/api/external-libraries/v1/generation-operations/{key}",
            {"Completed"},
            {"GenerationError", "DownloadError"},
            messages_path="/api/external-libraries/v1/generation-operations/{key}/log-messages",
            severity_field="type",
        ),
        _kind(
            "native_build",
            "/api/native-mobile-builds/v1/build-operations/{key}",
            {"Finished"},
            {"Error"},
            messages_path="/api/native-mobile-builds/v1/build-operations/{key}/log-messages",
            required_params=("environmentKey", "applicationKey"),
        ),
        _kind(
            "bulk_users",
            "/api/identity/v1/users/bulk/{key}",
            {"Finished"},
            {"FinishedWithErrors"},
            details_in_body=True,  # errorMessage, operations[].errorMessage
        ),
    )
}


def operation_kind(name: str) -> OperationKind:
    try:
        return OPERATION_KINDS[name]
    except KeyError:
        raise ValueError(f"Unknown ODC operation kind {name!r}; use one of {', '.join(OPERATION_KINDS)}.") from None


def poll_interval(elapsed: float, *, fast_interval: float, fast_period: float, slow_interval: float) -> float:
    """ODC's documented schedule: every 5 s for the first 30 s, then every 30 s (each configurable)."""
    return fast_interval if elapsed < fast_period else slow_interval


def _line(text: Any, code: Any = None) -> str:
    text = " ".join(str(text or "").split())[:_MAX_LINE]
    code = str(code).strip() if code else ""
    return f"{text} [{code}]" if code and code != text else text


def error_messages(items: list[Any], limit: int = 20, *, severity_field: str = "severity") -> list[str]:
    """The Error-severity lines of an operation's messages, oldest first, at most ``limit``."""
    lines = []
    for item in items:
        if not isinstance(item, dict) or str(item.get(severity_field, "")).lower() != "error":
            continue
        text = item.get("message") or item.get("type")
        code = item.get("errorCode") or (item.get("type") if severity_field != "type" else None)
        lines.append(_line(text, code))
    return lines[-limit:]


def body_errors(body: Any, limit: int = 20) -> list[str]:
    """What ODC says about a failure inside a status body: ``errors[]`` (generated code), ``error`` (a
    failed analysis' ProblemDetails), the Error findings of an analysis report, ``errorMessage`` and the
    failed records of ``operations[]`` (bulk users)."""
    if not isinstance(body, dict):
        return []
    lines: list[str] = []
    errors = body.get("errors")
    if isinstance(errors, list):
        items = [e for e in errors if isinstance(e, dict)]
        lines += [
            _line(e.get("message"), e.get("errorCode"))
            for e in items
            if str(e.get("severity") or "error").lower() == "error"
        ]
    problem = body.get("error")
    if isinstance(problem, dict):
        text = " - ".join(
            str(problem[k]) for k in ("title", "detail") if isinstance(problem.get(k), str) and problem[k]
        )
        lines.append(_line(text or "the operation failed", problem.get("errorCode")))
    report = body.get("report")
    if isinstance(report, dict):
        lines += _report_findings(report)
    if isinstance(body.get("errorMessage"), str) and body["errorMessage"]:
        lines.append(_line(body["errorMessage"], body.get("errorCode")))
    operations = body.get("operations")
    if isinstance(operations, list):
        for operation in operations:
            if isinstance(operation, dict) and operation.get("status") == "Error":
                record = operation.get("record")
                record = record if isinstance(record, dict) else {}
                who = next((record[k] for k in ("email", "username", "subject") if record.get(k)), "a record")
                lines.append(
                    _line(f"{who}: {operation.get('errorMessage') or 'not created'}", operation.get("errorCode"))
                )
    return [line for line in lines if line][:limit]


def _report_findings(report: dict[str, Any]) -> list[str]:
    """The Error-severity findings of a deployment or deletion analysis report."""
    lines = []
    for asset in report.get("impactedAssets") or []:
        if not isinstance(asset, dict):
            continue
        where = asset.get("name") or asset.get("assetKey") or "an asset"
        for issue in asset.get("elementLevelIssues") or []:
            if isinstance(issue, dict) and issue.get("conflictSeverity") == "Error":
                what = "/".join(str(issue[k]) for k in ("conflictType", "incompatibilityType") if issue.get(k))
                lines.append(
                    _line(
                        f"{where}: {issue.get('type') or 'element'} {issue.get('name')}: "
                        f"{what}: {issue.get('hint') or ''}"
                    )
                )
        for issue in asset.get("applicationLevelIssues") or []:
            if isinstance(issue, dict) and issue.get("conflictSeverity") == "Error":
                lines.append(_line(f"{where}: {issue.get('conflictType')}: {issue.get('hint') or ''}"))
        for revision in asset.get("deployedRevisions") or []:
            if isinstance(revision, dict) and revision.get("severity") == "Error":
                hint = revision.get("indirectLibraryHint") or revision.get("consumerType") or "still uses it"
                stage = f" in stage {revision['environmentKey']}" if revision.get("environmentKey") else ""
                lines.append(_line(f"{where} revision {revision.get('revision')}{stage}: {hint}"))
    return lines
