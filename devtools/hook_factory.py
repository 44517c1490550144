"""Helpers shared by test folders."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_odc.hooks.odc import OdcHook
from airflow_provider_odc.retries import DEFAULT_RATE_LIMIT_WAIT, RetryPolicy


class HookFactory:
    """Hooks for connections to a loopback portal (the emulator or a test server with ``base_url``,
    ``client_id`` and ``client_secret``); retry waits are recorded in ``sleeps`` instead of slept."""

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

    def __call__(
        self,
        conn_id: str = "odc_default",
        *,
        max_retries: int = 3,
        rate_limit_wait: float = DEFAULT_RATE_LIMIT_WAIT,
        **fields: Any,
    ) -> OdcHook:
        self.connection(conn_id, **fields)
        sleep: Callable[[float], None] = self.sleeps.append
        policy = RetryPolicy(max_retries=max_retries, rate_limit_wait=rate_limit_wait, sleep=sleep)
        return OdcHook(conn_id, retry_policy=policy)


def run_in_new_process(code: str, *args: str, env: dict[str, str] | None = None) -> Any:
    """Run ``code`` in a new Python interpreter (a new worker or triggerer process: nothing of this
    process's memory goes along) and return what it printed as one ``RESULT <json>`` line."""
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert len(lines) == 1, done.stdout[-2000:]
    return json.loads(lines[0].removeprefix("RESULT "))
