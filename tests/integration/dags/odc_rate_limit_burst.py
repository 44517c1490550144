"""Thirty deployments released together: ODC accepts 10 deployment POSTs a minute and sends no Retry-After.

Every task is independent, so the scheduler releases them all at once (as many at a time as the executor
has slots). Each task POSTs one deployment and returns its key without waiting for it: the point is the
POST limit, which the tasks must wait out without losing a deployment or starting one twice.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_odc.operators.lifecycle import OdcDeployOperator

TASKS = 30
STAGES = ("Development", "QA", "Production")

with DAG(
    dag_id="odc_rate_limit_burst",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_tasks=TASKS,
    params={"asset": ""},
    tags=["odc", "test"],
) as dag:
    for number in range(TASKS):
        OdcDeployOperator(
            task_id=f"deploy_{number:02d}",
            asset="{{ params.asset }}",
            stage=STAGES[number % len(STAGES)],
            wait_for_completion=False,
            retries=0,  # an Airflow retry would hide a lost POST; the client alone must get through
        )
