"""Scan an ODC app: gate its revision on ODC's code analysis, then hand its generated code to a scanner.

``quality_gate`` runs ODC's code analysis of the revision and fails the run when it finds more Critical
(or High) findings than allowed or scores below the minimum; the most severe findings and their patterns
are in its log, a compact summary in its XCom. Only a revision that passes is built (an existing Release
build is reused) and its generated code streamed to ``destination`` (a path, or any Airflow object storage
URL such as ``s3://scans/`` with its connection) for a SAST tool. ``quality_report`` always runs: findings
by severity, the most frequent patterns and the trend, for a dashboard. Every wait is deferrable.

Trigger it with ``{"asset": "<app name or key>", "revision": "latest" | <number>, "destination": "<folder URL>"}``.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param

from airflow_provider_odc.operators.code_quality import OdcCodeQualityGateOperator, OdcCodeQualityReportOperator
from airflow_provider_odc.operators.generated_code import OdcGeneratedCodeOperator
from airflow_provider_odc.operators.lifecycle import OdcBuildOperator

ASSET = "{{ params.asset }}"
REVISION = "{{ params.revision }}"

with DAG(
    dag_id="odc_code_scan",
    description="Gate an ODC app revision on code quality, then export its generated code for scanning",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    params={
        "asset": Param("Claims Intake 001", type="string", description="App name (exact) or asset key"),
        "revision": Param("latest", type=["string", "integer"], description="Number, latest or highest-tag"),
        "destination": Param("file:///tmp/odc-scans", type="string", description="Folder: path or storage URL"),
    },
    tags=["odc", "example", "code-quality"],
) as dag:
    quality_gate = OdcCodeQualityGateOperator(
        task_id="quality_gate",
        asset=ASSET,
        revision=REVISION,
        max_critical=0,
        max_high=5,
        min_quality_score=50,
        deferrable=True,
    )
    build = OdcBuildOperator(task_id="build", asset=ASSET, revision=REVISION, deferrable=True)
    generated_code = OdcGeneratedCodeOperator(
        task_id="generated_code",
        build_key="{{ ti.xcom_pull(task_ids='build') }}",
        destination="{{ params.destination }}/{{ ti.xcom_pull(task_ids='quality_gate')['assetKey'] }}-"
        "r{{ ti.xcom_pull(task_ids='quality_gate')['revision'] }}.zip",
        deferrable=True,
    )
    quality_report = OdcCodeQualityReportOperator(task_id="quality_report", assets=[ASSET], trigger_rule="all_done")

    quality_gate >> build >> generated_code
    quality_gate >> quality_report
