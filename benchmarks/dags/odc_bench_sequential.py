"""N tasks in a row, each in its own worker process, each calling ODC once (``make bench``)."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, task

from airflow_provider_odc.hooks.odc import OdcHook

TASKS = 10

with DAG(
    dag_id="odc_bench_sequential",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    params={"conn_id": "odc_default"},
) as dag:

    @task
    def call_odc(params: dict[str, str]) -> int:
        return OdcHook(params["conn_id"]).request("GET", "/api/portfolios/v2/environments").status_code

    previous = None
    for number in range(1, TASKS + 1):
        current = call_odc.override(task_id=f"task_{number:02d}")()
        if previous is not None:
            previous >> current
        previous = current
