"""Deferral on the real stack: the trigger runs in the triggerer process and reuses the tasks' token.

The build takes an hour on the emulator's clock, so the task is seen deferred (its state, its
``next_method`` and its trigger row) before the test lets the build finish.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from devtools.stack import AirflowStack

from ..lifecycle.conftest import web_app

DAG_ID = "odc_deferred_build"
TRIGGER = "airflow_provider_odc.triggers.odc.OdcOperationTrigger"
STATUS_CALL = "GET /api/builds/v1/build-operations/{operationKey}"


def test_defer_resume_cycle_needs_no_token_exchange(airflow_stack: AirflowStack, odc_emulator: Any) -> None:
    app = web_app(odc_emulator, with_release_build=False)
    odc_emulator.configure(build_durations={"pending": 0.5, "running": 3600})
    run_id = airflow_stack.trigger_dag(DAG_ID, conf={"asset": app["name"]})

    # Deferred: the task instance waits on a trigger row of our trigger class, to resume in execute_complete.
    deferred = airflow_stack.wait_for_task_state(DAG_ID, run_id, "build", "deferred")
    assert deferred["trigger"] is not None and deferred["trigger"]["classpath"] == TRIGGER, deferred
    assert airflow_stack.sqlite_path is not None
    with sqlite3.connect(f"file:{airflow_stack.sqlite_path}?mode=ro", uri=True, timeout=30) as db:
        next_method, trigger_id = db.execute(
            "SELECT next_method, trigger_id FROM task_instance WHERE dag_id = ? AND run_id = ? AND task_id = 'build'",
            (DAG_ID, run_id),
        ).fetchone()
        (classpath,) = db.execute("SELECT classpath FROM trigger WHERE id = ?", (trigger_id,)).fetchone()
    assert (next_method, classpath) == ("execute_complete", TRIGGER)

    airflow_stack.wait_for_deferral_processed(DAG_ID, run_id, "build")
    odc_emulator.advance(3600)  # the build finishes; the trigger sees it on its next poll
    run = airflow_stack.wait_for_run(DAG_ID, run_id)
    assert run["state"] == "success", airflow_stack.explain(DAG_ID, run_id)
    build = next(ti for ti in airflow_stack.task_instances(DAG_ID, run_id) if ti["task_id"] == "build")
    assert build["state"] == "success" and build["try_number"] == 1, "resumed from the trigger, not retried"

    stats = odc_emulator.stats()
    assert stats["operations_started"]["build"] == 1
    assert stats["api_calls"][STATUS_CALL] >= 2, "the task's first check and the trigger's polls"
    assert stats["token_exchanges"] == 1, "the triggerer and the resumed task must reuse the warm token"
    build_key = airflow_stack.xcom_values(DAG_ID, run_id)["build"]
    assert any(b["buildKey"] == build_key and b["status"] == "Finished" for a in odc_emulator.inventory()["assets"]
               for b in a["builds"])  # fmt: skip
    assert odc_emulator.client_secret not in airflow_stack.log_text()
