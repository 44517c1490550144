"""Smoke-test every app that reaches Production, whoever deployed it (the ODC Portal, a pipeline, Airflow).

An ``AssetWatcher`` runs :class:`OdcDeploymentEventTrigger` in Airflow's triggerer: it watches ODC's
deployment operations of the Production stage (through the shared poller, about 2 requests a minute) and
turns each finished deployment into one event on the stage's ODC Asset, which starts one run of this DAG.
The run reads the app and revision from the event (``event_extra``: the same fields the ``odc`` operators
emit), asks ODC for the app's URL on that stage, checks that it answers, and reports.

Set your portal and Production stage key below or through the environment (``ODC_PORTAL_DOMAIN``,
``ODC_PRODUCTION_STAGE_KEY``). The trigger's kwargs hold the connection id, the stage and the filters, no
secret; its cursor lives in an Airflow Variable named ``odc_deploy_watch_cursor__<hash>``.

Deploy this example **or** ``odc_assets_smoke_checks``, not both on the same stage: Airflow takes an
Asset's watchers from the DAG file it parsed last, and that file names the same stage Asset without the
watcher (which would detach it). In your own DAGs, define the watched Asset once and import it. With the
watcher on, a deploy by an ``odc`` operator is seen twice (the operator's event and the watcher's).
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

import requests
from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_provider_odc.assets import odc_stage_asset
from airflow_provider_odc.hooks.odc import OdcHook
from airflow_provider_odc.triggers.events import OdcDeploymentEventTrigger, event_extra

PORTAL = os.environ.get("ODC_PORTAL_DOMAIN", "acme.outsystems.dev")
PRODUCTION_STAGE_KEY = os.environ.get("ODC_PRODUCTION_STAGE_KEY", "00000000-0000-4000-8000-000000000000")
POLL_INTERVAL = float(os.environ.get("ODC_WATCH_POLL_INTERVAL", "30"))  # ODC's slow poll interval

_stage = odc_stage_asset(PORTAL, PRODUCTION_STAGE_KEY)
PRODUCTION_DEPLOYMENTS = Asset(
    name=_stage.name,
    uri=_stage.uri,
    watchers=[
        AssetWatcher(
            name="odc_production_deployments",
            trigger=OdcDeploymentEventTrigger(
                odc_conn_id="odc_default", stage_key=PRODUCTION_STAGE_KEY, poll_interval=POLL_INTERVAL
            ),
        )
    ],
)

with DAG(
    dag_id="odc_assets_portal_deployments",
    description="Smoke-test every app deployed to Production, also from the ODC Portal",
    schedule=PRODUCTION_DEPLOYMENTS,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["odc", "example", "assets"],
) as dag:

    @task
    def deployed(**context: Any) -> list[dict[str, Any]]:
        """One entry per deployment the run was started for (keys, names, revision, operation key)."""
        return [event_extra(dict(event.extra)) for event in context["triggering_asset_events"][PRODUCTION_DEPLOYMENTS]]

    @task
    def smoke_check(deployment: dict[str, Any]) -> dict[str, Any]:
        """Ask ODC for the app's URL on the stage and check that it answers."""
        apps = OdcHook().list_deployed_assets(asset_key=deployment["asset_key"], stage_key=deployment["stage_key"])
        on_stage = next((d for a in apps for d in [a.on_stage(deployment["stage_key"])] if d is not None), None)
        if on_stage is None or not on_stage.url:
            raise RuntimeError(f"ODC lists no URL for {deployment['asset_name']} on {deployment['stage_name']}.")
        response = requests.get(on_stage.url, timeout=30, allow_redirects=True)
        if response.status_code >= 400:
            raise RuntimeError(f"{deployment['asset_name']} at {on_stage.url} answered {response.status_code}.")
        return {
            "operation_key": deployment["operation_key"],
            "asset_name": deployment["asset_name"],
            "url": on_stage.url,
            "status": response.status_code,
        }

    @task
    def report(results: list[dict[str, Any]]) -> str:
        lines = [f"{r['asset_name']} ({r['operation_key']}): {r['url']} -> {r['status']}" for r in results]
        summary = f"Smoke checks passed for {len(lines)} Production deployment(s):\n" + "\n".join(lines)
        print(summary)
        return summary

    report(smoke_check.expand(deployment=deployed()))
