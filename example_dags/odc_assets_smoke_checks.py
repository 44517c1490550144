"""Smoke-test whatever reaches Production: scheduled on the ODC Asset of the Production stage.

Every finished deploy, configuration apply or publish to Production by an ``odc`` operator (in any DAG, e.g.
``odc_assets_deploy_to_production``) is an Asset event on ``odc://<portal>/stages/<Production key>``; each
event starts (or joins) one run of this DAG. The run reads which app and revision reached Production from
the events' extra, asks ODC for the app's URL on that stage, and checks that the URL answers.

Asset URIs name the stage by key, not by name (names change). Set your portal and Production stage key
below, or through the environment (``ODC_PORTAL_DOMAIN``, ``ODC_PRODUCTION_STAGE_KEY``); the key is the
``stageid=`` in the ODC Portal's URLs, or ``OdcHook().resolve_stage("Production").key``.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

import requests
from airflow.sdk import DAG, task

from airflow_provider_odc.assets import odc_stage_asset
from airflow_provider_odc.hooks.odc import OdcHook

PORTAL = os.environ.get("ODC_PORTAL_DOMAIN", "acme.outsystems.dev")
PRODUCTION_STAGE_KEY = os.environ.get("ODC_PRODUCTION_STAGE_KEY", "00000000-0000-4000-8000-000000000000")
PRODUCTION_APPS = odc_stage_asset(PORTAL, PRODUCTION_STAGE_KEY)  # any app in Production

with DAG(
    dag_id="odc_assets_smoke_checks",
    description="Smoke-test every app an ODC deployment brings to Production",
    schedule=PRODUCTION_APPS,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["odc", "example", "assets"],
) as dag:

    @task
    def reached_production(**context: Any) -> list[dict[str, Any]]:
        """One entry per app that reached Production since the last run (the events' extra: keys, names,
        revision, build and operation keys; never a secret)."""
        events = context["triggering_asset_events"][PRODUCTION_APPS]
        latest: dict[str, dict[str, Any]] = {}
        for event in events:  # several deployments may be batched into one run: check each app once
            latest[event.extra["asset_key"]] = dict(event.extra)
        return list(latest.values())

    @task
    def smoke_check(app: dict[str, Any]) -> dict[str, Any]:
        """Ask ODC for the app's URL on the stage, then check that it answers (and what revision runs there)."""
        deployed = OdcHook().list_deployed_assets(asset_key=app["asset_key"], stage_key=app["stage_key"])
        deployment = next((d for a in deployed for d in [a.on_stage(app["stage_key"])] if d is not None), None)
        if deployment is None or not deployment.url:
            raise RuntimeError(f"ODC lists no URL for {app['asset_name']} on {app['stage_name']}.")
        if deployment.revision != app["revision"]:
            print(f"Note: revision {deployment.revision} runs now (the event was for {app['revision']}).")
        response = requests.get(deployment.url, timeout=30, allow_redirects=True)
        if response.status_code >= 400:
            raise RuntimeError(f"{app['asset_name']} at {deployment.url} answered {response.status_code}.")
        return {
            "asset_name": app["asset_name"],
            "revision": deployment.revision,
            "url": deployment.url,
            "status": response.status_code,
        }

    @task
    def report(results: list[dict[str, Any]]) -> str:
        """One line per app checked; the run (and this summary) is the report."""
        lines = [f"{r['asset_name']} revision {r['revision']}: {r['url']} -> {r['status']}" for r in results]
        summary = f"Production smoke checks passed for {len(lines)} app(s):\n" + "\n".join(lines)
        print(summary)
        return summary

    report(smoke_check.expand(app=reached_production()))
