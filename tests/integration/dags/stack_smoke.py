"""Smoke DAG for the integration stack: three tasks, each in its own worker process.

``first`` stores a Variable, ``second`` and ``third`` read it. Each task returns its pid, so the test can
prove the tasks ran in different processes and still shared the Variable through Airflow.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from typing import Any

from airflow.sdk import DAG, Variable, get_current_context, task

log = logging.getLogger(__name__)


def _report(name: str, **extra: Any) -> dict[str, Any]:
    marker = get_current_context()["dag_run"].conf.get("marker", "")
    log.info("stack_smoke task=%s pid=%s marker=%s", name, os.getpid(), marker)
    return {"pid": os.getpid(), **extra}


with DAG(
    dag_id="stack_smoke",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["integration"],
):

    @task
    def first() -> dict[str, Any]:
        Variable.set("stack_smoke_value", "x")
        return _report("first")

    @task
    def second() -> dict[str, Any]:
        return _report("second", value=Variable.get("stack_smoke_value"))

    @task
    def third() -> dict[str, Any]:
        return _report("third", value=Variable.get("stack_smoke_value"))

    first() >> second() >> third()
