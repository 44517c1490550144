"""A deferrable build after a task that warmed the token cache: the triggerer must reuse that token."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, task

from airflow_provider_odc.hooks.odc import OdcHook
from airflow_provider_odc.operators.lifecycle import OdcBuildOperator

with DAG(
    dag_id="odc_deferred_build",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    params={"asset": ""},
) as dag:

    @task
    def warm_the_cache() -> int:
        return OdcHook().request("GET", "/api/portfolios/v2/environments").status_code

    build = OdcBuildOperator(
        task_id="build",
        asset="{{ params.asset }}",
        reuse_existing_build=False,
        deferrable=True,
        fast_interval=1,
    )
    warm_the_cache() >> build
