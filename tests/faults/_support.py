"""Helpers of the fault and attack matrix: hooks on the emulator, a dict-backed token store, the table."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import pytest

from devtools.hook_factory import HookFactory  # noqa: F401  (re-exported to the fault tests)


@dataclass(frozen=True)
class MatrixRow:
    row: str
    outcome: str
    token_requests: int
    exchanges: int
    api_calls: int


#: The rows measured in this session, printed by ``conftest.pytest_terminal_summary``.
ROWS: list[MatrixRow] = []


class Matrix:
    """Collects the measured rows of the current test session."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self.node = request.node

    def record(self, outcome: str, stats: dict[str, Any], *, row: str | None = None) -> None:
        ROWS.append(
            MatrixRow(
                row=row or _row_name(self.node),
                outcome=outcome,
                token_requests=stats.get("token_requests", 0),
                exchanges=stats.get("token_exchanges", 0),
                api_calls=stats.get("api_calls_total", 0),
            )
        )


def wait_until_answered(server: Any, timeout: float = 60.0) -> None:
    """Block until the server has answered every request it received (``status`` noted in its log).

    A latency fault keeps its handler running after the client timed out; until it ends it can still
    count (and it would count into the next test's counters after a reset). Waiting for the answers,
    not for a fixed time, is the barrier; ``timeout`` only turns a handler that never ends into a failure.
    """
    deadline = time.monotonic() + timeout
    while True:
        pending = [f"{r['method']} {r['path']}" for r in server.recent_requests(1000) if r["status"] is None]
        if not pending:
            return
        assert time.monotonic() < deadline, f"the server never answered: {pending}"
        time.sleep(0.02)


def _row_name(node: Any) -> str:
    callspec = getattr(node, "callspec", None)
    return callspec.id if callspec is not None else node.name.removeprefix("test_").replace("_", "-")


def outcome_of(error: BaseException | None) -> str:
    """``ok``, or the exception type and the start of its message, URLs and connection name elided."""
    if error is None:
        return "ok"
    text = str(error).splitlines()[0] if str(error) else ""
    text = re.sub(r"^ODC connection '[^']*': ", "", text)
    text = re.sub(r"'?https?://[^\s']+'?", "<url>", text)
    return f"{type(error).__name__}: {text[:110]}"


class DictStore:
    """The ``VariableTokenStore`` contract (``key``, ``read``, ``write``) on a dict shared by all hooks.

    Stands in for Airflow Variables outside a running task, where ``Variable.set`` cannot work.
    """

    def __init__(self, values: dict[str, str], key: str) -> None:
        self.values = values
        self.key = key

    def read(self) -> str | None:
        return self.values.get(self.key)

    def write(self, value: str) -> bool:
        self.values[self.key] = value
        return True
