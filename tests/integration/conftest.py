"""Fixtures for tests that run DAGs on a real Airflow stack (see ``devtools/stack.py``).

Tests that use ``airflow_stack`` (or ``airflow_stack_postgres``) get the ``scheduler`` marker
automatically, so ``-m "not scheduler"`` skips them and ``-m scheduler`` selects them. The stack's home is
kept by pytest under its basetemp (``pytest-of-<user>/pytest-<n>/airflow-home0``) for a post-mortem look
at the logs.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from airflow_provider_odc.emulator.server import OdcEmulator
from devtools.stack import AirflowStack

from ..required import missing

DAGS_FOLDER = Path(__file__).parent / "dags"
EXAMPLE_DAGS_FOLDER = Path(__file__).resolve().parents[2] / "example_dags"
STACK_FIXTURES = frozenset({"airflow_stack", "airflow_stack_postgres", "airflow_stack_examples"})
POSTGRES_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "postgres.sh"
#: LocalExecutor parallelism of the PostgreSQL stack: enough for the 20 simultaneous tasks of the
#: cold-start test (each idle worker costs about 180 MB of RSS).
POSTGRES_STACK_PARALLELISM = 20
_started: list[AirflowStack] = []
_postgres_timings: dict[str, float] = {}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if STACK_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.scheduler)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say where the stack's home (logs, DB) is and how long its start took."""
    for stack in _started:
        phases = ", ".join(f"{phase} {seconds:.1f}s" for phase, seconds in stack.timings.items())
        terminalreporter.write_line(f"airflow stack: home {stack.home}; start: {phases}")
    if _postgres_timings:
        phases = ", ".join(f"{phase} {seconds:.1f}s" for phase, seconds in _postgres_timings.items())
        terminalreporter.write_line(f"postgresql (scripts/postgres.sh): {phases}")


@contextlib.contextmanager
def _running(stack: AirflowStack) -> Iterator[AirflowStack]:
    """Start ``stack``, name it in the session summary, and stop it (every process it started) afterwards."""
    _started.append(stack)
    with stack:
        yield stack


@pytest.fixture(scope="session")
def airflow_stack_env(odc_emulator_session: OdcEmulator) -> Mapping[str, str]:
    """Extra environment for every process of the session's Airflow stack (all values strings).

    The workers get an ``odc_default`` connection to the session's ODC emulator (the emulator runs in
    the pytest process; tasks reach it over loopback). Tests that count emulator calls use the
    function-scoped ``odc_emulator`` fixture, which resets the same server before each test.

    The stack starts once per session, so this environment is fixed for the whole session; a test
    that needs different settings must start its own ``AirflowStack``. ``odc_paced`` is the same portal with
    ``request_pacing: variable`` (the mass-redeploy test).
    """
    paced = {**odc_emulator_session.connection_dict(), "extra": {"request_pacing": "variable"}}
    return {
        "AIRFLOW_CONN_ODC_DEFAULT": odc_emulator_session.connection_json(),
        "AIRFLOW_CONN_ODC_PACED": json.dumps(paced),
    }


@pytest.fixture(scope="session")
def airflow_stack(
    tmp_path_factory: pytest.TempPathFactory, airflow_stack_env: Mapping[str, str]
) -> Iterator[AirflowStack]:
    """One running stack (api-server, scheduler, dag-processor, triggerer) shared by the whole session.

    Runs at DEBUG log level, so leak scans see everything a task could write. Serves the DAGs in
    ``tests/integration/dags``; a DAG file added there later is picked up within
    seconds. Stopped (every process, including task processes) at the end of the session.
    """
    home = tmp_path_factory.mktemp("airflow-home")
    with _running(AirflowStack(home, DAGS_FOLDER, env=airflow_stack_env, log_level="DEBUG")) as stack:
        yield stack


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL server on 127.0.0.1 (``scripts/postgres.sh``): the SQLAlchemy URL of its
    ``airflow`` database. The script installs PostgreSQL (Debian) and the drivers (psycopg2, asyncpg)
    when missing.

    Skips, saying why, only when PostgreSQL cannot be installed on this machine (exit code 3 of the
    script); under CI (``CI=true``, tests/required.py) that is a failure instead, so a green CI never hides it.
    """
    # Under /tmp, not pytest's basetemp: the server runs as the postgres user, who cannot enter basetemp.
    directory = Path(tempfile.mkdtemp(prefix="odc-postgres-"))
    started = time.monotonic()
    result = subprocess.run(
        ["bash", str(POSTGRES_SCRIPT), "start", str(directory)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": sys.executable},
        timeout=900,
    )
    if result.returncode != 0:
        shutil.rmtree(directory, ignore_errors=True)
        message = f"scripts/postgres.sh start exited {result.returncode}:\n{result.stderr[-3000:]}"
        if result.returncode == 3:
            missing(f"PostgreSQL cannot be installed on this machine. {message}")  # under CI a failure
        pytest.fail(message)
    _postgres_timings["install and start"] = time.monotonic() - started
    try:
        yield result.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run(["bash", str(POSTGRES_SCRIPT), "stop", str(directory)], capture_output=True, timeout=120)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def airflow_stack_postgres(
    tmp_path_factory: pytest.TempPathFactory, airflow_stack_env: Mapping[str, str], postgres_url: str
) -> Iterator[AirflowStack]:
    """Like ``airflow_stack``, with its metadata database on PostgreSQL instead of SQLite.

    Same environment and DAGs; parallelism ``POSTGRES_STACK_PARALLELISM`` (20), so that tests of
    simultaneous tasks can use it. Module-scoped: its 20 workers and the server stop when the module that
    uses them is done.
    """
    stack = AirflowStack(
        tmp_path_factory.mktemp("airflow-home-postgres"),
        DAGS_FOLDER,
        env=airflow_stack_env,
        sql_alchemy_conn=postgres_url,
        parallelism=POSTGRES_STACK_PARALLELISM,
        log_level="DEBUG",
    )
    with _running(stack):
        yield stack


@pytest.fixture(scope="module")
def airflow_stack_examples(
    tmp_path_factory: pytest.TempPathFactory, odc_emulator_session: OdcEmulator
) -> Iterator[AirflowStack]:
    """A stack serving ``example_dags/`` as users get them, at DEBUG, with ``odc_default`` stored in its
    database (made through the REST API, as the connections UI does) rather than in the environment.

    Module-scoped: stopped when the module's tests are done, so it never runs beside the other stacks
    for long.
    """
    home = tmp_path_factory.mktemp("airflow-home-examples")
    with _running(AirflowStack(home, EXAMPLE_DAGS_FOLDER, log_level="DEBUG")) as stack:
        fields = odc_emulator_session.connection_dict()
        resp = stack.rest("POST", "/api/v2/connections", json={"connection_id": "odc_default", **fields})
        if not resp.ok:
            raise AssertionError(f"creating odc_default -> {resp.status_code}: {resp.text}")
        yield stack
