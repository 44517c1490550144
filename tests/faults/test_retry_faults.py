"""Fault matrix, part 5: Airflow's own task retries and lost POST answers start no second operation.

Each operation-starting operator runs as a task with ``retries=1`` in a real Airflow (``dag.test()``,
DAG file ``dags/odc_fault_retries.py``) against the emulator over loopback. The emulator accepts the
POST and drops its answer (``drop_response``), or fails status polls; the count that matters is how
many operations ODC started (``operations_started``), and the task's outcome and try number.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..lifecycle.conftest import web_app
from ._support import Matrix

DAGS = Path(__file__).parent / "dags"
LISTS = {
    "build": "/api/builds/v1/build-operations",
    "deploy": "/api/deployments/v1/deployment-operations",
    "publish": "/api/deployments/v1/publish-operations",
}
KINDS = list(LISTS)


@pytest.fixture
def retry_dags(airflow_db: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The retry DAGs, in a DAG bundle of their own next to the default one (``dag.test()`` needs one)."""
    bundles = [
        {"name": "dags-folder", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle", "kwargs": {}},
        {
            "name": "odc-faults",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(DAGS)},
        },
    ]
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps(bundles))
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.2
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    dags = DagBag(dag_folder=str(DAGS)).dags
    yield {kind: dags[f"odc_retry_{kind}"] for kind in [*KINDS, "deploy_deferred"]}


@pytest.fixture
def emulator(odc_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Fast operations; the hook gives up on the first failed call (no backoff sleeps in these rows)."""
    odc_emulator.configure(build_durations={"pending": 0.2, "running": 0.4}, operation_duration=0.5)
    connection = {**odc_emulator.connection_dict(), "extra": {"max_retries": 0}}
    monkeypatch.setenv("AIRFLOW_CONN_ODC_DEFAULT", json.dumps(connection))
    return odc_emulator


def conf_for(emulator: Any, kind: str) -> dict[str, str]:
    app = web_app(emulator, with_release_build=kind == "deploy")
    return {"asset": app["name"], "stage": "QA"}


def task_instance(run: Any) -> Any:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return session.scalars(select(TaskInstance).where(TaskInstance.run_id == run.run_id)).one()


def started(emulator: Any, kind: str) -> int:
    return int(emulator.stats()["operations_started"][kind])


@pytest.mark.parametrize("kind", KINDS)
def test_lost_post_answer_attaches_within_the_try(
    kind: str, retry_dags: dict[str, Any], emulator: Any, matrix: Matrix
) -> None:
    """ODC accepted the POST, the answer never arrived: the task finds the operation and waits for it."""
    conf = conf_for(emulator, kind)
    emulator.add_fault(path_prefix=LISTS[kind], method="POST", drop_response=True)
    run = retry_dags[kind].test(run_conf=conf)
    ti = task_instance(run)
    matrix.record(f"run {run.state}, try {ti.try_number}, {started(emulator, kind)} {kind}", emulator.stats(),
                  row=f"{kind} POST answer lost")  # fmt: skip
    assert run.state == "success"
    assert started(emulator, kind) == 1
    assert ti.try_number == 1
    assert emulator.stats()["api_calls"][f"POST {LISTS[kind]}"] == 1


@pytest.mark.parametrize("kind", KINDS)
def test_lost_post_answer_then_the_retry_attaches(
    kind: str, retry_dags: dict[str, Any], emulator: Any, matrix: Matrix
) -> None:
    """The answer is lost and the lookup fails too: the try fails; its retry finds the operation."""
    conf = conf_for(emulator, kind)
    emulator.add_fault(path_prefix=LISTS[kind], method="POST", drop_response=True)
    emulator.add_fault(path_prefix=LISTS[kind], method="GET", status=503)
    run = retry_dags[kind].test(run_conf=conf)
    ti = task_instance(run)
    matrix.record(f"run {run.state}, try {ti.try_number}, {started(emulator, kind)} {kind}", emulator.stats(),
                  row=f"{kind} POST answer lost, lookup 503, retries=1")  # fmt: skip
    assert run.state == "success"
    assert started(emulator, kind) == 1
    assert ti.try_number == 2
    assert emulator.stats()["api_calls"][f"POST {LISTS[kind]}"] == 1


@pytest.mark.parametrize("kind", KINDS)
def test_failed_wait_then_the_retry_attaches(
    kind: str, retry_dags: dict[str, Any], emulator: Any, matrix: Matrix
) -> None:
    """Two status polls in a row fail (one is tolerated): the try fails; its retry attaches to the same
    operation (its key is in the task state store) instead of starting another."""
    conf = conf_for(emulator, kind)
    emulator.add_fault(path_prefix=LISTS[kind] + "/", method="GET", status=503, count=2)
    run = retry_dags[kind].test(run_conf=conf)
    ti = task_instance(run)
    matrix.record(f"run {run.state}, try {ti.try_number}, {started(emulator, kind)} {kind}", emulator.stats(),
                  row=f"{kind} status poll 503 x2 (limit 1), retries=1")  # fmt: skip
    assert run.state == "success"
    assert started(emulator, kind) == 1
    assert ti.try_number == 2
    assert emulator.stats()["api_calls"][f"POST {LISTS[kind]}"] == 1


@pytest.mark.parametrize(
    ("dag", "failures", "tries"), [("deploy", 1, 1), ("deploy_deferred", 1, 1), ("deploy_deferred", 3, 2)]
)
def test_failed_status_polls_in_poke_and_deferrable_mode(
    dag: str, failures: int, tries: int, retry_dags: dict[str, Any], emulator: Any, matrix: Matrix
) -> None:
    """One failed poll (the limit is 1) is ridden out in the worker and in the trigger. Three end the
    deferred try (the worker's first check fails, then two in a row in the trigger, which counts afresh),
    and the retry attaches to the same deployment."""
    conf = conf_for(emulator, "deploy")
    # The trigger's polls are the shared poller's reads of the list; the worker's are GETs by key.
    prefix = LISTS["deploy"] if dag.endswith("deferred") else LISTS["deploy"] + "/"
    emulator.add_fault(path_prefix=prefix, method="GET", status=503, count=failures)
    run = retry_dags[dag].test(run_conf=conf)
    ti = task_instance(run)
    mode = "deferred" if dag.endswith("deferred") else "worker"
    matrix.record(f"run {run.state}, try {ti.try_number}, {started(emulator, 'deploy')} deploy", emulator.stats(),
                  row=f"deploy ({mode} wait) status poll 503 x{failures} (limit 1)")  # fmt: skip
    assert run.state == "success"
    assert ti.try_number == tries
    assert started(emulator, "deploy") == 1
    assert emulator.stats()["faults_served"] == failures
