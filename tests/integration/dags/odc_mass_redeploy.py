"""A library changed: redeploy every consumer app. One mapped deploy task per (app, stage) of the run conf.

The tasks use the ``odc_paced`` connection (``request_pacing: variable``): every task, in whatever worker
process, reserves its send slots in the shared ledger (Airflow Variables) and waits for them, so ODC's
10 deployment POSTs a minute are used to the full without a storm of 429s. See ``devtools/mass_redeploy.py``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_odc.operators.lifecycle import OdcDeployOperator

with DAG(
    dag_id="odc_mass_redeploy",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_tasks=64,
    params={"targets": []},
    tags=["odc", "test"],
) as dag:

    @task
    def targets(**context: Any) -> list[dict[str, str]]:
        """The (asset, stage) pairs to deploy, from the run conf."""
        return [{"asset": str(t["asset"]), "stage": str(t["stage"])} for t in context["params"]["targets"]]

    OdcDeployOperator.partial(
        task_id="deploy",
        odc_conn_id="odc_paced",
        wait_for_completion=False,
        retries=0,  # an Airflow retry would hide a lost POST; pacing and the client alone must get through
    ).expand_kwargs(targets())
