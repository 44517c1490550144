"""The trigger's arguments are what Airflow stores in its database: JSON, complete, and secret-free."""

from __future__ import annotations

import importlib
import json
import time
from typing import Any

import pytest

try:
    from airflow.sdk.exceptions import TaskDeferred
except ImportError:  # Airflow 3.0 and 3.1
    from airflow.exceptions import TaskDeferred  # type: ignore[no-redef]

from airflow_provider_odc.hooks.odc import OdcHook
from airflow_provider_odc.operators.lifecycle import OdcBuildOperator
from airflow_provider_odc.triggers.odc import OdcOperationTrigger

from .conftest import RecordingTI, web_app


def make_trigger(**overrides: Any) -> OdcOperationTrigger:
    arguments: dict[str, Any] = {
        "odc_conn_id": "odc_default",
        "kind": "deployment",
        "operation_key": "6f1f1e0c-8a9e-4a51-9c51-3f5a0f7a2b11",
        "end_time": time.time() + 600,
        "started_at": time.time(),
        **overrides,
    }
    return OdcOperationTrigger(**arguments)


def test_round_trip() -> None:
    trigger = make_trigger(fast_interval=1.0, poll_params={"environmentKey": "e"})
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**json.loads(json.dumps(kwargs)))
    assert rebuilt.serialize() == (classpath, kwargs)


def test_no_token_or_secret_in_the_arguments(odc_emulator: Any, odc_connection: str) -> None:
    """The trigger a deferring operator hands to Airflow, made after its hook held a token."""
    app = web_app(odc_emulator, with_release_build=False)
    operator = OdcBuildOperator(task_id="build", asset=app["name"], odc_conn_id=odc_connection, deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({"ti": RecordingTI()})  # type: ignore[arg-type]
    token = OdcHook(odc_connection).get_access_token()  # the token the operator used (process-wide cache)
    assert odc_emulator.stats()["token_exchanges"] == 1
    _, kwargs = deferred.value.trigger.serialize()
    stored = json.dumps(kwargs)
    assert token not in stored and odc_emulator.client_secret not in stored
    assert set(kwargs) == {
        "odc_conn_id",
        "kind",
        "operation_key",
        "end_time",
        "started_at",
        "poll_params",
        "fast_interval",
        "fast_period",
        "slow_interval",
        "poll_failure_limit",
    }


def test_unknown_kind_fails_when_the_dag_is_written() -> None:
    with pytest.raises(ValueError, match="Unknown ODC operation kind 'deploy'"):
        make_trigger(kind="deploy")


def test_a_row_written_by_the_previous_version_still_deserializes() -> None:
    """Before PollSchedule, the trigger stored its schedule as three numbers; such a row must rebuild."""
    from airflow_provider_odc.poll_schedule import PollSchedule

    stored = {
        "odc_conn_id": "odc_default",
        "kind": "build",
        "operation_key": "b-1",
        "end_time": 2000000000.0,
        "started_at": 1999999000.0,
        "poll_params": None,
        "fast_interval": 2.0,
        "fast_period": 10.0,
        "slow_interval": 20.0,
        "poll_failure_limit": 5,
    }
    trigger = OdcOperationTrigger(**json.loads(json.dumps(stored)))
    assert trigger.schedule == PollSchedule(fast_interval=2.0, fast_period=10.0, slow_interval=20.0)
    assert trigger.serialize()[1] == stored
    assert [trigger.schedule.interval_at(elapsed) for elapsed in (0, 9.9, 10)] == [2.0, 2.0, 20.0]
