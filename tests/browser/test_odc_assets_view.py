"""The ODC Assets in Airflow's Assets view: on a full stack (scheduler, triggerer, API server serving the UI)
the example producer deploys an app to Production against the emulator, and the UI lists the ``odc://``
assets and shows the deployment's event with its extra. Screenshots: ``test-artifacts/browser/odc_assets_*.png``.

A full stack, not the API server alone: the scheduler is what activates an asset that an ``AssetAlias``
materialized at runtime (the app-in-stage asset), and only active assets are listed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from airflow_provider_odc.assets import odc_asset, odc_stage_asset
from airflow_provider_odc.hooks.odc import OdcHook
from devtools.stack import AirflowStack

from ..lifecycle.conftest import web_app
from .conftest import ARTIFACTS, DEFAULT_TIMEOUT_MS, NAVIGATION_TIMEOUT_MS

pytestmark = [pytest.mark.browser, pytest.mark.scheduler]

EXAMPLES = Path(__file__).resolve().parents[2] / "example_dags"
PRODUCER = "odc_assets_deploy_to_production"


def listed_odc_assets(stack: AirflowStack, wanted: set[str], timeout: float = 120) -> dict[str, Any]:
    """The active ``odc://`` assets by URI, once all of ``wanted`` are among them."""
    deadline = time.monotonic() + timeout
    while True:
        listed = {
            a["uri"]: a for a in stack.rest("GET", "/api/v2/assets", params={"uri_pattern": "odc://"}).json()["assets"]
        }
        if wanted <= set(listed) or time.monotonic() > deadline:
            return listed
        time.sleep(0.5)


def shown(text: str) -> str:
    """Text as a person reads it: without the line-break opportunities the UI may insert."""
    return "".join(ch for ch in text if ch not in "\u200b\u00ad\n ")


@pytest.fixture
def ui_page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A browser context on whatever stack the test starts (``page.goto`` with full URLs)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1400, "height": 1200})
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-FAILED.png"), full_page=True)
        context.close()


def test_assets_view_shows_the_odc_assets_and_the_deployment_event(
    ui_page: Any, tmp_path: Path, odc_emulator: Any, odc_connection: str
) -> None:
    from playwright.sync_api import expect

    page = ui_page
    odc_emulator.configure(build_durations={"pending": 0.2, "running": 0.4}, operation_duration=1.0)
    app = web_app(odc_emulator, with_release_build=True)
    production = OdcHook().resolve_stage("Production")
    portal = urlsplit(odc_emulator.base_url).netloc
    env = {
        "AIRFLOW_CONN_ODC_DEFAULT": odc_emulator.connection_json(),
        "ODC_PORTAL_DOMAIN": portal,
        "ODC_PRODUCTION_STAGE_KEY": production.key,
        "AIRFLOW__SCHEDULER__PARSING_CLEANUP_INTERVAL": "2",  # activate runtime-made assets within seconds
    }
    with AirflowStack(tmp_path / "home", EXAMPLES, env=env) as stack:
        run = stack.run_dag(PRODUCER, conf={"asset": app["name"]})
        assert run["state"] == "success", stack.explain(PRODUCER, run["dag_run_id"])
        stage_uri = odc_stage_asset(portal, production.key).uri
        app_uri = odc_asset(portal, production.key, app["assetKey"]).uri
        listed = listed_odc_assets(stack, {stage_uri, app_uri})
        assert {stage_uri, app_uri} <= set(listed)

        expect.set_options(timeout=DEFAULT_TIMEOUT_MS)
        page.goto(f"{stack.base_url}/assets")
        for uri in (stage_uri, app_uri):  # each asset's name (its URI) links to its page
            link = page.locator(f'a[href$="/assets/{listed[uri]["id"]}"]').first
            expect(link).to_be_visible()
            assert shown(link.inner_text()) == uri
        page.screenshot(path=str(ARTIFACTS / "odc_assets_list.png"), full_page=True, animations="disabled")

        page.goto(f"{stack.base_url}/assets/{listed[app_uri]['id']}")
        expect(page.get_by_text(app_uri).first).to_be_visible()
        expect(page.get_by_text(PRODUCER).first).to_be_visible()  # the event's source DAG
        page.screenshot(path=str(ARTIFACTS / "odc_assets_app_event.png"), full_page=True, animations="disabled")
        assert odc_emulator.client_secret not in page.content()
