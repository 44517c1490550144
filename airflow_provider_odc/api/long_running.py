"""What every long-running ODC operation has in common: POST to start, then GET by key until the status ends.

``OperationKind`` says where to poll one kind and which statuses end it (each API module declares its
own kinds; ``airflow_provider_odc.operations`` collects them). Watch the spellings: builds fail with
``FinishedWithErrors``, deployments and publishes with ``FinishedWithError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_LINE = 500


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


def kind(name: str, path: str, success: set[str], failure: set[str], **options: Any) -> OperationKind:
    """An ``OperationKind`` from plain sets (the declarations in the API modules stay short)."""
    return OperationKind(name, path, frozenset(success), frozenset(failure), **options)


def message_line(text: Any, code: Any = None) -> str:
    """One line of ODC's text: whitespace folded, cut to ``MAX_LINE``, its error code in brackets."""
    text = " ".join(str(text or "").split())[:MAX_LINE]
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
        lines.append(message_line(text, code))
    return lines[-limit:]
