"""Helpers of the fault and attack matrix: hooks on the emulator, a dict-backed token store, the table."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from airflow_provider_odc.hooks.odc import OdcHook
from airflow_provider_odc.retries import RetryPolicy


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


class HookFactory:
    """Hooks for connections to any loopback portal; retry sleeps are recorded instead of slept."""

    def __init__(self, emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.emulator = emulator
        self.monkeypatch = monkeypatch
        self.sleeps: list[float] = []

    def connection(self, conn_id: str = "odc_default", **fields: Any) -> dict[str, Any]:
        conn = {
            "conn_type": "odc",
            "host": self.emulator.base_url,
            "login": self.emulator.client_id,
            "password": self.emulator.client_secret,
            "extra": {},
        }
        conn.update(fields)
        self.monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
        return conn

    def __call__(self, conn_id: str = "odc_default", *, max_retries: int = 3, **fields: Any) -> OdcHook:
        self.connection(conn_id, **fields)
        sleep: Callable[[float], None] = self.sleeps.append
        return OdcHook(conn_id, retry_policy=RetryPolicy(max_retries=max_retries, sleep=sleep))


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
