"""Many ODC calls from tasks spread over the fleet's workers.

``odc_fleet`` maps ``call`` over ``params.tasks`` indexes; Celery gives them to any worker.
``odc_fleet_on_<host>`` does the same on one host only (each worker also consumes a queue named after it).
Each task makes ``params.calls`` ODC calls, ``params.interval`` seconds apart. With ``params.barrier`` (a
folder every host sees: the namespaces share the file system), each task first writes ``arrived-<index>``
there and waits for the file ``release``, which the test creates once every task has arrived: tasks on both
hosts then want a token at the same instant, whatever each host's clock says. XCom gets the host, the
statuses and token fingerprints, never a token.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_odc.hooks.odc import OdcHook


def fleet_dag(dag_id: str, queue: str = "default") -> DAG:
    with DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=datetime(2025, 1, 1),
        catchup=False,
        max_active_tasks=200,
        params={"tasks": 10, "calls": 1, "interval": 0.0, "barrier": "", "conn_id": "odc_default"},
        tags=["odc", "test"],
    ) as dag:

        @task(queue=queue)
        def plan(params: dict[str, Any]) -> list[int]:
            return list(range(int(params["tasks"])))

        @task(queue=queue, multiple_outputs=False)
        def call(index: int, params: dict[str, Any]) -> dict[str, Any]:
            if params["barrier"]:
                barrier = Path(params["barrier"])
                (barrier / f"arrived-{index}").touch()
                while not (barrier / "release").exists():
                    time.sleep(0.02)
            hook = OdcHook(params["conn_id"])
            statuses, tokens = [], []
            for number in range(int(params["calls"])):
                if number:
                    time.sleep(float(params["interval"]))
                statuses.append(hook.request("GET", "/api/portfolios/v2/environments").status_code)
                tokens.append(hashlib.sha256(hook.get_access_token().encode()).hexdigest()[:12])
            return {
                "index": index,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "statuses": statuses,
                "tokens": tokens,
            }

        call.expand(index=plan())
    return dag


fleet = fleet_dag("odc_fleet")
on_w1 = fleet_dag("odc_fleet_on_w1", queue="w1")
on_w2 = fleet_dag("odc_fleet_on_w2", queue="w2")
