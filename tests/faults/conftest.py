"""Fixtures of the fault and attack matrix (helpers in ``_support.py``).

Every row of the matrix records what it measured (outcome, token requests, token exchanges, API calls)
with ``matrix.record(...)``; ``pytest tests/faults -v`` prints the collected rows as a table at the end.
"""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_odc.hooks.odc import OdcHook

from ._support import ROWS, DictStore, HookFactory, Matrix


@pytest.fixture
def matrix(request: pytest.FixtureRequest) -> Matrix:
    return Matrix(request)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    if not ROWS or config.option.verbose < 1:
        return
    terminalreporter.section("ODC fault and attack matrix (measured)")
    width = max(len(row.row) for row in ROWS)
    terminalreporter.write_line(f"{'row':<{width}}  token req  exchanges  API calls  outcome")
    for row in ROWS:
        terminalreporter.write_line(
            f"{row.row:<{width}}  {row.token_requests:>9}  {row.exchanges:>9}  {row.api_calls:>9}  {row.outcome}"
        )


@pytest.fixture
def variables(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The 'Variables' every hook of the test reads and writes (key -> stored value), in a dict."""
    values: dict[str, str] = {}
    monkeypatch.setattr(OdcHook, "token_store", lambda key: DictStore(values, key))
    return values


@pytest.fixture
def make_hook(odc_emulator: Any, monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]) -> HookFactory:
    """Hooks on the emulator whose token cache works as in a task (a writable shared store)."""
    return HookFactory(odc_emulator, monkeypatch)
