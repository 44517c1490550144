"""Promote a whole stage under ODC's limits: the promotion plan, then one paced deploy per planned asset.

The ``odc_promotion`` connection (``request_pacing: variable``) is made by the test or the benchmark that
triggers this DAG, for an emulator of its own with enough assets ahead on the source stage (see
``devtools/mass_redeploy.py``). The run conf names the stages; ``include_missing`` also promotes the assets
the target stage does not run yet, so "everything on Development goes to QA".
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param

from airflow_provider_odc.operators.lifecycle import OdcDeployOperator
from airflow_provider_odc.operators.promotion import OdcPromotionPlanOperator

with DAG(
    dag_id="odc_mass_promotion",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_tasks=64,
    params={"source_stage": Param("Development", type="string"), "target_stage": Param("QA", type="string")},
    tags=["odc", "test"],
) as dag:
    plan = OdcPromotionPlanOperator(
        task_id="plan",
        odc_conn_id="odc_promotion",
        source_stage="{{ params.source_stage }}",
        target_stage="{{ params.target_stage }}",
        include_missing=True,
        max_promotions=200,
    )
    OdcDeployOperator.partial(
        task_id="deploy",
        odc_conn_id="odc_promotion",
        wait_for_completion=False,
        retries=0,  # an Airflow retry would hide a lost POST; pacing and the client alone must get through
        map_index_template="{{ task.asset }}",
    ).expand_kwargs(plan.output)
