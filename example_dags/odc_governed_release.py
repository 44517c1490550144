"""A governed release: ODC's impact analysis and code analysis gate the deploys, QA first, then Production.

Before each deploy, ``OdcImpactAnalysisOperator`` asks ODC what deploying this revision to that stage would
break (consumers left with missing or incompatible elements, name collisions, ...). Errors fail the gate,
so nothing is deployed; every finding is in the gate's log and a compact summary is in its XCom
(``impact_summary``). Before the QA deploy, ``OdcCodeQualityGateOperator`` runs ODC's code analysis of the
revision and stops the release on a Critical finding or a quality score below 80; the most severe findings
and their patterns are in its log, its summary in its XCom (``return_value``). Every wait is deferrable: no
worker slot is held while ODC builds, analyses or deploys.

Trigger it with ``{"asset": "<app name or key>", "revision": "latest" | "highest-tag" | <number>}``.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param

from airflow_provider_odc.operators.code_quality import OdcCodeQualityGateOperator
from airflow_provider_odc.operators.impact import OdcImpactAnalysisOperator
from airflow_provider_odc.operators.lifecycle import OdcBuildOperator, OdcDeployOperator

ASSET = "{{ params.asset }}"
REVISION = "{{ params.revision }}"
BUILD_KEY = "{{ ti.xcom_pull(task_ids='build') }}"

with DAG(
    dag_id="odc_governed_release",
    description="Impact- and quality-gated release of an ODC app revision: QA, then Production",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    params={
        "asset": Param("Claims Intake 001", type="string", description="App name (exact) or asset key"),
        "revision": Param("latest", type=["string", "integer"], description="Number, latest or highest-tag"),
    },
    tags=["odc", "example", "release", "governance"],
) as dag:
    build = OdcBuildOperator(task_id="build", asset=ASSET, revision=REVISION, deferrable=True)
    impact_qa = OdcImpactAnalysisOperator(
        task_id="impact_gate_qa", asset=ASSET, revision=REVISION, stage="QA", deferrable=True
    )

    quality = OdcCodeQualityGateOperator(
        task_id="quality_gate",
        asset=ASSET,
        revision=REVISION,
        max_critical=0,  # any Critical finding stops the release
        min_quality_score=80,  # and so does a score below 80
        deferrable=True,
    )
    deploy_qa = OdcDeployOperator(
        task_id="deploy_to_qa", asset=ASSET, revision=REVISION, build_key=BUILD_KEY, stage="QA", deferrable=True
    )
    impact_production = OdcImpactAnalysisOperator(
        task_id="impact_gate_production",
        asset=ASSET,
        revision=REVISION,
        stage="Production",
        fail_on_warnings=True,  # stricter for Production: warnings stop the release too
        deferrable=True,
    )
    deploy_production = OdcDeployOperator(
        task_id="deploy_to_production",
        asset=ASSET,
        revision=REVISION,
        build_key=BUILD_KEY,
        stage="Production",
        deferrable=True,
    )

    build >> impact_qa >> quality >> deploy_qa >> impact_production >> deploy_production
