"""Every operation kind the sensor accepts, started over HTTP against the emulator and waited for twice:
poked in the worker (the emulator clock is advanced between pokes) and deferred (the trigger's async
generator runs against the emulator, its event goes to ``execute_complete``, as Airflow does).

Each kind succeeds, and fails with what ODC says about it in the error: the messages endpoint (builds,
deployments, publishes, external libraries with ``type`` instead of ``severity``, native builds scoped by
stage and app), or the status body (generated code ``errors[]``, an analysis' ``error`` or its report's
Error findings, bulk users' failed records).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from airflow_provider_odc.exceptions import OdcOperationFailed
from airflow_provider_odc.hooks.odc import OdcHook
from airflow_provider_odc.operations import OPERATION_KINDS
from airflow_provider_odc.sensors.odc import OdcOperationSensor
from airflow_provider_odc.triggers.odc import OdcOperationTrigger

from .conftest import first_event, run_operator, web_app

FAST = {"fast_interval": 0.05, "fast_period": 5, "slow_interval": 0.05}
LONG = 60.0  # seconds on the emulator clock for the poke runs


def first(emulator: Any, asset_type: str) -> dict[str, Any]:
    return next(a for a in emulator.inventory()["assets"] if a["assetType"] == asset_type)


def post(path: str, body: Any = None) -> Any:
    return OdcHook().request_json("POST", path, json=body)


Started = tuple[str, "dict[str, str] | None"]


def start_build(emulator: Any) -> Started:
    app = web_app(emulator, with_release_build=False)
    body = {"assetKey": app["assetKey"], "assetRevision": app["latestRevision"], "buildType": "Release"}
    return post("/api/builds/v1/build-operations", body)["buildKey"], None


def start_deployment(emulator: Any) -> Started:
    app = web_app(emulator, with_release_build=True)
    build = next(b for b in app["builds"] if b["revision"] == app["latestRevision"] and b["buildType"] == "Release")
    body = {
        "operation": "Deploy",
        "assetKey": app["assetKey"],
        "buildKey": build["buildKey"],
        "revision": app["latestRevision"],
        "environmentKey": emulator.inventory()["environments"]["QA"],
    }
    return post("/api/deployments/v1/deployment-operations", body)["key"], None


def start_publish(emulator: Any) -> Started:
    app = web_app(emulator, with_release_build=True)
    body = {"operation": "Publish", "assetKey": app["assetKey"], "revision": app["latestRevision"]}
    return post("/api/deployments/v1/publish-operations", body)["key"], None


def start_generated_code(emulator: Any) -> Started:
    build = next(b for b in web_app(emulator, with_release_build=True)["builds"] if b["status"] == "Finished")
    assert post(f"/api/builds/v1/build-operations/{build['buildKey']}/generated-code") == {"isSuccessful": True}
    return build["buildKey"], None


def start_deployment_analysis(emulator: Any) -> Started:
    app = first(emulator, "WebApplication")
    body = {"assetKey": app["assetKey"], "revision": 1, "environmentKey": emulator.inventory()["environments"]["QA"]}
    return post("/api/dependency-management/v1/deployment-analyses", body)["analysisKey"], None


def start_deletion_analysis(emulator: Any) -> Started:
    body = {"assetKey": first(emulator, "LowCodeLibrary")["assetKey"]}
    return post("/api/dependency-management/v1/deletion-analyses", body)["analysisKey"], None


def start_code_analysis(emulator: Any) -> Started:
    body = {"assetKey": first(emulator, "WebApplication")["assetKey"], "assetRevision": 1}
    return post("/api/code-quality/v1/code-analyses", body)["analysisKey"], None


def start_external_library(emulator: Any) -> Started:
    body = {"fileName": "PdfTools.zip", "highCodeBinaryUri": "https://uploads.example.test/pdf-tools"}
    return post("/api/external-libraries/v1/generation-operations", body)["operationKey"], None


def start_native_build(emulator: Any) -> Started:
    app = first(emulator, "MobileApplication")
    scope = {"environmentKey": emulator.inventory()["environments"]["QA"], "applicationKey": app["assetKey"]}
    body = {"buildKey": "4bb2c7cf-3c5c-4e4f-9a43-0f6c1f0d8a11", "revision": 1, "mobilePlatform": "iOS", **scope}
    return post("/api/native-mobile-builds/v1/build-operations", body)["key"], scope


def start_bulk_users(emulator: Any) -> Started:
    records = [{"email": "ana@example.test", "name": "Ana"}, {"email": "bo@example.test", "name": "Bo"}]
    return post("/api/identity/v1/users/bulk", {"records": records})["key"], None


@dataclass(frozen=True)
class Case:
    kind: str
    start: Callable[[Any], Started]
    fail_with: str  # the emulator's fail_next kind
    failure: str  # the status (and result) in the error
    says: str | None  # what ODC says, which must be in the error (None: the spec gives no field for it)


MESSAGE = "Reason 7731 given by ODC"
CASES = [
    Case("build", start_build, "build", "FinishedWithErrors", MESSAGE),
    Case("deployment", start_deployment, "deploy", "FinishedWithError", MESSAGE),
    Case("publish", start_publish, "publish", "FinishedWithError", MESSAGE),
    Case("generated_code", start_generated_code, "generated_code", "Failed", MESSAGE),
    Case("deployment_analysis", start_deployment_analysis, "deployment_analysis", "Failed", MESSAGE),
    Case(
        "deployment_analysis",
        start_deployment_analysis,
        "deployment_analysis_errors",
        "Finished and result ErrorsFound",
        MESSAGE,
    ),
    Case("deletion_analysis", start_deletion_analysis, "deletion_analysis", "Failed", MESSAGE),
    Case(
        "deletion_analysis",
        start_deletion_analysis,
        "deletion_analysis_errors",
        "Finished and result ErrorsFound",
        MESSAGE,
    ),
    Case("code_analysis", start_code_analysis, "code_analysis", "Failed", None),
    Case("external_library", start_external_library, "external_library", "GenerationError", MESSAGE),
    Case("external_library_generated", start_external_library, "external_library", "GenerationError", MESSAGE),
    Case("native_build", start_native_build, "native_build", "Error", MESSAGE),
    Case("bulk_users", start_bulk_users, "bulk_users", "FinishedWithErrors", MESSAGE),
]
SUCCESS_CASES_BY_KIND = {case.kind: case for case in CASES}
SUCCESS_CASES = list(SUCCESS_CASES_BY_KIND.values())


def test_the_cases_cover_every_kind_the_sensor_accepts() -> None:
    assert {case.kind for case in CASES} == set(OPERATION_KINDS)


def slow(emulator: Any) -> None:
    emulator.configure(build_durations={"pending": LONG / 2, "running": LONG / 2}, operation_duration=LONG)


def sensor(kind: str, key: str, poll_params: dict[str, str] | None, **extra: Any) -> OdcOperationSensor:
    return OdcOperationSensor(task_id="wait", kind=kind, operation_key=key, poll_params=poll_params, **extra)


@pytest.mark.parametrize("case", SUCCESS_CASES, ids=lambda case: case.kind)
def test_poke_until_success(case: Case, fast_emulator: Any) -> None:
    slow(fast_emulator)
    key, params = case.start(fast_emulator)
    waiting = sensor(case.kind, key, params)
    assert waiting.poke({}) is False
    fast_emulator.advance(LONG + 1)
    assert waiting.poke({}) is True


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.fail_with)
def test_poke_until_failure_shows_what_odc_says(case: Case, fast_emulator: Any) -> None:
    slow(fast_emulator)
    fast_emulator.fail_next(case.fail_with, messages=[MESSAGE])
    key, params = case.start(fast_emulator)
    waiting = sensor(case.kind, key, params)
    assert waiting.poke({}) is False
    fast_emulator.advance(LONG + 1)
    with pytest.raises(OdcOperationFailed) as caught:
        waiting.poke({})
    message = str(caught.value)
    assert f"ODC {case.kind} {key} ended with status {case.failure}." in message
    if case.says is None:
        assert "ODC reported no error messages." in message
    else:
        assert case.says in message and "could not be read" not in message, message
        assert caught.value.messages and case.says in caught.value.messages[0]


@pytest.mark.parametrize("case", SUCCESS_CASES, ids=lambda case: case.kind)
def test_deferred_until_success(case: Case, fast_emulator: Any) -> None:
    key, params = case.start(fast_emulator)
    assert run_operator(sensor(case.kind, key, params, deferrable=True, **FAST))[0] == key


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.fail_with)
def test_deferred_until_failure_shows_what_odc_says(case: Case, fast_emulator: Any) -> None:
    fast_emulator.fail_next(case.fail_with, messages=[MESSAGE])
    key, params = case.start(fast_emulator)
    with pytest.raises(OdcOperationFailed) as caught:
        run_operator(sensor(case.kind, key, params, deferrable=True, **FAST))
    assert f"ended with status {case.failure}." in str(caught.value)
    if case.says is not None:
        assert case.says in str(caught.value)


@pytest.mark.parametrize("analysis", ["deployment_analysis", "deletion_analysis"])
def test_an_analysis_with_only_warnings_succeeds(analysis: str, fast_emulator: Any) -> None:
    fast_emulator.fail_next(f"{analysis}_warnings", messages=[MESSAGE])
    case = SUCCESS_CASES_BY_KIND[analysis]
    key, params = case.start(fast_emulator)
    assert run_operator(sensor(analysis, key, params, deferrable=True, **FAST))[0] == key


def test_a_native_build_sensor_without_its_scope_is_refused_at_parse_time() -> None:
    with pytest.raises(ValueError, match="environmentKey and applicationKey"):
        OdcOperationSensor(task_id="wait", kind="native_build", operation_key="k")
    with pytest.raises(ValueError, match="applicationKey"):
        OdcOperationSensor(task_id="wait", kind="native_build", operation_key="k", poll_params={"environmentKey": "e"})


@pytest.mark.parametrize(
    ("failure", "outcome"),
    [("deployment_analysis_errors", "failed"), ("deployment_analysis_warnings", "success"), (None, "success")],
)
def test_the_trigger_judges_an_analysis_by_its_report(failure: str | None, outcome: str, fast_emulator: Any) -> None:
    """The event says ``failed`` for a ``Finished`` analysis whose report found errors (the status alone
    would say success); like every event, it carries the statuses, not the findings."""
    if failure:
        fast_emulator.fail_next(failure, messages=[MESSAGE])
    key, _ = start_deployment_analysis(fast_emulator)
    trigger = OdcOperationTrigger(
        odc_conn_id="odc_default",
        kind="deployment_analysis",
        operation_key=key,
        end_time=time.time() + 30,
        fast_interval=0.05,
        slow_interval=0.05,
    )
    payload = asyncio.run(first_event(trigger)).payload
    assert payload == {
        "status": outcome,
        "kind": "deployment_analysis",
        "operation_key": key,
        "operation_status": "Finished",
    }
    assert MESSAGE not in json.dumps(payload)


def test_bulk_users_failure_names_each_record_and_the_overall_error(fast_emulator: Any) -> None:
    slow(fast_emulator)
    fast_emulator.fail_next("bulk_users", messages=["Email already in use.", "Username taken.", "Timed out."])
    key, _ = start_bulk_users(fast_emulator)
    fast_emulator.advance(LONG + 1)
    with pytest.raises(OdcOperationFailed) as caught:
        sensor("bulk_users", key, None).poke({})
    assert caught.value.messages == [
        "Timed out. [OS-IDENTITY-50001]",
        "ana@example.test: Email already in use. [OS-IDENTITY-40010]",
        "bo@example.test: Username taken. [OS-IDENTITY-40010]",
    ]
