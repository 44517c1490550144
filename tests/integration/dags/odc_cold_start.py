"""Twenty cold worker processes that all want an ODC token at the same instant.

Each mapped task instance starts in its own worker process (LocalExecutor), then waits for the shared
wall-clock moment ``start_at`` (epoch seconds, from the DAG run conf) before its first ODC call, so
all twenty hit an empty token cache together. Nothing secret goes to XCom: a token fingerprint only.
"""

from __future__ import annotations

import hashlib
import os
import time
from datetime import datetime
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_odc.hooks.odc import OdcHook

TASKS = 20

with DAG(
    dag_id="odc_cold_start",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_tasks=TASKS,
    params={"start_at": 0.0, "conn_id": "odc_default"},
    tags=["odc", "test"],
) as dag:

    @task(multiple_outputs=False)  # one XCom per task, not one per key: 20 tasks finish at once
    def cold_call(index: int, params: dict[str, Any]) -> dict[str, Any]:
        arrived = time.time()
        start_at = float(params["start_at"])
        while (left := start_at - time.time()) > 0:
            time.sleep(min(left, 0.2))
        released = time.time()
        hook = OdcHook(params["conn_id"])
        status = hook.request("GET", "/api/portfolios/v2/environments").status_code
        token = hook.get_access_token()
        return {
            "index": index,
            "pid": os.getpid(),
            "arrived": arrived,
            "released": released,
            "done": time.time(),
            "status": status,
            "token": hashlib.sha256(token.encode()).hexdigest()[:12],
        }

    cold_call.expand(index=list(range(TASKS)))
