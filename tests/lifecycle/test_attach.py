"""Which operation a retry (or a lost POST answer) attaches to, and when it starts a new one.

The end-to-end rows (real Airflow, ``retries=1``) are in ``tests/faults/test_retry_faults.py``; here the
operators run with hand-made contexts to reach the cases a ``dag.test()`` run cannot choose: no task
state store (Airflow 3.0 to 3.2), a task cleared by hand, an earlier operation that failed.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_odc.attach import STORE_KEY
from airflow_provider_odc.exceptions import OdcApiError
from airflow_provider_odc.operators.lifecycle import OdcBuildOperator, OdcDeployOperator, OdcPublishOperator

from .conftest import RecordingTI, web_app

FAST = {"fast_interval": 0.05, "fast_period": 5, "slow_interval": 0.05}
DEPLOYMENTS = "/api/deployments/v1/deployment-operations"


class StateStore:
    """``context["task_state_store"]``'s contract (get, set, delete) on a dict, as Airflow 3.3 offers it."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        json.dumps(value)  # the real store keeps JSON
        self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


def context(try_number: int, store: StateStore | None = None, clear_number: int = 0) -> dict[str, Any]:
    ti = RecordingTI()
    ti.try_number = try_number  # type: ignore[attr-defined]
    run = SimpleNamespace(clear_number=clear_number, start_date=datetime.now(timezone.utc) - timedelta(minutes=5))
    values: dict[str, Any] = {"ti": ti, "dag_run": run}
    if store is not None:
        values["task_state_store"] = store
    return values


def started(emulator: Any, kind: str) -> int:
    return int(emulator.stats()["operations_started"][kind])


def deploy(emulator: Any, **options: Any) -> OdcDeployOperator:
    app = web_app(emulator, with_release_build=True)
    return OdcDeployOperator(task_id="deploy", asset=app["assetKey"], stage="QA", **FAST, **options)


def test_unlisted_lost_post_fails_without_resending(fast_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The POST times out and ODC lists no matching operation (yet): the try fails saying so, the POST is
    not sent again, and the time of the POST is recorded for the retry's lookup."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_ODC_DEFAULT", json.dumps({**fast_emulator.connection_dict(), "extra": {"timeout": 1}})
    )
    fast_emulator.add_fault(latency=2.0, path_prefix=DEPLOYMENTS, method="POST")
    store = StateStore()
    before = time.time()
    with pytest.raises(OdcApiError) as caught:
        deploy(fast_emulator).execute(context(1, store))
    message = str(caught.value)
    assert "not sent again" in message and "does not list a Deploy of asset" in message
    assert "retry looks for it again" in message
    assert fast_emulator.stats()["api_calls"][f"POST {DEPLOYMENTS}"] == 1
    assert fast_emulator.stats()["api_calls"][f"GET {DEPLOYMENTS}"] == 1  # the lookup
    recorded = store.values[STORE_KEY]
    assert "key" not in recorded and before <= recorded["posted_at"] <= time.time()


def test_retry_without_a_state_store_attaches_to_the_running_operation(fast_emulator: Any) -> None:
    """Airflow 3.0 to 3.2: a retry looks for a matching operation created since the DAG run started."""
    fast_emulator.configure(operation_duration=30)
    first = deploy(fast_emulator, wait_for_completion=False).execute(context(1))
    again = deploy(fast_emulator, wait_for_completion=False).execute(context(2))
    assert again == first and started(fast_emulator, "deploy") == 1


def test_first_try_without_a_state_store_never_looks_back(fast_emulator: Any) -> None:
    fast_emulator.configure(operation_duration=30)
    app = web_app(fast_emulator, with_release_build=True)
    keys = {
        OdcDeployOperator(task_id="d", asset=app["assetKey"], stage=stage, wait_for_completion=False).execute(
            context(1)
        )
        for stage in ("QA", "Production")
    }
    assert len(keys) == 2 and started(fast_emulator, "deploy") == 2


def test_a_failed_earlier_operation_is_not_attached_to(fast_emulator: Any) -> None:
    store = StateStore()
    fast_emulator.fail_next("deploy", messages=["Missing configuration"])
    with pytest.raises(Exception, match="Missing configuration"):
        deploy(fast_emulator).execute(context(1, store))
    failed = store.values[STORE_KEY]["key"]
    key = deploy(fast_emulator).execute(context(2, store))
    assert key != failed and started(fast_emulator, "deploy") == 2


def test_a_finished_earlier_operation_is_the_retry_outcome(fast_emulator: Any) -> None:
    store = StateStore()
    key = deploy(fast_emulator).execute(context(1, store))
    assert deploy(fast_emulator).execute(context(2, store)) == key
    assert started(fast_emulator, "deploy") == 1


def test_a_task_cleared_by_hand_starts_afresh(fast_emulator: Any) -> None:
    """A clear bumps the DAG run's clear_number: what the earlier clear's tries recorded does not apply."""
    store = StateStore()
    key = deploy(fast_emulator).execute(context(1, store, clear_number=0))
    fresh = deploy(fast_emulator).execute(context(2, store, clear_number=1))
    assert fresh != key and started(fast_emulator, "deploy") == 2


def test_build_retry_attaches_to_a_pending_build_without_reuse(fast_emulator: Any) -> None:
    fast_emulator.configure(build_durations={"pending": 30, "running": 30})
    app = web_app(fast_emulator, with_release_build=False)
    store = StateStore()
    operator = OdcBuildOperator(
        task_id="b", asset=app["assetKey"], reuse_existing_build=False, wait_for_completion=False
    )
    first = operator.execute(context(1, store))
    assert operator.execute(context(2, store)) == first
    assert operator.execute(context(2)) == first  # without a store: by asset, revision, type and Pending
    assert started(fast_emulator, "build") == 1


def test_deploy_building_first_waits_for_a_running_build_instead_of_starting_one(fast_emulator: Any) -> None:
    """build_if_missing on a retry: the earlier try's build is still running; it is awaited, not duplicated."""
    fast_emulator.configure(build_durations={"pending": 0.2, "running": 0.6})
    app = web_app(fast_emulator, with_release_build=False)
    OdcBuildOperator(task_id="b", asset=app["assetKey"], wait_for_completion=False).execute(context(1))
    key = OdcDeployOperator(task_id="d", asset=app["assetKey"], stage="QA", build_if_missing=True, **FAST).execute(
        context(2)
    )
    assert started(fast_emulator, "build") == 1 and started(fast_emulator, "deploy") == 1
    assert fast_emulator.state.release.get_operation("deployment", key)["status"] == "Finished"


def test_publish_lost_answer_attaches_to_the_listed_publish(fast_emulator: Any) -> None:
    app = web_app(fast_emulator, with_release_build=True)
    fast_emulator.add_fault(path_prefix="/api/deployments/v1/publish-operations", method="POST", drop_response=True)
    store = StateStore()
    key = OdcPublishOperator(task_id="p", asset=app["assetKey"], **FAST).execute(context(1, store))
    assert started(fast_emulator, "publish") == 1 and store.values[STORE_KEY]["key"] == key
    assert fast_emulator.state.release.get_operation("publish", key)["assetKey"] == app["assetKey"]
