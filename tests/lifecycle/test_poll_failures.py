"""One failed status poll does not end a wait; a run of them (or a permanent answer) does, clearly.

The connection gives up on the first failed call (``max_retries: 0``), so each injected 503 is one
failed poll. Poke mode is the operator's worker-side wait and the sensor's ``poke``; deferrable mode
is the trigger's async generator, driven directly.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import pytest

from airflow_provider_odc.exceptions import OdcError
from airflow_provider_odc.operators.lifecycle import OdcDeployOperator
from airflow_provider_odc.sensors.odc import OdcOperationSensor
from airflow_provider_odc.triggers.odc import OdcOperationTrigger

from .conftest import RecordingTI, first_event, run_operator, web_app

DEPLOYMENT_STATUS = "/api/deployments/v1/deployment-operations/"
FAST = {"fast_interval": 0.05, "fast_period": 5, "slow_interval": 0.05}


@pytest.fixture
def single_shot(fast_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    connection = {**fast_emulator.connection_dict(), "extra": {"max_retries": 0}}
    monkeypatch.setenv("AIRFLOW_CONN_ODC_DEFAULT", json.dumps(connection))
    return fast_emulator


def status_polls(emulator: Any) -> int:
    return sum(
        count
        for route, count in emulator.stats()["api_calls"].items()
        if route == "GET /api/deployments/v1/deployment-operations/{operationKey}"
    )


def deploy(emulator: Any, **options: Any) -> OdcDeployOperator:
    app = web_app(emulator, with_release_build=True)
    return OdcDeployOperator(task_id="deploy", asset=app["assetKey"], stage="QA", **FAST, **options)


def fail_polls(emulator: Any, how: str, count: int) -> None:
    """``count`` failed status polls: HTTP 503, or the connection cut before the body (a transport error)."""
    if how == "dropped":
        emulator.add_fault(path_prefix=DEPLOYMENT_STATUS, method="GET", drop_response=True, count=count)
    else:
        emulator.add_fault(path_prefix=DEPLOYMENT_STATUS, method="GET", status=int(how), count=count)


@pytest.mark.parametrize(("how", "failures"), [("503", 1), ("503", 3), ("429", 2), ("dropped", 2)])
def test_worker_wait_rides_out_failed_polls(single_shot: Any, how: str, failures: int) -> None:
    fail_polls(single_shot, how, failures)
    key, _ = run_operator(deploy(single_shot, poll_failure_limit=3))
    assert single_shot.state.release.get_operation("deployment", key)["status"] == "Finished"
    assert single_shot.stats()["faults_served"] == failures
    assert status_polls(single_shot) >= failures + 1


def test_worker_wait_fails_after_the_limit_with_a_clear_message(single_shot: Any) -> None:
    single_shot.add_fault(path_prefix=DEPLOYMENT_STATUS, method="GET", status=503, count=10)
    with pytest.raises(OdcError) as caught:
        run_operator(deploy(single_shot, poll_failure_limit=2))
    message = str(caught.value)
    assert "3 status polls in a row failed (limit poll_failure_limit=2)" in message
    assert "may still be running in ODC" in message and "HTTP 503" in message
    assert status_polls(single_shot) == 3
    assert single_shot.stats()["operations_started"]["deploy"] == 1


@pytest.mark.parametrize(("status", "hint"), [(403, "lacks the permission"), (404, "HTTP 404")])
def test_worker_wait_fails_fast_on_a_permanent_answer(single_shot: Any, status: int, hint: str) -> None:
    single_shot.add_fault(path_prefix=DEPLOYMENT_STATUS, method="GET", status=status, count=1)
    with pytest.raises(OdcError) as caught:
        run_operator(deploy(single_shot, poll_failure_limit=5))
    assert "its status could not be read" in str(caught.value) and hint in str(caught.value)
    assert status_polls(single_shot) == 1


def test_sensor_poke_tolerates_then_fails(single_shot: Any) -> None:
    key, _ = run_operator(deploy(single_shot, wait_for_completion=False))
    sensor = OdcOperationSensor(
        task_id="wait", kind="deployment", operation_key=key, poke_interval=0.05, poll_failure_limit=2
    )
    context: Any = {"ti": RecordingTI()}
    single_shot.add_fault(path_prefix=DEPLOYMENT_STATUS, method="GET", status=502, count=2)
    assert sensor.poke(context) is False
    assert sensor.poke(context) is False
    single_shot.advance(5)
    assert sensor.poke(context) is True  # the third poke reads the status: Finished

    other, _ = run_operator(deploy(single_shot, wait_for_completion=False))
    sensor = OdcOperationSensor(
        task_id="wait2", kind="deployment", operation_key=other, poke_interval=0.05, poll_failure_limit=2
    )
    single_shot.add_fault(path_prefix=DEPLOYMENT_STATUS, method="GET", status=502, count=3)
    assert sensor.poke(context) is False and sensor.poke(context) is False
    with pytest.raises(OdcError, match="3 status polls in a row failed"):
        sensor.poke(context)


def run_trigger(key: str, **overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "odc_conn_id": "odc_default",
        "kind": "deployment",
        "operation_key": key,
        "end_time": time.time() + 30,
        "fast_interval": 0.05,
        "slow_interval": 0.05,
        **overrides,
    }
    return dict(asyncio.run(first_event(OdcOperationTrigger(**arguments))).payload)


@pytest.mark.parametrize(("how", "failures"), [("503", 1), ("503", 3), ("dropped", 2)])
def test_trigger_rides_out_failed_polls(single_shot: Any, how: str, failures: int) -> None:
    key, _ = run_operator(deploy(single_shot, wait_for_completion=False))
    fail_polls(single_shot, how, failures)
    event = run_trigger(key, poll_failure_limit=3)
    assert event["status"] == "success" and event["operation_status"] == "Finished"
    assert single_shot.stats()["faults_served"] == failures


def test_trigger_fails_after_the_limit_and_the_task_says_why(single_shot: Any) -> None:
    operator = deploy(single_shot, poll_failure_limit=2)
    key, _ = run_operator(deploy(single_shot, wait_for_completion=False))
    single_shot.add_fault(path_prefix=DEPLOYMENT_STATUS, method="GET", status=503, count=10)
    event = run_trigger(key, poll_failure_limit=2)
    assert event["status"] == "error" and status_polls(single_shot) == 3
    json.dumps(event)
    with pytest.raises(OdcError) as caught:
        operator.execute_complete({"ti": RecordingTI()}, event)
    assert str(caught.value).startswith(f"Waiting for ODC deployment {key} stopped: 3 status polls in a row failed")


def test_trigger_fails_fast_on_a_404(single_shot: Any) -> None:
    missing = str(uuid.uuid4())
    event = run_trigger(missing, poll_failure_limit=5)
    assert event["status"] == "error" and "its status could not be read" in event["message"]
    assert "HTTP 404" in event["message"] and status_polls(single_shot) == 1
