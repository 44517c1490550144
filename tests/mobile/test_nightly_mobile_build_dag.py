"""The nightly mobile build example, end to end in a real Airflow (``dag.test()`` runs the deferred builds'
triggers inline): both binaries land in object storage, and no pre-signed link reaches XCom."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"
DAG_ID = "odc_nightly_mobile_build"
SIGNATURE = re.compile(r"X-Amz-Signature=[0-9a-f]{64}")


def nightly_dag() -> Any:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.2
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    bag = DagBag(dag_folder=str(EXAMPLE_DAGS / "odc_nightly_mobile_build.py"))
    assert bag.import_errors == {}
    return bag.dags[DAG_ID]


def xcoms(run_id: str) -> list[tuple[str, str, Any]]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(XComModel.task_id, XComModel.key, XComModel.value).where(XComModel.run_id == run_id)
        )
        return [(task_id, key, value) for task_id, key, value in rows]


def test_nightly_build_stores_both_binaries_and_pushes_no_link(
    airflow_db: None, odc_emulator: Any, odc_connection: str, tmp_path: Path
) -> None:
    odc_emulator.configure(build_durations={"pending": 0.2, "running": 0.3}, operation_duration=0.5)
    dag = nightly_dag()
    assert dag.schedule == "0 2 * * *"  # nightly
    when = datetime(2026, 11, 29, 2, tzinfo=timezone.utc)
    run = dag.test(logical_date=when, run_conf={"artifacts_url": tmp_path.as_uri()})
    assert run.state == "success"

    stored = {path.name: path.stat().st_size for path in (tmp_path / "20261129").iterdir()}
    assert stored == {"android.aab": 300 * 1024, "ios.ipa": 300 * 1024}
    stats = odc_emulator.stats()
    assert stats["api_calls"]["POST /api/native-mobile-builds/v1/build-operations"] == 2
    assert stats["api_calls"]["POST /api/native-mobile-builds/v1/build-operations/version-suggestions"] == 1
    assert odc_emulator.state.storage.requests_with_authorization() == 0

    pushed = xcoms(run.run_id)
    report = next(value for task_id, key, value in pushed if task_id == "report" and key == "return_value")
    assert any(line.startswith("Android: Finished 0.1.0 (code 1) -> ") for line in report), report
    assert all("sha256" not in line and len(line.split()[-1]) == 64 for line in report), report
    everything = repr(pushed)
    assert "appBinaryDownloadUrl" in everything, "the link names are pushed (only the names)"
    assert not SIGNATURE.search(everything) and "/_storage/" not in everything
