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

Testing your own DAG offline::

    # tests/test_sync_assets_dag.py
    def test_sync_assets_dag(odc_connection, odc_emulator):
        from dags.sync_assets import dag  # its tasks use conn_id="odc_default"

        dag.test()

        stats = odc_emulator.stats()
        assert stats["token_exchanges"] == 1  # one token, reused
        assert stats["api_calls"]["GET /api/asset-repository/v1/assets"] >= 1


    def test_sync_assets_survives_rate_limiting(odc_connection, odc_emulator):
        odc_emulator.add_fault(target="api", status=429, count=2, retry_after="1")
        ...

    def test_deploy_dag_reports_the_error_messages(odc_connection, odc_emulator):
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

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from airflow_provider_odc.emulator.server import OdcEmulator

CONN_ID = "odc_default"


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
