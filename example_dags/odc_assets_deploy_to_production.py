"""Deploy an ODC app to Production. Its success is an Airflow Asset event on the app's ``odc://`` assets,
which ``odc_assets_smoke_checks`` is scheduled on: no sensor, no TriggerDagRunOperator.

Trigger it with ``{"asset": "<app name or key>", "revision": "latest" | "highest-tag" | <number>}``.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param

from airflow_provider_odc.operators.lifecycle import OdcDeployOperator

with DAG(
    dag_id="odc_assets_deploy_to_production",
    description="Deploy an ODC app to Production; the deployment is an Asset event for the smoke checks",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    params={
        "asset": Param("Claims Intake 001", type="string", description="App name (exact) or asset key"),
        "revision": Param("latest", type=["string", "integer"], description="Number, latest or highest-tag"),
    },
    tags=["odc", "example", "assets"],
) as dag:
    # Emits on odc://<portal>/stages/<Production key>/assets/<asset key> and odc://<portal>/stages/<Production key>
    # once ODC reports the deployment Finished (from execute_complete, since the wait is deferred).
    OdcDeployOperator(
        task_id="deploy_to_production",
        asset="{{ params.asset }}",
        revision="{{ params.revision }}",
        stage="Production",
        build_if_missing=True,
        deferrable=True,
    )
