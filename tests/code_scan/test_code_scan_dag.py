"""The code-scan example DAG end to end in a real Airflow with ``dag.test()`` (triggers run inline)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airflow_provider_odc.emulator.downloads import content_sha256

from ..dags_run.test_release_pipeline import states
from .conftest import app_with_builds

EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"
DAG_ID = "odc_code_scan"
CRITICAL = {"patternId": "SEC-001", "severity": "Critical", "category": "security", "elementName": "GetUsers"}
HIGH = {"patternId": "PERF-001", "severity": "High", "category": "performance", "elementName": "Dashboard"}


def scan_dag() -> Any:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.2
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    return DagBag(dag_folder=str(EXAMPLE_DAGS)).dags[DAG_ID]


def xcom(run: Any, task_id: str) -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        row = session.scalars(
            select(XComModel).where(
                XComModel.run_id == run.run_id, XComModel.task_id == task_id, XComModel.key == "return_value"
            )
        ).one()
        return row.value


def test_a_revision_that_passes_the_gate_has_its_generated_code_exported(
    airflow_db: None, odc_emulator: Any, odc_connection: str, tmp_path: Path
) -> None:
    odc_emulator.configure(build_durations={"pending": 0.2, "running": 0.3}, operation_duration=0.5)
    app = app_with_builds(odc_emulator)
    odc_emulator.state.jobs.scans.plant(app["assetKey"], app["latestRevision"], [HIGH])
    conf = {"asset": app["name"], "revision": "latest", "destination": f"file://{tmp_path}"}
    run = scan_dag().test(run_conf=conf)
    assert run.state == "success", states(run)
    archive = tmp_path / f"{app['assetKey']}-r{app['latestRevision']}.zip"
    build_key = next(
        b["buildKey"]
        for b in app["builds"]
        if b["revision"] == app["latestRevision"] and b["buildType"] == "Release" and b["status"] == "Finished"
    )
    size = odc_emulator.state.jobs.scans.downloads.size
    assert archive.stat().st_size == size
    exported = xcom(run, "generated_code")
    assert exported["sha256"] == content_sha256(f"generated-code/{build_key}.zip", size)
    assert "Signature" not in str(exported)
    gate = xcom(run, "quality_gate")
    assert gate["passed"] is True and gate["counts"]["High"] == 1
    assert xcom(run, "quality_report")["bySeverity"]["High"] == 1
    assert odc_emulator.stats()["operations_started"].get("build", 0) == 0, "the finished Release build is reused"


def test_a_critical_finding_stops_the_scan_before_the_build(
    airflow_db: None, odc_emulator: Any, odc_connection: str, tmp_path: Path
) -> None:
    odc_emulator.configure(build_durations={"pending": 0.2, "running": 0.3}, operation_duration=0.5)
    app = app_with_builds(odc_emulator)
    odc_emulator.state.jobs.scans.plant(app["assetKey"], app["latestRevision"], [CRITICAL])
    run = scan_dag().test(run_conf={"asset": app["name"], "revision": "latest", "destination": f"file://{tmp_path}"})
    assert run.state == "failed"
    task_states = states(run)
    assert task_states["quality_gate"] == "failed"
    assert task_states["build"] == task_states["generated_code"] == "upstream_failed"
    assert task_states["quality_report"] == "success", "the report runs whatever the gate decided"
    assert list(tmp_path.iterdir()) == []
