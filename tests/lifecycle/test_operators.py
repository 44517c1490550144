"""Build, deploy, configure, publish and tag against the emulator: success, failure, deferral, limits."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest

try:
    from airflow.sdk.exceptions import TaskDeferred
except ImportError:  # Airflow 3.0 and 3.1
    from airflow.exceptions import TaskDeferred  # type: ignore[no-redef]

from airflow_provider_odc.cache.stores import variable_key_for
from airflow_provider_odc.exceptions import OdcApiError, OdcError, OdcOperationFailed
from airflow_provider_odc.hooks.odc import OdcHook
from airflow_provider_odc.operators.lifecycle import (
    OdcApplyConfigsOperator,
    OdcBuildOperator,
    OdcDeployOperator,
    OdcPublishOperator,
    OdcTagRevisionOperator,
    OdcUndeployOperator,
)
from airflow_provider_odc.sensors.odc import OdcOperationSensor
from devtools.hook_factory import run_in_new_process

from ..faults._support import DictStore
from .conftest import RecordingTI, run_operator, web_app

FAST = {"fast_interval": 0.05, "fast_period": 5, "slow_interval": 0.05}
DEPLOYMENTS = "/api/deployments/v1/deployment-operations"


def started(emulator: Any, kind: str) -> int:
    return int(emulator.stats()["operations_started"].get(kind, 0))


def test_build_returns_the_build_key_and_links_to_the_portal(fast_emulator: Any) -> None:
    app = web_app(fast_emulator, with_release_build=False)
    build_key, ti = run_operator(OdcBuildOperator(task_id="build", asset=app["name"], **FAST))
    assert ti.xcom["operation_key"] == build_key
    assert ti.xcom["odc_portal_url"] == f"{fast_emulator.base_url}/apps/application?id={app['assetKey']}"
    assert started(fast_emulator, "build") == 1
    builds = next(a for a in fast_emulator.inventory()["assets"] if a["assetKey"] == app["assetKey"])["builds"]
    assert {"buildKey": build_key, "revision": app["latestRevision"], "buildType": "Release", "status": "Finished"} in [
        {k: b[k] for k in ("buildKey", "revision", "buildType", "status")} for b in builds
    ]


def test_build_reuses_an_existing_release_build(fast_emulator: Any) -> None:
    app = web_app(fast_emulator, with_release_build=True)
    existing = next(
        b["buildKey"]
        for b in app["builds"]
        if b["revision"] == app["latestRevision"] and b["buildType"] == "Release" and b["status"] == "Finished"
    )
    build_key, _ = run_operator(OdcBuildOperator(task_id="build", asset=app["assetKey"], **FAST))
    assert build_key == existing
    assert started(fast_emulator, "build") == 0
    forced, _ = run_operator(OdcBuildOperator(task_id="b", asset=app["assetKey"], reuse_existing_build=False, **FAST))
    assert forced != existing and started(fast_emulator, "build") == 1


def test_failed_build_raises_with_odc_messages(fast_emulator: Any) -> None:
    app = web_app(fast_emulator, with_release_build=False)
    fast_emulator.fail_next("build", messages=["Cannot compile action 'Checkout': missing input"])
    with pytest.raises(OdcOperationFailed) as caught:
        run_operator(OdcBuildOperator(task_id="build", asset=app["name"], **FAST))
    assert caught.value.status == "FinishedWithErrors"
    assert "Cannot compile action 'Checkout': missing input" in str(caught.value)


def test_deploy_by_stage_name_with_build_if_missing(fast_emulator: Any) -> None:
    app = web_app(fast_emulator, with_release_build=False)
    with pytest.raises(OdcError, match="has no finished Release build"):
        run_operator(OdcDeployOperator(task_id="deploy", asset=app["name"], stage="QA", **FAST))
    assert started(fast_emulator, "deploy") == 0

    key, ti = run_operator(
        OdcDeployOperator(task_id="deploy", asset=app["name"], stage="qa", build_if_missing=True, **FAST)
    )
    assert ti.xcom["operation_key"] == key
    assert "stageid=" in ti.xcom["odc_portal_url"]
    deployed = next(a for a in fast_emulator.inventory()["assets"] if a["assetKey"] == app["assetKey"])["deployed"]
    assert deployed["QA"]["revision"] == app["latestRevision"]
    assert started(fast_emulator, "build") == 1 and started(fast_emulator, "deploy") == 1


def test_a_deferrable_deploy_builds_the_missing_build_in_the_worker_then_defers_the_deployment(
    fast_emulator: Any,
) -> None:
    """The build is awaited inside ``execute``: deferring there would resume into the deployment's
    ``execute_complete`` with the build's event. Only the deployment wait goes to the triggerer."""
    app = web_app(fast_emulator, with_release_build=False)
    operator = OdcDeployOperator(
        task_id="deploy", asset=app["name"], stage="QA", build_if_missing=True, deferrable=True, **FAST
    )
    ti = RecordingTI()
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({"ti": ti})  # type: ignore[arg-type]
    trigger = deferred.value.trigger
    assert (trigger.kind, trigger.operation_key) == ("deployment", ti.xcom["operation_key"])
    assert started(fast_emulator, "build") == 1 and started(fast_emulator, "deploy") == 1


