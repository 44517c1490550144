"""The release pipeline example, deferrable end to end in a real Airflow (dag.test runs triggers inline)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..lifecycle.conftest import web_app

EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"
DAG_ID = "odc_release_pipeline"


def release_dag() -> Any:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.2
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    return DagBag(dag_folder=str(EXAMPLE_DAGS)).dags[DAG_ID]


def states(run: Any) -> dict[str, str]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(select(TaskInstance).where(TaskInstance.run_id == run.run_id)).all()
        return {ti.task_id: str(ti.state) for ti in rows}


def test_release_builds_then_deploys_to_qa_and_production(
    airflow_db: None, odc_emulator: Any, odc_connection: str
) -> None:
    odc_emulator.configure(build_durations={"pending": 0.5, "running": 1.0}, operation_duration=1.5)
    app = web_app(odc_emulator, with_release_build=False)
    run = release_dag().test(run_conf={"asset": app["name"], "revision": "latest"})
    assert run.state == "success", states(run)
    assert states(run)["release_blocked"] == "skipped"

    deployed = next(a for a in odc_emulator.inventory()["assets"] if a["assetKey"] == app["assetKey"])["deployed"]
    assert deployed["QA"]["revision"] == deployed["Production"]["revision"] == app["latestRevision"]
    assert deployed["QA"]["buildKey"] == deployed["Production"]["buildKey"]
    stats = odc_emulator.stats()
    assert stats["operations_started"]["build"] == 1 and stats["operations_started"]["deploy"] == 2
    # dag.test() runs tasks and the inline triggers in this one process: one exchange shows the in-memory
    # cache at work. Reuse across processes is measured in test_example_dags.py and tests/integration.
    assert stats["token_exchanges"] == 1


def test_failed_test_stage_deploy_leaves_production_alone(
    airflow_db: None, odc_emulator: Any, odc_connection: str
) -> None:
    odc_emulator.configure(build_durations={"pending": 0.2, "running": 0.3}, operation_duration=0.5)
    app = web_app(odc_emulator, with_release_build=True)
    production_before = next(a for a in odc_emulator.inventory()["assets"] if a["assetKey"] == app["assetKey"])[
        "deployed"
    ].get("Production")
    odc_emulator.fail_next("deploy", messages=["Missing configuration for site property ApiUrl"])
    run = release_dag().test(run_conf={"asset": app["name"], "revision": "latest"})
    assert run.state == "failed"
    task_states = states(run)
    assert task_states["deploy_to_test_stage"] == "failed"
    assert task_states["deploy_to_production"] == "upstream_failed"
    assert task_states["release_blocked"] == "failed"  # it runs, names the step, and fails the run
    production_after = next(a for a in odc_emulator.inventory()["assets"] if a["assetKey"] == app["assetKey"])[
        "deployed"
    ].get("Production")
    assert production_after == production_before
    assert odc_emulator.stats()["operations_started"]["deploy"] == 1
