"""The token cache across worker processes, on the real scheduler with LocalExecutor.

``dag.test()`` runs every task in one process, where an in-memory cache alone would pass. Here each
task is its own process, so the only way to need one token exchange is the encrypted Variable.
"""

from __future__ import annotations

from typing import Any

from devtools.stack import AirflowStack

from .leak_scan import cached_token

DAG_ID = "odc_shared_token"
TASKS = ("first", "second", "third", "list_stages")


def test_tasks_in_separate_processes_share_one_token(airflow_stack: AirflowStack, odc_emulator: Any) -> None:
    run = airflow_stack.run_dag(DAG_ID)
    assert run["state"] == "success", airflow_stack.explain(DAG_ID, run["dag_run_id"])

    results = airflow_stack.xcom_values(DAG_ID, run["dag_run_id"])
    assert len({results[task]["pid"] for task in TASKS}) == len(TASKS), "each task must run in its own process"
    assert all(results[task]["assets"] == 25 for task in ("first", "second", "third"))

    stats = odc_emulator.stats()
    assert stats["token_exchanges"] == 1
    assert stats["discovery_requests"] <= 1  # 0 when an earlier test left the token endpoint in the Variable
    # call_odc: 1 environments call + 3 asset pages of 10, three times; list_stages: 1 call. A token an
    # earlier test left in the Variable is unknown to the freshly reset emulator: one 401 and its retry.
    assert stats["unauthorized"] <= 1
    assert stats["api_calls_total"] == 3 * 4 + 1 + stats["unauthorized"]

    # The Variable holds an envelope, not the token; it opens with the connection's secret.
    stored, token = cached_token(airflow_stack, odc_emulator)
    assert token not in stored and odc_emulator.client_secret not in stored

    # Nothing the run wrote (task logs at DEBUG, component logs, XCom) holds the token or the secret.
    written = airflow_stack.log_text() + repr(results)
    assert "ODC GET /api/portfolios/v2/environments -> 200" in written, "DEBUG task logs were not collected"
    assert token not in written
    assert odc_emulator.client_secret not in written
