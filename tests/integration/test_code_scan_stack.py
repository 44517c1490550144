"""The code-scan example on the real scheduler at DEBUG: the quality gate and the generated-code export defer
to the real triggerer, the archive lands where the run asked, and no pre-signed download URL the emulator
issued (nor any token) is left in a log, a database cell or the trigger rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography.fernet import Fernet

from devtools.stack import AirflowStack

from .leak_scan import database_cells, find, home_files, token_needles

DAG_ID = "odc_code_scan"
HIGH = {"patternId": "PERF-001", "severity": "High", "category": "performance", "elementName": "Dashboard"}


def test_the_gate_and_the_export_defer_and_leave_no_download_url(
    airflow_stack_examples: AirflowStack, odc_emulator: Any, tmp_path: Path
) -> None:
    stack = airflow_stack_examples
    db_path = stack.sqlite_path
    assert db_path is not None
    fernet = Fernet(stack.fernet_key().encode())
    app = next(a for a in odc_emulator.inventory()["assets"] if a["assetType"] == "WebApplication" and a["builds"])
    odc_emulator.state.jobs.scans.plant(app["assetKey"], app["latestRevision"], [HIGH])
    tmp_path.chmod(0o777)

    # The analysis takes an hour on the emulator's clock: the gate waits in the triggerer.
    odc_emulator.configure(operation_duration=3600)
    run_id = stack.trigger_dag(DAG_ID, conf={"asset": app["name"], "destination": f"file://{tmp_path}"})
    stack.wait_for_task_state(DAG_ID, run_id, "quality_gate", "deferred")
    trigger_rows = list(database_cells(db_path, fernet, tables={"trigger", "task_instance"}))
    stack.wait_for_deferral_processed(DAG_ID, run_id, "quality_gate")
    odc_emulator.advance(3600)
    odc_emulator.configure(operation_duration=0.5)  # the packaging that follows: short, still deferred
    run = stack.wait_for_run(DAG_ID, run_id)
    assert run["state"] == "success", stack.explain(DAG_ID, run_id)

    archive = tmp_path / f"{app['assetKey']}-r{app['latestRevision']}.zip"
    assert archive.stat().st_size == odc_emulator.state.jobs.scans.downloads.size
    downloads = odc_emulator.state.jobs.scans.downloads
    assert [(s.authorization, s.status) for s in downloads.requests_seen] == [(None, 200)]
    gate_log = stack.task_log(DAG_ID, run_id, "quality_gate")
    assert "pattern PERF-001 (Aggregate fetched inside a loop)" in gate_log and "OdcOperationTrigger" in "\n".join(
        text for _, text in trigger_rows
    )

    stats = odc_emulator.stats()
    tokens = odc_emulator.minted_tokens()[-max(stats["token_exchanges"], 1) :]
    needles = {
        **token_needles(tokens),
        **{f"signature {n}": downloads.signature_of(url) for n, url in enumerate(downloads.issued)},
        **{f"query {n}": urlsplit(url).query for n, url in enumerate(downloads.issued)},
    }
    assert downloads.issued, "the emulator issued download URLs"
    sources = [*home_files(stack.home), *database_cells(db_path, fernet), *trigger_rows]
    assert any(archive.name in text for _, text in sources), "the scan sees the run's XComs and logs"
    hits = [hit for hit in find(needles, sources) if not hit.needle.startswith("client")]
    assert hits == []
