"""Promote a stage: deploy to the target stage every app whose revision on the source stage is newer.

``stage_matrix`` reports which revision runs where; ``plan`` lists the assets to promote (the build that
runs on the source stage, so Production gets exactly what QA tested); ``promote`` maps one
``OdcDeployOperator`` per asset. Each deploy POSTs once and the client waits out ODC's 429s (10 deployment
POSTs a minute); ``max_active_tis_per_dagrun`` keeps the burst small. For a stage of more than a few dozen
apps, set ``request_pacing: variable`` on the connection so that the deploys wait for their turn instead of
collecting 429s (README, "Pacing a mass redeploy"). ``dry_run`` only logs the plan.

Trigger it with ``{"source_stage": "QA", "target_stage": "Production", "dry_run": false}``.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param

from airflow_provider_odc.operators.lifecycle import OdcDeployOperator
from airflow_provider_odc.operators.promotion import OdcPromotionPlanOperator, OdcStageMatrixOperator

with DAG(
    dag_id="odc_promote_stage",
    description="Deploy to one ODC stage every app that runs a newer revision on another",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    params={
        "source_stage": Param("QA", type="string", description="Stage to promote from (name or key)"),
        "target_stage": Param("Production", type="string", description="Stage to promote to (name or key)"),
        "dry_run": Param(False, type="boolean", description="Only log the plan"),
    },
    tags=["odc", "example", "release"],
) as dag:
    matrix = OdcStageMatrixOperator(task_id="stage_matrix", asset_types=["WebApplication", "MobileApplication"])
    plan = OdcPromotionPlanOperator(
        task_id="plan",
        source_stage="{{ params.source_stage }}",
        target_stage="{{ params.target_stage }}",
        asset_types=["WebApplication", "MobileApplication"],
        plan_only="{{ params.dry_run }}",
        max_promotions=25,
    )
    promote = OdcDeployOperator.partial(
        task_id="promote", max_active_tis_per_dagrun=4, map_index_template="{{ task.asset }}"
    ).expand_kwargs(plan.output)
    matrix >> plan
