"""Four tasks that call ODC, each in its own worker process under LocalExecutor.

``first`` runs alone and leaves the token in the encrypted Variable; the other three then run side
by side and must reuse it: one token exchange for the whole run.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_odc.hooks.odc import OdcHook
from airflow_provider_odc.operators.odc import OdcApiOperator

with DAG(
    dag_id="odc_shared_token",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["odc", "test"],
) as dag:

    @task
    def call_odc() -> dict[str, Any]:
        hook = OdcHook()
        stages = hook.request("GET", "/api/portfolios/v2/environments").json()["results"]
        assets = list(hook.paginate("/api/asset-repository/v1/assets", page_size=10))
        return {"pid": os.getpid(), "stages": len(stages), "assets": len(assets)}

    first = call_odc.override(task_id="first")()
    stages = OdcApiOperator(
        task_id="list_stages",
        endpoint="/api/portfolios/v2/environments",
        response_filter=lambda response: {"pid": os.getpid(), "stages": len(response.json()["results"])},
    )
    first >> [stages, call_odc.override(task_id="second")(), call_odc.override(task_id="third")()]
