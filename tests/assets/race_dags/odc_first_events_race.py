"""Mapped tasks that send Asset events on one brand-new ODC asset at the same instant.

``conf``: ``portal``, ``stage_key`` and ``asset_key`` (fresh keys each run, so the assets are new) and
``at`` (a wall-clock instant every task waits for, so their successes are recorded together).
"""

from __future__ import annotations

import time

from airflow.sdk import DAG, get_current_context, task

from airflow_provider_odc import assets
from airflow_provider_odc.assets import ODC_EVENTS_ALIAS, OdcEventSubject

TASKS = 4

with DAG("odc_first_events_race", schedule=None, max_active_tasks=TASKS):

    @task(outlets=[ODC_EVENTS_ALIAS])
    def deployed(index: int) -> int:
        context = get_current_context()
        conf = context["dag_run"].conf
        time.sleep(max(float(conf["at"]) - time.time(), 0.0))
        subject = OdcEventSubject(
            portal=conf["portal"],
            operation="Deploy",
            asset_key=conf["asset_key"],
            asset_name="Race App",
            revision=index,
            stage_key=conf["stage_key"],
            stage_name="Production",
        )
        assets.emit(context, subject)
        return index

    deployed.expand(index=list(range(TASKS)))
