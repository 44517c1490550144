"""Smoke test of the real-stack harness: three tasks, three processes, one shared Variable."""

from __future__ import annotations

import os
import uuid

import pytest

from devtools.stack import AirflowStack

pytestmark = pytest.mark.scheduler

TASKS = ("first", "second", "third")


def test_stack_is_healthy(airflow_stack: AirflowStack) -> None:
    health = airflow_stack.rest("GET", "/api/v2/monitor/health").json()
    components = ("metadatabase", "scheduler", "triggerer", "dag_processor")
    assert {name: health[name]["status"] for name in components} == dict.fromkeys(components, "healthy")
    assert "stack_smoke" in {dag["dag_id"] for dag in airflow_stack.dags()}
    assert not [err for err in airflow_stack.import_errors() if "stack_smoke" in err["filename"]]


def test_tasks_run_in_own_processes_and_share_a_variable(airflow_stack: AirflowStack) -> None:
    marker = uuid.uuid4().hex
    run = airflow_stack.run_dag("stack_smoke", conf={"marker": marker}, timeout=120)
    run_id = run["dag_run_id"]
    assert run["state"] == "success", airflow_stack.explain("stack_smoke", run_id)
    assert run["conf"] == {"marker": marker}

    task_instances = airflow_stack.task_instances("stack_smoke", run_id)
    assert {ti["task_id"]: ti["state"] for ti in task_instances} == dict.fromkeys(TASKS, "success")

    xcoms = airflow_stack.xcom_values("stack_smoke", run_id)
    pids = {task: xcoms[task]["pid"] for task in TASKS}
    # Each task ran in a process of its own, none of them the test process.
    assert len(set(pids.values())) == len(TASKS), pids
    assert os.getpid() not in pids.values()
    # ... and they are the processes Airflow itself recorded for the task instances.
    assert {ti["task_id"]: ti["pid"] for ti in task_instances} == pids
    # What `first` stored with Variable.set reached the other two processes through Airflow.
    assert xcoms["second"]["value"] == "x"
    assert xcoms["third"]["value"] == "x"
    variable = airflow_stack.rest("GET", "/api/v2/variables/stack_smoke_value")
    assert variable.status_code == 200
    assert variable.json()["value"] == "x"

    everything = airflow_stack.log_text()
    for task, pid in pids.items():
        line = f"stack_smoke task={task} pid={pid} marker={marker}"
        assert line in airflow_stack.task_log("stack_smoke", run_id, task)
        assert line in everything
