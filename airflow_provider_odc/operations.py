"""ODC's long-running operations: where to poll each kind, and which statuses end it.

Everything in ODC that takes time is "POST to start, then GET by key until the status is terminal"
(``odc-api.md`` 3.3). Watch the spellings: builds fail with ``FinishedWithErrors``, deployments and
publishes with ``FinishedWithError``. No Airflow imports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class OperationKind:
    """How to poll one kind of operation."""

    name: str
    status_path: str
    success: frozenset[str]
    failure: frozenset[str]
    status_field: str = "status"
    messages_path: str | None = None

    def path(self, key: str) -> str:
        return self.status_path.format(key=key)

    def status_of(self, body: Any) -> str | None:
        status = body.get(self.status_field) if isinstance(body, dict) else None
        return status if isinstance(status, str) else None

    def is_terminal(self, status: str | None) -> bool:
        return status in self.success or status in self.failure


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
        ),
        _kind(
            "deployment_analysis",
            "/api/dependency-management/v1/deployment-analyses/{key}",
            {"Finished"},
            {"Failed"},
            status_field="processStatus",
        ),
        _kind(
            "deletion_analysis",
            "/api/dependency-management/v1/deletion-analyses/{key}",
            {"Finished"},
            {"Failed"},
            status_field="processStatus",
        ),
        _kind("code_analysis", "/api/code-quality/v1/code-analyses/{key}", {"Completed"}, {"Failed", "Timeout"}),
        _kind(
            "external_library",
            "/api/external-libraries/v1/generation-operations/{key}",
            {"Completed"},
            {"GenerationError", "DownloadError"},
            messages_path="/api/external-libraries/v1/generation-operations/{key}/log-messages",
        ),
        _kind(
            "native_build",
            "/api/native-mobile-builds/v1/build-operations/{key}",
            {"Finished"},
            {"Error"},
            messages_path="/api/native-mobile-builds/v1/build-operations/{key}/log-messages",
        ),
        _kind("bulk_users", "/api/identity/v1/users/bulk/{key}", {"Finished"}, {"FinishedWithErrors"}),
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


def error_messages(items: list[Any], limit: int = 20) -> list[str]:
    """The Error-severity lines of an operation's messages, oldest first, at most ``limit``."""
    lines = []
    for item in items:
        if not isinstance(item, dict) or str(item.get("severity", "")).lower() != "error":
            continue
        text = str(item.get("message") or item.get("type") or "").strip()
        code = item.get("errorCode") or item.get("type")
        lines.append(f"{text} [{code}]" if code and code != text else text)
    return lines[-limit:]
