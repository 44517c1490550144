"""The governed release example (impact gates, then QA -> Production), deferrable end to end with dag.test()."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..lifecycle.conftest import web_app
from .test_release_pipeline import states

EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"
DAG_ID = "odc_governed_release"


def governed_dag() -> Any:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.2
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    return DagBag(dag_folder=str(EXAMPLE_DAGS)).dags[DAG_ID]


def deployed(emulator: Any, asset_key: str) -> dict[str, Any]:
    return dict(next(a for a in emulator.inventory()["assets"] if a["assetKey"] == asset_key)["deployed"])


def impact_summary(run: Any, task_id: str) -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        row = session.scalars(
            select(XComModel).where(
                XComModel.run_id == run.run_id, XComModel.task_id == task_id, XComModel.key == "impact_summary"
            )
        ).one()
        return XComModel.deserialize_value(row)


def test_gates_pass_then_qa_and_production_are_deployed(
    airflow_db: None, odc_emulator: Any, odc_connection: str
) -> None:
    odc_emulator.configure(build_durations={"pending": 0.3, "running": 0.5}, operation_duration=0.8)
    app = web_app(odc_emulator, with_release_build=False)
    run = governed_dag().test(run_conf={"asset": app["name"], "revision": "latest"})
    assert run.state == "success", states(run)
    now = deployed(odc_emulator, app["assetKey"])
    assert now["QA"]["revision"] == now["Production"]["revision"] == app["latestRevision"]
    stats = odc_emulator.stats()
    assert stats["api_calls"]["POST /api/dependency-management/v1/deployment-analyses"] == 2
    assert stats["operations_started"]["deploy"] == 2
    assert impact_summary(run, "impact_gate_production")["status"] == "NoIssuesFound"


def test_an_error_finding_stops_the_release_before_qa(airflow_db: None, odc_emulator: Any, odc_connection: str) -> None:
    odc_emulator.configure(build_durations={"pending": 0.3, "running": 0.5}, operation_duration=0.8)
    app = web_app(odc_emulator, with_release_build=True)
    before = deployed(odc_emulator, app["assetKey"])
    odc_emulator.fail_next("deployment_analysis_errors", messages=["Action GetInvoices lost input CustomerId"])
    run = governed_dag().test(run_conf={"asset": app["name"], "revision": "latest"})
    assert run.state == "failed"
    task_states = states(run)
    assert task_states["impact_gate_qa"] == "failed"
    assert task_states["deploy_to_qa"] == task_states["deploy_to_production"] == "upstream_failed"
    assert deployed(odc_emulator, app["assetKey"]) == before, "no stage was touched"
    assert odc_emulator.stats()["operations_started"]["deploy"] == 0
    summary = impact_summary(run, "impact_gate_qa")
    assert summary["errors"] == 1 and "CustomerId" in summary["findings"][0]
