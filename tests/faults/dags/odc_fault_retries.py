"""One operation-starting task per DAG, with ``retries=1`` and no retry delay, for the fault matrix rows
about Airflow's own task retries (``tests/faults/test_retry_faults.py``).

The asset and stage come from the run's conf; status polls are fast and one failed poll in a row is
tolerated (``poll_failure_limit=1``), so a test can make a wait fail with two.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG

from airflow_provider_odc.operators.lifecycle import OdcBuildOperator, OdcDeployOperator, OdcPublishOperator

FAST: dict[str, Any] = {
    "fast_interval": 0.05,
    "fast_period": 5,
    "slow_interval": 0.05,
    "poll_failure_limit": 1,
    "retries": 1,
    "retry_delay": timedelta(0),
}
ASSET = "{{ dag_run.conf['asset'] }}"


def _dag(dag_id: str) -> DAG:
    return DAG(dag_id=dag_id, schedule=None, start_date=datetime(2025, 1, 1), catchup=False, tags=["odc", "test"])


with _dag("odc_retry_build") as build_dag:
    OdcBuildOperator(task_id="start", asset=ASSET, reuse_existing_build=False, **FAST)

with _dag("odc_retry_deploy") as deploy_dag:
    OdcDeployOperator(task_id="start", asset=ASSET, stage="{{ dag_run.conf['stage'] }}", **FAST)

with _dag("odc_retry_publish") as publish_dag:
    OdcPublishOperator(task_id="start", asset=ASSET, **FAST)

with _dag("odc_retry_deploy_deferred") as deferred_dag:
    OdcDeployOperator(task_id="start", asset=ASSET, stage="{{ dag_run.conf['stage'] }}", deferrable=True, **FAST)
