"""The ODC Assets in Airflow's Assets view: a real deployment (the example producer, run with
``airflow dags test`` against the emulator) emits its events, and the UI lists the ``odc://`` assets and
shows the event with its extra. Screenshots: ``test-artifacts/browser/odc_assets_*.png``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from airflow_provider_odc.assets import odc_asset, odc_stage_asset
from airflow_provider_odc.hooks.odc import OdcHook

from ..lifecycle.conftest import web_app
from .conftest import ARTIFACTS, AirflowApiServer

pytestmark = pytest.mark.browser

EXAMPLES = Path(__file__).resolve().parents[2] / "example_dags"
PRODUCER = "odc_assets_deploy_to_production"


def airflow_cli(server: AirflowApiServer, env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "airflow", *args],
        env={**server.environment(), **env},
        cwd=server.home,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"airflow {' '.join(args)}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def test_assets_view_shows_the_odc_assets_and_the_deployment_event(
    page: Any, airflow_api_server: AirflowApiServer, odc_emulator: Any, odc_connection: str
) -> None:
    from playwright.sync_api import expect

    odc_emulator.configure(build_durations={"pending": 0.2, "running": 0.4}, operation_duration=1.0)
    app = web_app(odc_emulator, with_release_build=True)
    production = OdcHook().resolve_stage("Production")
    portal = urlsplit(odc_emulator.base_url).netloc
    for name in ("odc_assets_deploy_to_production.py", "odc_assets_smoke_checks.py"):
        shutil.copy(EXAMPLES / name, airflow_api_server.home / "dags" / name)
    env = {
        "AIRFLOW_CONN_ODC_DEFAULT": odc_emulator.connection_json(),
        "ODC_PORTAL_DOMAIN": portal,
        "ODC_PRODUCTION_STAGE_KEY": production.key,
    }
    airflow_cli(airflow_api_server, env, "dags", "reserialize")
    airflow_cli(airflow_api_server, env, "dags", "test", PRODUCER, "--conf", json.dumps({"asset": app["name"]}))

    stage_uri = odc_stage_asset(portal, production.key).uri
    app_uri = odc_asset(portal, production.key, app["assetKey"]).uri
    listed = airflow_api_server.rest("GET", "/assets", params={"uri_pattern": "odc://"}).json()["assets"]
    assert {stage_uri, app_uri} <= {a["uri"] for a in listed}
    stage_id = next(a["id"] for a in listed if a["uri"] == stage_uri)

    page.goto("/assets")
    expect(page.get_by_text(stage_uri, exact=True).first).to_be_visible()
    expect(page.get_by_text(app_uri, exact=True).first).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "odc_assets_list.png"), full_page=True, animations="disabled")

    page.goto(f"/assets/{stage_id}")
    expect(page.get_by_text(stage_uri).first).to_be_visible()
    expect(page.get_by_text(PRODUCER).first).to_be_visible()  # the event's source DAG
    body = page.locator("body")
    expect(body).to_contain_text(app["assetKey"])  # the event's extra, as the UI shows it
    page.screenshot(path=str(ARTIFACTS / "odc_assets_stage_events.png"), full_page=True, animations="disabled")
    assert odc_emulator.client_secret not in page.content()
