"""Release an ODC app: build a revision, deploy it to the first non-production stage, then to Production.

Every wait is deferrable: while ODC builds and deploys, no worker slot is held. If any step fails,
Production is left alone (no rollback is needed: nothing after the failed step runs) and the failed
task's log shows ODC's own error messages; ``release_blocked`` then says which step stopped the release
and links to it in the ODC Portal.

Trigger it with ``{"asset": "<app name or key>", "revision": "latest" | "highest-tag" | <number>}``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_odc.hooks.odc import OdcHook
from airflow_provider_odc.links import PORTAL_URL_XCOM_KEY
from airflow_provider_odc.operators.lifecycle import OdcBuildOperator, OdcDeployOperator

ASSET = "{{ params.asset }}"
REVISION = "{{ params.revision }}"
BUILD_KEY = "{{ ti.xcom_pull(task_ids='build') }}"

with DAG(
    dag_id="odc_release_pipeline",
    description="Build an ODC app revision and deploy it through the non-production stage to Production",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    params={
        "asset": Param("Claims Intake 001", type="string", description="App name (exact) or asset key"),
        "revision": Param("latest", type=["string", "integer"], description="Number, latest or highest-tag"),
    },
    tags=["odc", "example", "release"],
) as dag:

    @task
    def pick_stages() -> dict[str, str]:
        """The first non-production stage after Development, and Production, in ODC's stage order."""
        stages = OdcHook().list_stages()  # in ODC's stage order
        production = next(s for s in stages if s.purpose == "Production")
        testing = next(
            (s for s in stages if s.purpose == "NonProduction"),
            next(s for s in stages if s.purpose not in ("Production", "Development")),
        )
        return {"test": testing.key, "test_name": testing.name, "production": production.key}

    stages = pick_stages()
    build = OdcBuildOperator(task_id="build", asset=ASSET, revision=REVISION, deferrable=True)
    deploy_test = OdcDeployOperator(
        task_id="deploy_to_test_stage",
        asset=ASSET,
        revision=REVISION,
        build_key=BUILD_KEY,
        stage="{{ ti.xcom_pull(task_ids='pick_stages')['test'] }}",
        deferrable=True,
    )
    deploy_production = OdcDeployOperator(
        task_id="deploy_to_production",
        asset=ASSET,
        revision=REVISION,
        build_key=BUILD_KEY,
        stage="{{ ti.xcom_pull(task_ids='pick_stages')['production'] }}",
        deferrable=True,
    )

    @task(trigger_rule="one_failed")
    def release_blocked(**context: Any) -> None:
        """Runs only when a step failed: name it and link to it; ODC's messages are in that task's log."""
        ti = context["ti"]
        steps = ["pick_stages", "build", "deploy_to_test_stage", "deploy_to_production"]
        states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id], task_ids=steps)[ti.run_id]
        failed = next(step for step in steps if states.get(step) == "failed")
        url = ti.xcom_pull(task_ids=failed, key=PORTAL_URL_XCOM_KEY)
        raise RuntimeError(f"Release stopped at {failed}; Production was not touched. ODC Portal: {url}")

    [stages, build] >> deploy_test >> deploy_production >> release_blocked()
