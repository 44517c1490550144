"""Two ODC calls in a row, for the fault matrix rows that must run inside a real Airflow task.

``dag.test()`` runs both tasks in the test process, with real task contexts: ``Variable.get`` and
``Variable.set`` go through the task SDK to the metadata database, as on a worker.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_odc.hooks.odc import OdcHook

with DAG(
    dag_id="odc_fault_cache",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["odc", "test"],
) as dag:

    @task
    def call_odc() -> dict[str, Any]:
        hook = OdcHook()
        response = hook.request("GET", "/api/portfolios/v2/environments")
        token = hook.token_cache.current()  # the token the call just used
        return {"status": response.status_code, "token": token.fingerprint if token else None}

    call_odc.override(task_id="first")() >> call_odc.override(task_id="second")()
