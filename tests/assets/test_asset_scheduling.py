"""A real scheduler schedules on an ODC Asset: the example consumer, scheduled on the Production stage's
``odc://`` asset, runs exactly once after the example producer deploys an app to Production, and smoke-tests
the URL ODC gives for the app (https, through a proxy to a loopback server; see ``_smoke_target``).

Its own stack (example_dags/, SQLite, LocalExecutor, triggerer) because it needs its own environment.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from airflow_provider_odc.assets import odc_asset, odc_stage_asset
from airflow_provider_odc.hooks.odc import OdcHook
from devtools.stack import AirflowStack

from ..lifecycle.conftest import web_app
from ._smoke_target import smoke_target

pytestmark = pytest.mark.scheduler

EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"
PRODUCER, CONSUMER = "odc_assets_deploy_to_production", "odc_assets_smoke_checks"
STAGE_DOMAINS = ("emulator-dev.outsystems.app", "emulator-qa.outsystems.app", "emulator-prd.outsystems.app")


def runs_of(stack: AirflowStack, dag_id: str) -> list[dict[str, Any]]:
    return list(stack._paged(f"/api/v2/dags/{dag_id}/dagRuns", "dag_runs"))


def listed_assets(stack: AirflowStack) -> dict[str, dict[str, Any]]:
    """The odc:// assets the REST API lists (what the UI's asset view shows), by URI."""
    page = stack.rest("GET", "/api/v2/assets", params={"uri_pattern": "odc://", "limit": 100}).json()
    return {a["uri"]: a for a in page["assets"]}


def wait_for_first_run(stack: AirflowStack, dag_id: str, timeout: float = 240) -> dict[str, Any]:
    """The DAG's first run, once it has ended (the scheduler creates it from the Asset event)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = runs_of(stack, dag_id)
        if runs:
            return stack.wait_for_run(dag_id, runs[0]["dag_run_id"], timeout=max(deadline - time.monotonic(), 1))
        time.sleep(0.5)
    raise AssertionError(f"{dag_id} never ran; scheduler log:\n{stack._tail('scheduler')}")


def test_consumer_runs_once_after_a_production_deploy(tmp_path: Path, odc_emulator: Any, odc_connection: str) -> None:
    odc_emulator.configure(build_durations={"pending": 0.5, "running": 1.0}, operation_duration=3.0)
    app = web_app(odc_emulator, with_release_build=False)
    production = OdcHook().resolve_stage("Production")
    portal = urlsplit(odc_emulator.base_url).netloc
    (tmp_path / "tls").mkdir()

    with smoke_target(tmp_path / "tls", *STAGE_DOMAINS) as (app_server, proxy):
        env = {
            "AIRFLOW_CONN_ODC_DEFAULT": odc_emulator.connection_json(),
            "ODC_PORTAL_DOMAIN": portal,
            "ODC_PRODUCTION_STAGE_KEY": production.key,
            "HTTPS_PROXY": proxy.url,
            "https_proxy": proxy.url,
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "REQUESTS_CA_BUNDLE": str(app_server.cert),
        }
        with AirflowStack(tmp_path / "home", EXAMPLE_DAGS, env=env) as stack:
            resp = stack.rest("PATCH", f"/api/v2/dags/{CONSUMER}", json={"is_paused": False})
            assert resp.ok, resp.text
            consumer = stack.rest("GET", f"/api/v2/dags/{CONSUMER}").json()
            assert consumer["timetable_summary"] == "Asset", consumer
            assert runs_of(stack, CONSUMER) == []

            produced = stack.run_dag(PRODUCER, conf={"asset": app["name"]})
            assert produced["state"] == "success", stack.explain(PRODUCER, produced["dag_run_id"])

            run = wait_for_first_run(stack, CONSUMER)
            assert run["state"] == "success", stack.explain(CONSUMER, run["dag_run_id"])
            assert run["run_type"] == "asset_triggered"

            # Exactly once: one run, and nothing left queued that could start a second one.
            assert [r["dag_run_id"] for r in runs_of(stack, CONSUMER)] == [run["dag_run_id"]]
            queued = stack.rest("GET", f"/api/v2/dags/{CONSUMER}/assets/queuedEvents")
            assert queued.status_code == 404 or queued.json()["queued_events"] == [], queued.text

            # The events the producer emitted, as the API (and the UI's asset view) shows them.
            stage_uri = odc_stage_asset(portal, production.key).uri
            app_uri = odc_asset(portal, production.key, app["assetKey"]).uri
            # The per-app asset is created at run time (through the alias); the API lists it once the
            # scheduler's next asset pass has marked it active (every 60 s by default).
            assets = listed_assets(stack)
            deadline = time.monotonic() + 150
            while not {stage_uri, app_uri} <= set(assets) and time.monotonic() < deadline:
                time.sleep(1)
                assets = listed_assets(stack)
            assert {stage_uri, app_uri} <= set(assets)
            events = stack.rest("GET", "/api/v2/assets/events", params={"asset_id": assets[stage_uri]["id"]}).json()
            assert events["total_entries"] == 1
            extra = events["asset_events"][0]["extra"]
            assert extra["operation"] == "Deploy" and extra["asset_key"] == app["assetKey"]
            assert extra["stage_key"] == production.key and extra["stage_name"] == "Production"
            assert extra["revision"] == app["latestRevision"] and extra["build_key"] and extra["operation_key"]
            assert events["asset_events"][0]["source_dag_id"] == PRODUCER

            # The smoke check used the URL ODC gives for the app on Production, over verified TLS.
            deployed = OdcHook().list_deployed_assets(asset_key=app["assetKey"], stage_key=production.key)
            url = deployed[0].on_stage(production.key).url  # type: ignore[union-attr]
            xcoms = stack.xcom_values(CONSUMER, run["dag_run_id"])
            assert xcoms["smoke_check"] == [
                {"asset_name": app["name"], "revision": app["latestRevision"], "url": url, "status": 200}
            ]
            assert app_server.requests == [(urlsplit(url).netloc, urlsplit(url).path)]
            assert proxy.targets == [f"{urlsplit(url).netloc}:443"]
            assert "passed for 1 app(s)" in xcoms["report"]
