"""The token cache across worker processes, on the real scheduler with LocalExecutor.

``dag.test()`` runs every task in one process, where an in-memory cache alone would pass. Here each
task is its own process, so the only way to need one token exchange is the encrypted Variable.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from cryptography.fernet import Fernet

from airflow_provider_odc.cache.envelope import EnvelopeCodec
from airflow_provider_odc.cache.stores import variable_key_for

from .stack import AirflowStack

DAG_ID = "odc_shared_token"
TASKS = ("first", "second", "third", "list_stages")


def stored_variable(stack: AirflowStack, key: str) -> str:
    """The Variable's value as Airflow keeps it, decrypted with the stack's Fernet key."""
    with sqlite3.connect(stack.home / "airflow.db") as db:
        value, is_encrypted = db.execute("SELECT val, is_encrypted FROM variable WHERE key = ?", (key,)).fetchone()
    return Fernet(stack.fernet_key().encode()).decrypt(value.encode()).decode() if is_encrypted else value


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
    key = variable_key_for("odc_default")
    stored = stored_variable(airflow_stack, key)
    codec = EnvelopeCodec.for_connection(
        key_material=odc_emulator.client_secret,
        origin=odc_emulator.base_url,
        client_id=odc_emulator.client_id,
        conn_id="odc_default",
        variable_key=key,
    )
    token = codec.open(stored).token.value
    assert token not in stored and odc_emulator.client_secret not in stored

    # Nothing the run wrote (task logs at DEBUG, component logs, XCom) holds the token or the secret.
    written = airflow_stack.log_text() + repr(results)
    assert "ODC GET /api/portfolios/v2/environments -> 200" in written, "DEBUG task logs were not collected"
    assert token not in written
    assert odc_emulator.client_secret not in written
