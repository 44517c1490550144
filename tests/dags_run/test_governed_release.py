"""The governed release example (impact and code-quality gates, then QA -> Production), deferrable end to end
with dag.test()."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..lifecycle.conftest import web_app
from .test_release_pipeline import states

EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"
DAG_ID = "odc_governed_release"
CRITICAL = {"patternId": "SEC-001", "severity": "Critical", "category": "security", "elementName": "GetUsers"}
HIGH = {"patternId": "PERF-001", "severity": "High", "category": "performance", "elementName": "Dashboard"}


def governed_dag() -> Any:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.2
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    return DagBag(dag_folder=str(EXAMPLE_DAGS)).dags[DAG_ID]


def deployed(emulator: Any, asset_key: str) -> dict[str, Any]:
    return dict(next(a for a in emulator.inventory()["assets"] if a["assetKey"] == asset_key)["deployed"])


def xcom(run: Any, task_id: str, key: str) -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        row = session.scalars(
            select(XComModel).where(XComModel.run_id == run.run_id, XComModel.task_id == task_id, XComModel.key == key)
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
    assert stats["api_calls"]["POST /api/code-quality/v1/code-analyses"] == 1
    assert xcom(run, "impact_gate_production", "impact_summary")["status"] == "NoIssuesFound"
    quality = xcom(run, "quality_gate", "return_value")
    assert quality["passed"] is True and quality["revision"] == app["latestRevision"]
    assert quality["assetKey"] == app["assetKey"] and quality["qualityScore"] == 100


def test_an_error_finding_stops_the_release_before_qa(airflow_db: None, odc_emulator: Any, odc_connection: str) -> None:
    odc_emulator.configure(build_durations={"pending": 0.3, "running": 0.5}, operation_duration=0.8)
    app = web_app(odc_emulator, with_release_build=True)
    before = deployed(odc_emulator, app["assetKey"])
    odc_emulator.fail_next("deployment_analysis_errors", messages=["Action GetInvoices lost input CustomerId"])
    run = governed_dag().test(run_conf={"asset": app["name"], "revision": "latest"})
    assert run.state == "failed"
    task_states = states(run)
    assert task_states["impact_gate_qa"] == "failed"
    assert task_states["quality_gate"] == "upstream_failed", "no code analysis after a failed impact gate"
    assert task_states["deploy_to_qa"] == task_states["deploy_to_production"] == "upstream_failed"
    assert deployed(odc_emulator, app["assetKey"]) == before, "no stage was touched"
    assert odc_emulator.stats()["operations_started"]["deploy"] == 0
    summary = xcom(run, "impact_gate_qa", "impact_summary")
    assert summary["errors"] == 1 and "CustomerId" in summary["findings"][0]


def test_a_critical_finding_stops_the_release_at_the_quality_gate_before_qa(
    airflow_db: None, odc_emulator: Any, odc_connection: str
) -> None:
    odc_emulator.configure(build_durations={"pending": 0.3, "running": 0.5}, operation_duration=0.8)
    app = web_app(odc_emulator, with_release_build=True)
    before = deployed(odc_emulator, app["assetKey"])
    odc_emulator.state.jobs.scans.plant(app["assetKey"], app["latestRevision"], [CRITICAL])
    run = governed_dag().test(run_conf={"asset": app["name"], "revision": "latest"})
    assert run.state == "failed"
    task_states = states(run)
    assert task_states["impact_gate_qa"] == "success"
    assert task_states["quality_gate"] == "failed"
    assert task_states["deploy_to_qa"] == task_states["impact_gate_production"] == "upstream_failed"
    assert task_states["deploy_to_production"] == "upstream_failed"
    assert deployed(odc_emulator, app["assetKey"]) == before, "no stage was touched"
    stats = odc_emulator.stats()
    assert stats["api_calls"]["POST /api/code-quality/v1/code-analyses"] == 1
    assert stats["operations_started"]["deploy"] == 0


def test_a_quality_score_below_the_threshold_stops_the_release_too(
    airflow_db: None, odc_emulator: Any, odc_connection: str
) -> None:
    """Three High findings score 85 in the emulator, four 80 (passes: at least 80), five 75 (fails)."""
    odc_emulator.configure(build_durations={"pending": 0.3, "running": 0.5}, operation_duration=0.8)
    app = web_app(odc_emulator, with_release_build=True)
    highs = [HIGH | {"elementName": f"Screen{n}"} for n in range(5)]
    odc_emulator.state.jobs.scans.plant(app["assetKey"], app["latestRevision"], highs)
    run = governed_dag().test(run_conf={"asset": app["name"], "revision": "latest"})
    assert run.state == "failed"
    assert states(run)["quality_gate"] == "failed" and states(run)["deploy_to_qa"] == "upstream_failed"
    assert odc_emulator.stats()["operations_started"]["deploy"] == 0
