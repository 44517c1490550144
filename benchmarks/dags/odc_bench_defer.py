"""One deferrable build (``make bench``): the triggerer waits for it with the token the tasks stored."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_odc.operators.lifecycle import OdcBuildOperator

with DAG(
    dag_id="odc_bench_defer",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    params={"asset": ""},
) as dag:
    OdcBuildOperator(
        task_id="build", asset="{{ params.asset }}", reuse_existing_build=False, deferrable=True, fast_interval=1
    )
