"""Many deferrable deploys of one app at once: their waits share the triggerer's poller (tests/poller)."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, get_current_context, task

from airflow_provider_odc.operators.lifecycle import OdcDeployOperator

with DAG(
    dag_id="odc_many_deploys",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    params={"asset": "", "stage": "", "count": 12},
    max_active_tasks=200,
) as dag:

    @task
    def copies() -> list[str]:
        params = get_current_context()["params"]
        return [params["asset"]] * int(params["count"])

    OdcDeployOperator.partial(
        task_id="deploy",
        stage="{{ params.stage }}",
        deferrable=True,
        fast_interval=2,
        fast_period=3600,
        slow_interval=2,
    ).expand(asset=copies())
