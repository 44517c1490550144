"""Mobile builds and external libraries: a fast emulator, an operator runner whose task instance can pull
its own XCom (the native build operator reads its scope back after a deferral), and a leak detector.

The leak detector switches Airflow's log masking off (``airflow_masking_off``) so a test sees what the
provider itself writes, and collects everything that could carry a credential out of a task: every log
record (DEBUG included), the XCom pushed, the return value and the exception message.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import zipfile
from typing import Any

import pytest

try:
    from airflow.sdk.exceptions import TaskDeferred
except ImportError:  # Airflow 3.0 and 3.1
    from airflow.exceptions import TaskDeferred  # type: ignore[no-redef]

from ..hook.test_secret_hygiene import airflow_masking_off  # noqa: F401  (a fixture)
from ..lifecycle.conftest import first_event

FAST = {"fast_interval": 0.05, "fast_period": 5, "slow_interval": 0.05}
MOBILE_APP = "Customer 360 013"  # the seed's mobile app deployed on every stage


class PullingTI:
    """A task instance with ``xcom_push`` and ``xcom_pull`` of its own XCom, as Airflow's behaves."""

    task_id = "task"
    map_index = -1
    try_number = 1

    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = json.loads(json.dumps(value))  # XCom stores JSON

    def xcom_pull(self, task_ids: str, key: str, map_indexes: int = -1) -> Any:
        assert task_ids == self.task_id and map_indexes == self.map_index
        return self.xcom.get(key)


class StateStore(dict[str, Any]):
    """Airflow 3.3's ``task_state_store`` for one task instance: it outlives the task's tries."""

    def set(self, key: str, value: Any) -> None:
        self[key] = value

    def delete(self, key: str) -> None:
        self.pop(key, None)


def run(operator: Any, *, store: StateStore | None = None, try_number: int = 1) -> tuple[Any, PullingTI]:
    """Run an operator like Airflow: ``execute``, and after a deferral its trigger and ``execute_complete``."""
    ti = PullingTI()
    ti.try_number = try_number
    context: Any = {"ti": ti}
    if store is not None:
        context["task_state_store"] = store
    try:
        return operator.execute(context), ti
    except TaskDeferred as deferred:
        event = asyncio.run(first_event(deferred.trigger))
        operator.poll_params = None  # a resumed task is a new process: only XCom and the event carry over
        return getattr(operator, deferred.method_name)(context, event.payload), ti


@pytest.fixture
def fast(odc_emulator: Any, odc_connection: str) -> Any:
    odc_emulator.configure(build_durations={"pending": 0.1, "running": 0.2}, operation_duration=0.3)
    return odc_emulator


class Outflow:
    """Everything a task let out: log records (DEBUG included), stdout/stderr, and the values added."""

    def __init__(self, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
        self.caplog, self.capsys = caplog, capsys
        self.extra: list[str] = []

    def add(self, *values: Any) -> None:
        self.extra.extend(value if isinstance(value, str) else json.dumps(value, default=str) for value in values)

    def text(self) -> str:
        captured = self.capsys.readouterr()
        return "\n".join([self.caplog.text, captured.out, captured.err, *self.extra])


@pytest.fixture
def outflow(
    airflow_masking_off: None,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> Outflow:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="airflow.task")
    return Outflow(caplog, capsys)


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()
