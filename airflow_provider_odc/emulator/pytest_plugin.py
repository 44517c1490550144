"""pytest fixtures that run a local ODC emulator, so DAGs using the ODC provider can be tested offline.

Registered automatically through the ``pytest11`` entry point once ``airflow-provider-odc`` is installed.
Nothing heavy is imported until a fixture is used.

Fixtures:

``odc_emulator``
    The session's emulator, reset (counters, tokens, faults, config, rate-limit windows) before each test.
    It enforces ODC's documented rate limits (100 requests a minute per API, 10 build or deployment POSTs a
    minute, ...) and sends no ``Retry-After``, as ODC; ``configure(rate_limits=False)`` lifts them.
``odc_emulator_session``
    The same server without the per-test reset (session scope), for session-scoped fixtures of your own.
``odc_connection``
    Points the Airflow connection ``odc_default`` at the emulator (``AIRFLOW_CONN_ODC_DEFAULT``, undone
    after the test) and yields the connection id.
``odc_airflow``
    A throwaway Airflow for ``dag.test()``: a migrated SQLite metadata database in a temporary
    ``AIRFLOW_HOME``, your DAG folder as its DAG bundle, and no cached ODC token at the start of each test.
    Needs the ``odc_dags_folder`` setting (below).

Testing your own DAG offline, in a project with ``dags/`` and ``tests/`` folders::

    # pyproject.toml
    [tool.pytest.ini_options]
    pythonpath = ["."]          # so that tests can import dags.my_dag
    odc_dags_folder = "dags"    # relative to this file

    # tests/test_my_dag.py
    from dags.my_dag import my_dag

    def test_my_dag(odc_airflow, odc_emulator, odc_connection):
        odc_emulator.add_fault(target="api", status=429, count=2, retry_after="1")
        run = my_dag.test()
        assert run.state == "success"
        assert odc_emulator.stats()["token_exchanges"] == 1

With ``odc_dags_folder`` set, the plugin gives the whole session a new, empty ``AIRFLOW_HOME`` (and
database URL) before Airflow is first imported, whatever the environment says, so tests never touch your
real Airflow; it is deleted at the end of the session. More controls::

    def test_deploy_dag_reports_the_error_messages(odc_airflow, odc_emulator, odc_connection):
        odc_emulator.configure(operation_duration=0)  # or odc_emulator.advance(seconds) between polls
        odc_emulator.fail_next("deploy", messages=["Database upgrade failed."])
        ...
        assert odc_emulator.stats()["operations_started"]["deploy"] == 1  # the POST was not re-sent

The emulator serves 25 deterministic assets (each with revisions 1..N, some tagged), three stages
(Development, QA, Production), seeded builds and deployments; ``odc_emulator.inventory()`` lists them. See
``airflow_provider_odc.emulator.server.OdcEmulator`` for the control helpers (``add_fault``,
``revoke_tokens``, ``configure``, ``recent_requests``, ``advance``, ``fail_next``, ``inventory``).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from airflow_provider_odc.emulator.server import OdcEmulator

CONN_ID = "odc_default"
DAGS_FOLDER_INI = "odc_dags_folder"
_airflow_home: Path | None = None  # the session's throwaway AIRFLOW_HOME, when odc_dags_folder is set


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        DAGS_FOLDER_INI,
        "Your DAG folder (relative to the ini file) for dag.test() with the odc_airflow fixture: the session "
        "then gets a throwaway AIRFLOW_HOME and SQLite database, with that folder as its DAG bundle.",
        default="",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """Isolate Airflow before any conftest or test module imports it (it reads its home once, at import)."""
    global _airflow_home
    folder = str(early_config.getini(DAGS_FOLDER_INI) or "").strip()
    if not folder:
        return
    from airflow_provider_odc.emulator.isolated_airflow import DagTestSetupError, isolate_airflow

    base = early_config.inipath.parent if early_config.inipath else early_config.rootpath
    try:
        _airflow_home = isolate_airflow((base / folder).resolve())
    except DagTestSetupError as error:
        raise pytest.UsageError(str(error)) from None


def pytest_unconfigure(config: pytest.Config) -> None:
    if _airflow_home is not None:
        shutil.rmtree(_airflow_home, ignore_errors=True)


@pytest.fixture(scope="session")
def odc_emulator_session() -> Iterator[OdcEmulator]:
    """One emulator for the whole test session (started lazily, stopped at the end)."""
    from airflow_provider_odc.emulator.server import OdcEmulator

    with OdcEmulator() as emulator:
        yield emulator


@pytest.fixture
def odc_emulator(odc_emulator_session: OdcEmulator) -> OdcEmulator:
    """The session emulator, freshly reset so every test starts with zero counters and no faults."""
    odc_emulator_session.reset()
    return odc_emulator_session


@pytest.fixture
def odc_connection(odc_emulator: OdcEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Set ``AIRFLOW_CONN_ODC_DEFAULT`` to the emulator's connection JSON and yield ``"odc_default"``."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", odc_emulator.connection_json())
    yield CONN_ID


@pytest.fixture(scope="session")
def odc_airflow_session() -> Path:
    """The session's throwaway AIRFLOW_HOME, its database migrated once (``airflow db migrate``)."""
    if _airflow_home is None:
        pytest.fail(
            f'odc_airflow needs the {DAGS_FOLDER_INI} setting: add `{DAGS_FOLDER_INI} = "dags"` (your DAG '
            "folder) under [tool.pytest.ini_options] in pyproject.toml, or [pytest] in pytest.ini",
            pytrace=False,
        )
    from airflow_provider_odc.emulator.isolated_airflow import DagTestSetupError, migrate_database

    try:
        migrate_database()
    except DagTestSetupError as error:
        pytest.fail(str(error), pytrace=False)
    return _airflow_home


@pytest.fixture
def odc_airflow(odc_airflow_session: Path) -> Path:
    """A throwaway Airflow for ``dag.test()``; each test starts with no ODC token cached (memory, Variable)."""
    from airflow_provider_odc.emulator.isolated_airflow import forget_cached_tokens

    forget_cached_tokens(CONN_ID)
    return odc_airflow_session