def test_failed_deployment_raises_with_its_error_messages(fast_emulator: Any) -> None:
    app = web_app(fast_emulator, with_release_build=True)
    fast_emulator.fail_next("deploy", messages=["Database upgrade failed for entity Order", "Rolled back"])
    with pytest.raises(OdcOperationFailed) as caught:
        run_operator(OdcDeployOperator(task_id="deploy", asset=app["name"], stage="Production", **FAST))
    assert caught.value.status == "FinishedWithError"
    first, second = caught.value.messages[:2]
    assert first.startswith("Database upgrade failed for entity Order") and second.startswith("Rolled back")


#: The triggerer's side, in a process of its own: rebuild the trigger from its serialized form (as the
#: triggerer does from the trigger row) and run it to its first event.
TRIGGERER = """
import asyncio, importlib, json, sys

classpath, kwargs = json.loads(sys.argv[1])
module, name = classpath.rsplit(".", 1)
trigger = getattr(importlib.import_module(module), name)(**kwargs)


async def first_event():
    async for event in trigger.run():
        return event.payload


print("RESULT " + json.dumps(asyncio.run(first_event())))
"""


def run_trigger_in_another_process(trigger: Any, variables: dict[str, str]) -> dict[str, Any]:
    """Run ``trigger`` in a new Python process that sees the given Variables through Airflow's
    ``Variable.get`` (as ``AIRFLOW_VAR_*``): nothing of this process's memory goes along."""
    env = {**os.environ, **{f"AIRFLOW_VAR_{key.upper()}": value for key, value in variables.items()}}
    return dict(run_in_new_process(TRIGGERER, json.dumps(trigger.serialize()), env=env))


def status_polls(emulator: Any) -> int:
    calls = emulator.stats()["api_calls"].items()
    # By key or, through the triggerer's shared poller, the list.
    return sum(count for call, count in calls if call.startswith("GET /api/deployments/v1/deployment-operations"))


