"""Fixtures for tests that run DAGs on a real Airflow stack (see ``stack.py``).

Tests that use ``airflow_stack`` get the ``scheduler`` marker automatically, so ``-m "not scheduler"``
skips them and ``-m scheduler`` selects them. The stack's home is kept by pytest under its basetemp
(``pytest-of-<user>/pytest-<n>/airflow-home0``) for a post-mortem look at the logs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from airflow_provider_odc.emulator.server import OdcEmulator

from .stack import AirflowStack

DAGS_FOLDER = Path(__file__).parent / "dags"
_started: list[AirflowStack] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "airflow_stack" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.scheduler)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say where the stack's home (logs, DB) is and how long its start took."""
    for stack in _started:
        phases = ", ".join(f"{phase} {seconds:.1f}s" for phase, seconds in stack.timings.items())
        terminalreporter.write_line(f"airflow stack: home {stack.home}; start: {phases}")


@pytest.fixture(scope="session")
def airflow_stack_env(odc_emulator_session: OdcEmulator) -> Mapping[str, str]:
    """Extra environment for every process of the session's Airflow stack (all values strings).

    The workers get an ``odc_default`` connection to the session's ODC emulator (the emulator runs in
    the pytest process; tasks reach it over loopback). Tests that count emulator calls use the
    function-scoped ``odc_emulator`` fixture, which resets the same server before each test.

    The stack starts once per session, so this environment is fixed for the whole session; a test
    that needs different settings must start its own ``AirflowStack``.
    """
    return {"AIRFLOW_CONN_ODC_DEFAULT": odc_emulator_session.connection_json()}


@pytest.fixture(scope="session")
def airflow_stack(
    tmp_path_factory: pytest.TempPathFactory, airflow_stack_env: Mapping[str, str]
) -> Iterator[AirflowStack]:
    """One running stack (api-server, scheduler, dag-processor, triggerer) shared by the whole session.

    Runs at DEBUG log level, so leak scans see everything a task could write. Serves the DAGs in
    ``tests/integration/dags``; a DAG file added there later is picked up within
    seconds. Stopped (every process, including task processes) at the end of the session.
    """
    stack = AirflowStack(tmp_path_factory.mktemp("airflow-home"), DAGS_FOLDER, env=airflow_stack_env, log_level="DEBUG")
    _started.append(stack)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()
