"""The operators' own wait: ``wait_timeout`` in the worker and in the triggerer, and what the resumed
task does with each event the trigger yields (success, failed, timeout, error); ``response_check``.

The emulator's build takes an hour here, so every wait ends by the timeout, never by chance.
"""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import pytest

try:
    from airflow.sdk.exceptions import TaskDeferred
except ImportError:  # Airflow 3.0 and 3.1
    from airflow.exceptions import TaskDeferred  # type: ignore[no-redef]

from airflow_provider_odc.exceptions import OdcError, OdcOperationFailed
from airflow_provider_odc.operators.lifecycle import OdcBuildOperator
from airflow_provider_odc.operators.odc import OdcApiOperator

from .conftest import RecordingTI, first_event, web_app

FAST = {"fast_interval": 0.05, "fast_period": 5, "slow_interval": 0.05}
ENVIRONMENTS = "/api/portfolios/v2/environments"


@pytest.fixture
def slow_builds(fast_emulator: Any) -> Any:
    fast_emulator.configure(build_durations={"pending": 3600, "running": 3600})
    return fast_emulator


def build(emulator: Any, **arguments: Any) -> OdcBuildOperator:
    app = web_app(emulator, with_release_build=False)
    return OdcBuildOperator(task_id="build", asset=app["name"], reuse_existing_build=False, **FAST, **arguments)


def test_wait_timeout_in_the_worker_fails_the_task(slow_builds: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker's poll waits on a clock the test controls: the task fails exactly at the deadline."""
    import airflow_provider_odc.operators.lifecycle as lifecycle_module
    import airflow_provider_odc.waiting as waiting_module

    now = [time.time()]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    clock = SimpleNamespace(time=lambda: now[0], sleep=sleep)
    monkeypatch.setattr(lifecycle_module, "time", clock)
    monkeypatch.setattr(waiting_module, "time", clock)
    operator = build(slow_builds, wait_timeout=2)
    ti = RecordingTI()
    with pytest.raises(OdcError) as caught:
        operator.execute({"ti": ti})  # type: ignore[arg-type]
    key = ti.xcom["operation_key"]
    assert str(caught.value) == f"ODC build {key} did not end within 2 s; it keeps running in ODC."
    assert sum(waits) == pytest.approx(2.0) and max(waits) <= FAST["fast_interval"], waits
    polls = slow_builds.stats()["api_calls"]["GET /api/builds/v1/build-operations/{operationKey}"]
    assert polls == 1 + len(waits), "one status call before waiting, one after each wait"


def test_wait_timeout_goes_to_the_trigger_and_its_timeout_event_fails_the_task(slow_builds: Any) -> None:
    operator = build(slow_builds, deferrable=True, wait_timeout=1)
    ti = RecordingTI()
    before = time.time()
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({"ti": ti})  # type: ignore[arg-type]
    trigger = deferred.value.trigger
    assert trigger.end_time - trigger.started_at == 1 and before <= trigger.started_at <= time.time()

    event = asyncio.run(first_event(trigger)).payload
    key = ti.xcom["operation_key"]
    assert event == {"status": "timeout", "kind": "build", "operation_key": key, "operation_status": "Pending"}
    with pytest.raises(OdcError) as caught:
        operator.execute_complete({"ti": ti}, event)  # type: ignore[arg-type]
    assert str(caught.value) == f"ODC build {key} was still Pending after 1 s; it keeps running in ODC."


def test_an_error_event_fails_the_task_with_the_triggers_reason(slow_builds: Any) -> None:
    """The trigger cannot read the status (ODC refuses with 403): its error event fails the task."""
    operator = build(slow_builds, deferrable=True)
    ti = RecordingTI()
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({"ti": ti})  # type: ignore[arg-type]
    slow_builds.add_fault(target="api", status=403, count=10)
    event = asyncio.run(first_event(deferred.value.trigger)).payload
    key = ti.xcom["operation_key"]
    assert event["status"] == "error" and "HTTP 403" in event["message"]
    with pytest.raises(OdcError) as caught:
        operator.execute_complete({"ti": ti}, event)  # type: ignore[arg-type]
    message = str(caught.value)
    # The trigger's reason (poll_failure_message) names the operation and says why the wait stopped.
    assert message.startswith(f"Waiting for ODC build {key} stopped: ") and "HTTP 403" in message
    assert slow_builds.client_secret not in message


@pytest.mark.parametrize(
    ("event_status", "operation_status", "outcome"),
    [("success", "Finished", None), ("failed", "FinishedWithErrors", OdcOperationFailed)],
)
def test_success_and_failed_events(
    fast_emulator: Any, event_status: str, operation_status: str, outcome: type[Exception] | None
) -> None:
    """The resumed task judges the event by the status it carries (and reads ODC's messages itself)."""
    operator = build(fast_emulator, deferrable=True)
    event = {"status": event_status, "kind": "build", "operation_key": "k-1", "operation_status": operation_status}
    if outcome is None:
        assert operator.execute_complete({}, event) == "k-1"  # type: ignore[arg-type]
    else:
        with pytest.raises(outcome, match="FinishedWithErrors"):
            operator.execute_complete({}, event)  # type: ignore[arg-type]


@pytest.mark.parametrize("paginate", [False, True], ids=["response", "paginated-items"])
def test_response_check_returning_false_fails_the_task(fast_emulator: Any, paginate: bool) -> None:
    seen: list[Any] = []

    def check(result: Any) -> bool:
        seen.append(result)
        return False

    operator = OdcApiOperator(task_id="stages", endpoint=ENVIRONMENTS, paginate=paginate, response_check=check)
    with pytest.raises(OdcError) as caught:
        operator.execute({})  # type: ignore[arg-type]
    assert str(caught.value) == f"OdcApiOperator stages: response_check returned False for {ENVIRONMENTS}."
    stages = seen[0] if paginate else seen[0].json()["results"]
    assert [stage["name"] for stage in stages] == ["Development", "QA", "Production"]

    passing = OdcApiOperator(task_id="stages", endpoint=ENVIRONMENTS, paginate=paginate, response_check=bool)
    assert passing.execute({})  # type: ignore[arg-type]