def test_deferrable_deploy_waits_in_the_trigger_without_a_new_token(
    fast_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The task stores its token (in a stand-in for the Variable: outside a running task ``Variable.set``
    cannot work); the trigger, in a process of its own, reads it through Airflow's ``Variable.get``: the
    whole defer/resume cycle makes one token exchange."""
    variables: dict[str, str] = {}
    monkeypatch.setattr(OdcHook, "token_store", lambda key: DictStore(variables, key))
    app = web_app(fast_emulator, with_release_build=True)
    operator = OdcDeployOperator(task_id="deploy", asset=app["name"], stage="QA", deferrable=True, **FAST)
    ti = RecordingTI()
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({"ti": ti})  # type: ignore[arg-type]
    assert fast_emulator.stats()["token_exchanges"] == 1
    assert set(variables) >= {variable_key_for("odc_default")}, "the task stored its token"
    polls_before = status_polls(fast_emulator)

    event = run_trigger_in_another_process(deferred.value.trigger, variables)
    assert event["status"] == "success" and event["operation_key"] == ti.xcom["operation_key"]
    stats = fast_emulator.stats()
    assert stats["token_exchanges"] == 1, "the triggerer should have used the token from the Variable"
    assert status_polls(fast_emulator) > polls_before, "the trigger polled ODC with that token"
    assert operator.execute_complete({"ti": ti}, event) == ti.xcom["operation_key"]  # type: ignore[arg-type]


def test_finished_operation_does_not_defer(fast_emulator: Any) -> None:
    app = web_app(fast_emulator, with_release_build=True)
    # The reused build is already Finished: the deferrable build operator returns without deferring.
    assert OdcBuildOperator(task_id="b", asset=app["name"], deferrable=True).execute({"ti": RecordingTI()})


def test_deploy_post_is_not_resent_after_a_timeout(fast_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    app = web_app(fast_emulator, with_release_build=True)
    monkeypatch.setenv(
        "AIRFLOW_CONN_ODC_DEFAULT",
        json.dumps({**fast_emulator.connection_dict(), "extra": {"timeout": 1}}),
    )
    fast_emulator.add_fault(target="api", latency=2.0, count=1, path_prefix="/api/deployments/v1/deployment-operations")
    with pytest.raises(OdcApiError, match="not sent again"):
        run_operator(OdcDeployOperator(task_id="deploy", asset=app["name"], stage="QA", **FAST))
    time.sleep(1.5)  # let the emulator finish the delayed request
    assert fast_emulator.stats()["api_calls"]["POST /api/deployments/v1/deployment-operations"] == 1


def test_twelve_deploys_in_a_minute_wait_out_odc_s_window_once(fast_emulator: Any, no_real_sleep: list[float]) -> None:
    """ODC allows 10 deployment POSTs a minute and sends no Retry-After: the 11th deploy's POST is refused,
    the client waits out the one-minute window (60 s + jitter, on the emulator's clock) and re-sends it; the
    12th then fits too. Exactly one wait, and every refused POST started nothing."""
    fast_emulator.configure(operation_duration=0)  # no polls: only the POST limit is in play
    app = web_app(fast_emulator, with_release_build=True)
    stages = ["QA", "Production", "Development"]
    keys = [
        run_operator(OdcDeployOperator(task_id=f"deploy_{n}", asset=app["name"], stage=stages[n % 3], **FAST))[0]
        for n in range(12)
    ]
    assert len(set(keys)) == 12
    assert started(fast_emulator, "deploy") == 12
    stats = fast_emulator.stats()
    assert stats["rate_limited_calls"] == {f"POST {DEPLOYMENTS}": 1}
    assert stats["api_calls"][f"POST {DEPLOYMENTS}"] == 13
    assert len(no_real_sleep) == 1 and 60 <= no_real_sleep[0] <= 72, no_real_sleep


def test_apply_configs_undeploy_and_publish(fast_emulator: Any) -> None:
    app = web_app(fast_emulator, with_release_build=True)
    assert run_operator(OdcApplyConfigsOperator(task_id="cfg", asset=app["name"], stage="Production", **FAST))[0]
    assert run_operator(OdcUndeployOperator(task_id="undeploy", asset=app["name"], stage="Production", **FAST))[0]
    deployed = next(a for a in fast_emulator.inventory()["assets"] if a["assetKey"] == app["assetKey"])["deployed"]
    assert "Production" not in deployed
    assert run_operator(OdcPublishOperator(task_id="publish", asset=app["name"], **FAST))[0]
    assert started(fast_emulator, "apply_configs") == started(fast_emulator, "undeploy") == 1
    assert started(fast_emulator, "publish") == 1


def test_tag_a_revision_then_resolve_highest_tag(fast_emulator: Any) -> None:
    app = web_app(fast_emulator, with_release_build=True)
    major = int((app["highestTag"] or "0.0.0").split(".")[0]) + 1
    result, _ = run_operator(
        OdcTagRevisionOperator(
            task_id="tag", asset=app["name"], revision="latest", tag=f"{major}.0.0", release_notes="<p>New</p>"
        )
    )
    assert result == {"assetKey": app["assetKey"], "revision": app["latestRevision"], "tag": f"{major}.0.0"}
    with pytest.raises(OdcApiError) as caught:
        run_operator(OdcTagRevisionOperator(task_id="tag", asset=app["name"], revision=1, tag=f"{major}.0.0"))
    assert caught.value.status == 400 and caught.value.error_code == "OS-APPS-40021"
    # "highest-tag" now names the revision just tagged.
    build_key, _ = run_operator(
        OdcBuildOperator(task_id="b", asset=app["name"], revision="highest-tag", reuse_existing_build=False, **FAST)
    )
    assert build_revision(fast_emulator, app["assetKey"], build_key) == app["latestRevision"]


def build_revision(emulator: Any, asset_key: str, build_key: str) -> int:
    asset = next(a for a in emulator.inventory()["assets"] if a["assetKey"] == asset_key)
    return int(next(b["revision"] for b in asset["builds"] if b["buildKey"] == build_key))


def test_highest_tag_is_the_tagged_revision_not_the_latest(fast_emulator: Any) -> None:
    app = next(
        a
        for a in fast_emulator.inventory()["assets"]
        if a["assetType"] == "WebApplication" and a["highestTagRevision"] not in (None, a["latestRevision"])
    )
    build_key, _ = run_operator(
        OdcBuildOperator(task_id="b", asset=app["name"], revision="highest-tag", reuse_existing_build=False, **FAST)
    )
    assert build_revision(fast_emulator, app["assetKey"], build_key) == app["highestTagRevision"]
    assert fast_emulator.stats()["api_calls"]["GET /api/asset-repository/v1/assets/{assetKey}/highest-tag-revision"]


def test_highest_tag_of_an_untagged_asset_says_what_to_do(fast_emulator: Any) -> None:
    app = next(a for a in fast_emulator.inventory()["assets"] if a["deployable"] and a["highestTag"] is None)
    with pytest.raises(OdcError, match="has no tagged revision; tag one first or pass a number"):
        run_operator(OdcDeployOperator(task_id="deploy", asset=app["name"], stage="QA", revision="highest-tag"))
    assert started(fast_emulator, "deploy") == 0


def test_unknown_stage_lists_the_stages(fast_emulator: Any) -> None:
    app = web_app(fast_emulator, with_release_build=True)
    with pytest.raises(
        OdcError, match="stage 'Staging' not found; the API client can see: Development, QA, Production"
    ):
        run_operator(OdcDeployOperator(task_id="deploy", asset=app["name"], stage="Staging", **FAST))


def test_sensor_poke_and_deferrable(fast_emulator: Any) -> None:
    app = web_app(fast_emulator, with_release_build=False)
    build_key, _ = run_operator(OdcBuildOperator(task_id="build", asset=app["name"], wait_for_completion=False))
    sensor = OdcOperationSensor(task_id="wait", kind="build", operation_key=build_key)
    assert sensor.poke({}) is False
    deferred = OdcOperationSensor(task_id="wait", kind="build", operation_key=build_key, deferrable=True, **FAST)
    assert run_operator(deferred)[0] == build_key
    assert sensor.poke({}) is True

    fast_emulator.fail_next("build", messages=["Out of memory"])
    failing, _ = run_operator(OdcBuildOperator(task_id="b2", asset=app["name"], reuse_existing_build=False,
                                               wait_for_completion=False))  # fmt: skip
    time.sleep(0.5)
    with pytest.raises(OdcOperationFailed, match="Out of memory"):
        OdcOperationSensor(task_id="wait", kind="build", operation_key=failing).poke({})


def test_poke_mode_reuses_one_http_connection(fast_emulator: Any) -> None:
    """Pokes of one try share a hook: no connection lookup and TLS handshake every poke_interval."""
    fast_emulator.configure(build_durations={"pending": 60, "running": 60})
    app = web_app(fast_emulator, with_release_build=False)
    build_key, _ = run_operator(OdcBuildOperator(task_id="build", asset=app["name"], wait_for_completion=False))
    before = fast_emulator.stats()["connections"]
    sensor = OdcOperationSensor(task_id="wait", kind="build", operation_key=build_key)
    assert [sensor.poke({}) for _ in range(3)] == [False, False, False]
    assert fast_emulator.stats()["connections"] == before + 1
