"""The impact gate on the real stack: its analysis wait runs in the triggerer, it resumes to judge the report;
then a configuration patch takes its secret from a Variable and leaves it nowhere (logs, DB, REST views).

The analysis and the ApplyConfigs each take an hour on the emulator's clock, so each task is seen deferred
(state, ``next_method``, trigger row) before the test lets ODC finish.
"""

from __future__ import annotations

import sqlite3
from typing import Any
from urllib.parse import quote

from cryptography.fernet import Fernet

from devtools.stack import AirflowStack

from ..governance.conftest import asset_of
from .leak_scan import Source, database_cells, find, home_files

DAG_ID = "odc_governed_gate"
TRIGGER = "airflow_provider_odc.triggers.odc.OdcOperationTrigger"
SECRET = "partner-Cred-7d3f9a1b2c4e"


def deferred_on_our_trigger(stack: AirflowStack, run_id: str, task_id: str) -> None:
    ti = stack.wait_for_task_state(DAG_ID, run_id, task_id, "deferred")
    assert ti["trigger"] is not None and ti["trigger"]["classpath"] == TRIGGER, ti
    assert stack.sqlite_path is not None
    with sqlite3.connect(f"file:{stack.sqlite_path}?mode=ro", uri=True, timeout=30) as db:
        (next_method,) = db.execute(
            "SELECT next_method FROM task_instance WHERE dag_id = ? AND run_id = ? AND task_id = ?",
            (DAG_ID, run_id, task_id),
        ).fetchone()
    assert next_method == "execute_complete"
    stack.wait_for_deferral_processed(DAG_ID, run_id, task_id)


def test_impact_gate_defers_to_the_triggerer_and_the_secret_stays_put(
    airflow_stack: AirflowStack, odc_emulator: Any
) -> None:
    stack = airflow_stack
    created = stack.rest("POST", "/api/v2/variables", json={"key": "partner_credential", "value": SECRET})
    assert created.status_code in (200, 201), created.text
    app = asset_of(odc_emulator)
    odc_emulator.configure(operation_duration=3600)
    run_id = stack.trigger_dag(DAG_ID, conf={"asset": app["name"]})

    deferred_on_our_trigger(stack, run_id, "impact_gate")
    odc_emulator.advance(3600)  # the analysis finishes; the trigger sees it, the task resumes and judges
    deferred_on_our_trigger(stack, run_id, "configure")  # the ApplyConfigs wait
    odc_emulator.advance(3600)
    run = stack.wait_for_run(DAG_ID, run_id)
    assert run["state"] == "success", stack.explain(DAG_ID, run_id)

    tis = {ti["task_id"]: ti for ti in stack.task_instances(DAG_ID, run_id)}
    assert tis["impact_gate"]["try_number"] == 1, "resumed from the trigger, not retried"
    summary = stack.xcom_values(DAG_ID, run_id)["impact_gate"]
    assert summary["status"] == "NoIssuesFound" and summary["processStatus"] == "Finished"
    stats = odc_emulator.stats()
    assert stats["api_calls"]["POST /api/dependency-management/v1/deployment-analyses"] == 1
    assert stats["api_calls"]["GET /api/dependency-management/v1/deployment-analyses/{analysisKey}"] >= 2
    assert stats["operations_started"]["apply_configs"] == 1

    # Leak scan: every file of the stack's home, every DB cell (decrypted), the REST views of the run.
    assert stack.sqlite_path is not None
    fernet = Fernet(stack.fernet_key().encode())
    run_path = f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}"
    rest: list[Source] = [(f"rest {run_path}/taskInstances", stack.rest("GET", f"{run_path}/taskInstances").text)]
    entries = stack.rest("GET", f"{run_path}/taskInstances/~/xcomEntries?limit=100").json()["xcom_entries"]
    for entry in entries:
        path = f"{run_path}/taskInstances/{entry['task_id']}/xcomEntries/{entry['key']}"
        rest.append((f"rest {path}", stack.rest("GET", path).text))
    sources = [*home_files(stack.home), *database_cells(stack.sqlite_path, fernet), *rest]
    everything = "\n".join(text for _, text in sources)
    assert "configuration_changes" in everything and "ApiKey" in everything, "the scan saw the run's XComs"
    hits = {hit.where for hit in find({"secret": SECRET}, sources)}
    assert hits and all(where.startswith("db variable.val") for where in hits), hits
