"""Fault matrix, part 4: the cache rows that matter most, inside real Airflow tasks (``dag.test()``),
and the cache promises that involve the real Variable (``cache_secret`` across a secret rotation,
``cache_mode`` memory writing none).

In a task ``Variable.get`` and ``Variable.set`` go through the task SDK to the metadata database, the
path a worker takes; the DAG ``dags/odc_fault_cache.py`` makes two ODC calls in two tasks.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_odc.cache import stores
from airflow_provider_odc.cache.lease import lease_key_for
from airflow_provider_odc.cache.stores import variable_key_for

from ._support import Matrix
from .test_token_cache_faults import codec_for, flip_one_ciphertext_character, sealed

DAGS = Path(__file__).parent / "dags"
DAG_ID = "odc_fault_cache"
KEY = variable_key_for("odc_default")


@pytest.fixture
def fault_dag(airflow_db: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The fault DAG, in a DAG bundle of its own next to the default one (``dag.test()`` needs a bundle)."""
    bundles = [
        {"name": "dags-folder", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle", "kwargs": {}},
        {
            "name": "odc-faults",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(DAGS)},
        },
    ]
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps(bundles))
    stores.forget_warnings()
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.variable import Variable

    Variable.delete(KEY)
    yield DagBag(dag_folder=str(DAGS)).dags[DAG_ID]
    Variable.delete(KEY)
    stores.forget_warnings()


def stored_variable() -> str | None:
    from airflow.models.variable import Variable

    return Variable.get(KEY, default_var=None)


def test_task_finds_a_tampered_variable(
    fault_dag: Any, odc_emulator: Any, odc_connection: str, caplog: pytest.LogCaptureFixture, matrix: Matrix
) -> None:
    from airflow.models.variable import Variable

    tampered = flip_one_ciphertext_character(sealed(odc_emulator))
    Variable.set(KEY, tampered)
    with caplog.at_level(logging.WARNING):
        run = fault_dag.test()
    stats = odc_emulator.stats()
    matrix.record(f"run {run.state} (miss, new token stored)", stats)
    assert run.state == "success"
    assert (stats["token_requests"], stats["token_exchanges"], stats["api_calls_total"]) == (1, 1, 2)
    assert stats["unauthorized"] == 0
    warnings = [r.getMessage() for r in caplog.records if "Ignoring the cached ODC token" in r.getMessage()]
    assert len(warnings) == 1 and "integrity check" in warnings[0]
    # The task replaced the tampered value, through the task SDK, with an envelope that opens.
    stored = stored_variable()
    assert stored is not None and stored != tampered
    token = codec_for(odc_emulator).open(stored).token.value
    assert token not in stored and odc_emulator.client_secret not in stored


def test_task_whose_variable_set_raises(
    fault_dag: Any, odc_emulator: Any, odc_connection: str, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture, matrix: Matrix,
) -> None:  # fmt: skip
    from airflow.sdk import Variable

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("Variable.set refused (HTTP 403)")

    monkeypatch.setattr(Variable, "set", staticmethod(refuse))
    with caplog.at_level(logging.WARNING):
        run = fault_dag.test()
    stats = odc_emulator.stats()
    matrix.record(f"run {run.state} (memory token, warning)", stats)
    assert run.state == "success"
    # dag.test() runs both tasks in one process: the second one reuses the in-memory token.
    assert (stats["token_requests"], stats["token_exchanges"], stats["api_calls_total"]) == (1, 1, 2)
    warning = "Could not write the ODC access token cache"
    warnings = [r.getMessage() for r in caplog.records if warning in r.getMessage()]
    assert sum(f"Variable {KEY} " in message for message in warnings) == 1, warnings
    assert stored_variable() is None


def test_task_cache_secret_keeps_the_token_across_a_secret_rotation(
    fault_dag: Any, odc_emulator: Any, monkeypatch: pytest.MonkeyPatch, matrix: Matrix
) -> None:
    """The README's promise, in real tasks with the real Variable: with a ``cache_secret``, the token the
    tasks stored before the client secret was rotated opens after it, and no new exchange is made."""
    from airflow_provider_odc.cache.token_cache import TokenCache

    def connect(secret: str) -> None:
        connection = {**odc_emulator.connection_dict(), "password": secret, "extra": {"cache_secret": "kept-apart"}}
        monkeypatch.setenv("AIRFLOW_CONN_ODC_DEFAULT", json.dumps(connection))

    connect(odc_emulator.client_secret)
    assert fault_dag.test().state == "success"
    sealed_before = stored_variable()
    assert sealed_before is not None and odc_emulator.stats()["token_exchanges"] == 1

    rotated = "client-secret-after-rotation"
    odc_emulator.configure(client_secret=rotated)
    connect(rotated)
    TokenCache.forget_all()  # the next tasks run in new worker processes
    run = fault_dag.test()
    stats = odc_emulator.stats()
    matrix.record(f"run {run.state} (token kept across rotation)", stats)
    assert run.state == "success"
    assert stats["token_exchanges"] == 1 and stats["unauthorized"] == 0
    assert stored_variable() == sealed_before, "the Variable still holds the token sealed before the rotation"


def test_task_memory_mode_writes_no_variable(
    fault_dag: Any, odc_emulator: Any, monkeypatch: pytest.MonkeyPatch, matrix: Matrix
) -> None:
    from airflow.models.variable import Variable

    Variable.delete(lease_key_for("odc_default"))  # an earlier test's released lease
    connection = {**odc_emulator.connection_dict(), "extra": {"cache_mode": "memory"}}
    monkeypatch.setenv("AIRFLOW_CONN_ODC_DEFAULT", json.dumps(connection))
    run = fault_dag.test()
    stats = odc_emulator.stats()
    matrix.record(f"run {run.state} (memory: no Variable)", stats)
    assert run.state == "success"
    assert stats["token_exchanges"] == 1  # dag.test() runs both tasks in one process
    for key in (KEY, lease_key_for("odc_default")):
        assert Variable.get(key, default_var=None) is None, f"memory mode wrote {key}"
