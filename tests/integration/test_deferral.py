"""Deferral on the real stack: the trigger runs in the triggerer process and reuses the tasks' token."""

from __future__ import annotations

from typing import Any

from devtools.stack import AirflowStack

from ..lifecycle.conftest import web_app

DAG_ID = "odc_deferred_build"


def test_defer_resume_cycle_needs_no_token_exchange(airflow_stack: AirflowStack, odc_emulator: Any) -> None:
    app = web_app(odc_emulator, with_release_build=False)
    run = airflow_stack.run_dag(DAG_ID, conf={"asset": app["name"]})
    assert run["state"] == "success", airflow_stack.explain(DAG_ID, run["dag_run_id"])

    build_log = airflow_stack.task_log(DAG_ID, run["dag_run_id"], "build")
    assert "trigger" in build_log.lower(), "the build task should have deferred to the triggerer"
    stats = odc_emulator.stats()
    assert stats["operations_started"]["build"] == 1
    assert stats["token_exchanges"] == 1, "the triggerer and the resumed task must reuse the warm token"
    build_key = airflow_stack.xcom_values(DAG_ID, run["dag_run_id"])["build"]
    assert any(b["buildKey"] == build_key and b["status"] == "Finished" for a in odc_emulator.inventory()["assets"]
               for b in a["builds"])  # fmt: skip
    assert odc_emulator.client_secret not in airflow_stack.log_text()
