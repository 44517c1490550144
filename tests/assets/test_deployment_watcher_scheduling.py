"""A real scheduler and triggerer run ``odc_assets_portal_deployments``: deployments started in the emulator
itself (not by Airflow, as a person in the ODC Portal would) each create exactly one DAG run, also across a
triggerer restart, with one deployment made while no triggerer ran; the trigger row carries no secret.

Its own dags folder holds only that example (another DAG file declaring the same Asset without the watcher
would, when parsed, detach it: Airflow takes an Asset's watchers from the file it last parsed).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography.fernet import Fernet

from airflow_provider_odc.hooks.odc import OdcHook
from airflow_provider_odc.triggers.events import Cursor, cursor_variable_key
from devtools.stack import AirflowStack

from ..poller.conftest import LIST_ROUTE, start_deployments
from ._smoke_target import smoke_target
from .test_asset_scheduling import STAGE_DOMAINS, runs_of

pytestmark = pytest.mark.scheduler

EXAMPLE = Path(__file__).resolve().parents[2] / "example_dags" / "odc_assets_portal_deployments.py"
DAG_ID = "odc_assets_portal_deployments"
RUN_WAIT = 300.0


def wait_for_runs(stack: AirflowStack, count: int) -> list[dict[str, Any]]:
    """The DAG's runs once there are ``count`` of them and all have ended."""
    deadline = time.monotonic() + RUN_WAIT
    while time.monotonic() < deadline:
        runs = runs_of(stack, DAG_ID)
        if len(runs) >= count and all(r["state"] in ("success", "failed") for r in runs):
            return sorted(runs, key=lambda r: r["run_after"])
        time.sleep(1)
    raise AssertionError(f"{len(runs_of(stack, DAG_ID))} of {count} runs; triggerer log:\n{stack._tail('triggerer')}")


def trigger_rows(stack: AirflowStack) -> list[tuple[Any, ...]]:
    path = stack.sqlite_path
    assert path is not None
    with sqlite3.connect(path) as db:
        return list(db.execute("SELECT id, classpath, kwargs, triggerer_id FROM trigger"))


def cursor_of(stack: AirflowStack, key: str) -> Cursor | None:
    resp = stack.rest("GET", f"/api/v2/variables/{key}")
    return Cursor.parse(resp.json()["value"]) if resp.ok else None


def ended(emulator: Any, key: str) -> bool:
    return emulator.state.release.get_operation("deployment", key)["status"] == "Finished"


def list_reads(emulator: Any) -> int:
    """The deployment list reads the emulator served (each scan of the watcher makes one)."""
    return int(emulator.stats()["api_calls"].get(LIST_ROUTE, 0))


def wait_until(probe: Any, what: str, stack: AirflowStack, timeout: float = RUN_WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"{what} never happened; triggerer log:\n{stack._tail('triggerer')}")


def test_each_portal_deployment_runs_the_dag_once_across_a_triggerer_restart(
    tmp_path: Path, odc_emulator: Any, odc_connection: str
) -> None:
    production = OdcHook().resolve_stage("Production")
    portal = urlsplit(odc_emulator.base_url).netloc
    dags = tmp_path / "dags"
    dags.mkdir()
    shutil.copy(EXAMPLE, dags / EXAMPLE.name)
    (tmp_path / "tls").mkdir()
    cursor_key = cursor_variable_key("odc_default", production.key, {"assets": None, "names": None, "failed": False})

    with smoke_target(tmp_path / "tls", *STAGE_DOMAINS) as (app_server, proxy):
        env = {
            "AIRFLOW_CONN_ODC_DEFAULT": odc_emulator.connection_json(),
            "ODC_PORTAL_DOMAIN": portal,
            "ODC_PRODUCTION_STAGE_KEY": production.key,
            "ODC_WATCH_POLL_INTERVAL": "2",
            "HTTPS_PROXY": proxy.url,
            "https_proxy": proxy.url,
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "REQUESTS_CA_BUNDLE": str(app_server.cert),
        }
        with AirflowStack(tmp_path / "home", dags, env=env) as stack:
            resp = stack.rest("PATCH", f"/api/v2/dags/{DAG_ID}", json={"is_paused": False})
            assert resp.ok, resp.text
            # The watcher runs once the unpaused DAG's Asset has its trigger and the triggerer wrote its start.
            wait_until(lambda: cursor_of(stack, cursor_key), "the watcher's first cursor", stack)
            assert runs_of(stack, DAG_ID) == []

            keys = start_deployments(odc_emulator, 1, durations=[1.0], stage=production.key)
            wait_for_runs(stack, 1)

            stack.stop_component("triggerer")
            keys += start_deployments(odc_emulator, 1, durations=[1.0], stage=production.key)  # nobody watches
            wait_until(lambda: ended(odc_emulator, keys[-1]), "the deployment's end", stack)  # with no triggerer
            stack.restart_component("triggerer")
            wait_for_runs(stack, 2)

            keys += start_deployments(odc_emulator, 1, durations=[1.0], stage=production.key)
            runs = wait_for_runs(stack, 3)
            # Exactly once: wait for scans past the last end (the cursor moved past it), then count again.
            wait_until(lambda: keys[-1] in (cursor_of(stack, cursor_key) or Cursor(0)).delivered, "cursor", stack)
            scans = list_reads(odc_emulator)
            wait_until(lambda: list_reads(odc_emulator) >= scans + 5, "five more scans", stack)  # re-reading the ends
            runs = wait_for_runs(stack, 3)
            assert len(runs) == 3, runs
            seen = []
            for run in runs:
                assert run["state"] == "success", stack.explain(DAG_ID, run["dag_run_id"])
                assert run["run_type"] == "asset_triggered"
                checks = stack.xcom_values(DAG_ID, run["dag_run_id"])["smoke_check"]
                seen += [check["operation_key"] for check in checks]
                assert all(check["status"] == 200 for check in checks)
            assert seen == keys  # one run per deployment, in order, none lost or repeated

            rows = trigger_rows(stack)
            assert [row[1] for row in rows] == ["airflow_provider_odc.triggers.events.OdcDeploymentEventTrigger"]
            encrypted = str(rows[0][2]).strip('"')  # Airflow encrypts trigger kwargs at rest: read them as it does
            stored = Fernet(stack.fernet_key().encode()).decrypt(encrypted.encode()).decode()
            assert "odc_default" in stored and production.key in stored
            client_secret = json.loads(odc_emulator.connection_json())["password"]
            assert client_secret not in stored
            assert not any(word in stored.lower() for word in ("secret", "token", "password"))
            assert len(app_server.requests) == 3
