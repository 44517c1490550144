"""Build operations: start, the Pending -> Running -> Finished state machine on the emulator clock, failures
with log messages, the (unpaginated) list with its filters, and request validation."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

from airflow_provider_odc.emulator.server import OdcEmulator

BUILDS = "/api/builds/v1/build-operations"
BUILD = "/api/builds/v1/build-operations/{operationKey}"
LOG = "/api/builds/v1/build-operations/{operationKey}/log-messages"
TIMEOUT = 10


def start(client: Any, body: Any, **kwargs: Any) -> Any:
    return client.post(BUILDS, body, **kwargs)


def details(client: Any, key: str) -> dict[str, Any]:
    response = client.get(f"{BUILDS}/{key}", route=BUILD)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def log(client: Any, key: str) -> list[dict[str, Any]]:
    response = client.get(f"{BUILDS}/{key}/log-messages", route=LOG)
    assert response.status_code == 200 and set(response.json()) == {"results"}
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def an_app(kit: Any) -> dict[str, Any]:
    return kit.apps(2)[0]  # a deployable asset without any seeded build


def test_build_goes_pending_running_finished_on_the_emulator_clock(
    client: Any, kit: Any, odc_emulator: OdcEmulator
) -> None:
    odc_emulator.configure(build_durations={"pending": 10, "running": 30})  # long, so no real time interferes
    app = an_app(kit)
    response = start(client, {"assetKey": app["assetKey"], "assetRevision": 3, "buildType": "Release"})
    assert response.status_code == 201
    started = response.json()
    assert set(started) == {"buildKey", "isSuccessful"} and started["isSuccessful"] is True
    key = started["buildKey"]
    uuid.UUID(key)

    pending = details(client, key)
    assert pending["status"] == "Pending"
    assert (pending["startedDateTime"], pending["finishedDateTime"], pending["securityAudit"]) == (None, None, None)
    assert (pending["assetKey"], pending["assetRevision"], pending["buildType"]) == (app["assetKey"], 3, "Release")
    assert pending["builtBy"] == odc_emulator.state.client_subject
    assert [m["stepId"] for m in log(client, key)] == ["Queue"]

    odc_emulator.advance(10)
    running = details(client, key)
    assert running["status"] == "Running" and running["startedDateTime"] and running["finishedDateTime"] is None
    odc_emulator.advance(15)
    assert details(client, key)["status"] == "Running"
    assert [m["stepId"] for m in log(client, key)] == ["Queue", "Start", "Compile"]

    odc_emulator.advance(15)
    finished = details(client, key)
    assert finished["status"] == "Finished" and finished["finishedDateTime"] > finished["startedDateTime"]
    assert finished["securityAudit"] == {"vulnerabilities": []}
    lines = log(client, key)
    assert [m["severity"] for m in lines] == ["Info"] * 4
    assert lines[-1]["message"] == "Build finished successfully." and {m["assetKey"] for m in lines} == {
        app["assetKey"]
    }
    assert [m["timestamp"] for m in lines] == sorted(m["timestamp"] for m in lines)
    assert odc_emulator.stats()["operations_started"]["build"] == 1


def test_default_durations_and_zero_durations(client: Any, kit: Any, odc_emulator: OdcEmulator) -> None:
    assert odc_emulator.config()["build_durations"] == {"pending": 0.5, "running": 1.5}
    app = an_app(kit)
    key = start(client, {"assetKey": app["assetKey"], "assetRevision": 1}).json()["buildKey"]
    assert details(client, key)["status"] in ("Pending", "Running")
    odc_emulator.advance(2)
    assert details(client, key)["status"] == "Finished"

    odc_emulator.configure(build_durations={"pending": 0, "running": 0})
    instant = start(client, {"assetKey": app["assetKey"], "assetRevision": 1}).json()["buildKey"]
    assert details(client, instant)["status"] == "Finished"
    assert details(client, instant)["buildType"] == "Debug"  # the spec's default build type


def test_injected_build_failure_has_error_log_lines(client: Any, kit: Any, odc_emulator: OdcEmulator) -> None:
    app = an_app(kit)
    odc_emulator.fail_next("build", count=1, messages=["Compilation error in MainFlow.", "Missing dependency."])
    failing = start(client, {"assetKey": app["assetKey"], "assetRevision": 2, "buildType": "Release"})
    assert failing.status_code == 201 and failing.json()["isSuccessful"] is True  # the start itself succeeds
    healthy = start(client, {"assetKey": app["assetKey"], "assetRevision": 2, "buildType": "Release"})
    odc_emulator.advance(2)
    assert details(client, failing.json()["buildKey"])["status"] == "FinishedWithErrors"
    assert details(client, healthy.json()["buildKey"])["status"] == "Finished"  # count=1 was used up
    errors = [m for m in log(client, failing.json()["buildKey"]) if m["severity"] == "Error"]
    assert [m["message"] for m in errors] == [
        "Compilation error in MainFlow.",
        "Missing dependency.",
        "Build finished with errors.",
    ]
    assert all(m["errorCode"] for m in errors)
    assert [m["severity"] for m in log(client, healthy.json()["buildKey"])] == ["Info"] * 4
    assert odc_emulator.pending_failures() == []


def test_failure_injection_over_http_uses_default_messages(client: Any, kit: Any, odc_emulator: OdcEmulator) -> None:
    added = requests.post(f"{odc_emulator.control_url}/fail-next", json={"kind": "build", "count": 2}, timeout=TIMEOUT)
    assert added.status_code == 200 and added.json()["pending"][0]["remaining"] == 2
    app = an_app(kit)
    keys = [start(client, {"assetKey": app["assetKey"], "assetRevision": 1}).json()["buildKey"] for _ in range(3)]
    odc_emulator.advance(2)
    assert [details(client, key)["status"] for key in keys] == ["FinishedWithErrors"] * 2 + ["Finished"]
    assert "fail_next" in next(m for m in log(client, keys[0]) if m["severity"] == "Error")["message"]


def test_list_builds_with_filters(client: Any, kit: Any, odc_emulator: OdcEmulator) -> None:
    seeded = kit.apps(0)[0]
    latest = seeded["latestRevision"]
    body = client.get(BUILDS, {"assetKey": seeded["assetKey"]}).json()
    assert set(body) == {"builds"}  # not paginated
    assert {b["buildKey"] for b in body["builds"]} == {b["buildKey"] for b in seeded["builds"]}
    releases = client.get(
        BUILDS, {"assetKey": seeded["assetKey"], "assetRevision": latest, "byBuildType": "Release"}
    ).json()["builds"]
    assert [b["buildKey"] for b in releases] == [kit.release_build(seeded, latest)]
    assert releases[0]["status"] == "Finished"
    debug_only = kit.apps(1)[0]
    assert (
        client.get(
            BUILDS,
            {
                "assetKey": debug_only["assetKey"],
                "assetRevision": debug_only["latestRevision"],
                "byBuildType": "Release",
            },
        ).json()["builds"]
        == []
    )
    new = kit.build(seeded["assetKey"], latest, "Release", finish=False)
    newest_first = client.get(BUILDS, {"assetKey": seeded["assetKey"], "assetRevision": latest}).json()["builds"]
    assert newest_first[0]["buildKey"] == new and len(newest_first) == 3
    everything = client.get(BUILDS).json()["builds"]
    assert len(everything) == sum(len(a["builds"]) for a in kit.inventory()["assets"])


def test_list_builds_errors(client: Any, kit: Any) -> None:
    app = kit.apps(0)[0]
    kit.problem(client.get(BUILDS, {"assetKey": str(uuid.uuid4())}), 404)
    kit.problem(client.get(BUILDS, {"assetKey": "not-a-guid"}), 404)
    kit.problem(client.get(BUILDS, {"assetKey": app["assetKey"], "assetRevision": app["latestRevision"] + 1}), 404)
    problem = kit.problem(client.get(BUILDS, {"byBuildType": "Nightly"}, check=False), 400)
    assert "byBuildType" in problem["errors"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"assetRevision": 1, "buildType": "Release"}, "assetKey"),
        ({"assetKey": "{asset}", "buildType": "Release"}, "assetRevision"),
        ({"assetKey": "{asset}", "assetRevision": 1, "buildType": "Nightly"}, "buildType"),
        ({"assetKey": "{asset}", "assetRevision": 1, "buildType": "release"}, "buildType"),
        ({"assetKey": "{asset}", "assetRevision": "1"}, "assetRevision"),
        ({"assetKey": "{asset}", "assetRevision": 1.5}, "assetRevision"),
        ({"assetKey": "asset-1", "assetRevision": 1}, "assetKey"),
        ({"assetKey": "{asset}", "assetRevision": 1, "environmentKey": "{asset}"}, "environmentKey"),
        ({"assetKey": "{asset}", "assetRevision": None}, "assetRevision"),
    ],
)
def test_start_build_validation(client: Any, kit: Any, odc_emulator: OdcEmulator, body: Any, field: str) -> None:
    asset = an_app(kit)["assetKey"]
    filled = {name: (asset if value == "{asset}" else value) for name, value in body.items()}
    problem = kit.problem(start(client, filled), 400, "OS-BLD-40001")
    assert field in problem["errors"]
    assert odc_emulator.stats()["operations_started"]["build"] == 0


def test_start_build_not_found_and_body_errors(client: Any, kit: Any, odc_emulator: OdcEmulator) -> None:
    app = an_app(kit)
    kit.problem(start(client, {"assetKey": str(uuid.uuid4()), "assetRevision": 1}), 404, "OS-BLD-40401")
    too_new = {"assetKey": app["assetKey"], "assetRevision": app["latestRevision"] + 1}
    kit.problem(start(client, too_new), 404, "OS-BLD-40401")
    kit.problem(start(client, {"assetKey": app["assetKey"], "assetRevision": 0}), 404)
    url, token = f"{odc_emulator.base_url}{BUILDS}", client.token()
    kit.problem(requests.post(url, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT), 400)
    bad_json = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    kit.problem(requests.post(url, data="{", headers=bad_json, timeout=TIMEOUT), 400)
    assert (
        requests.post(url, json={"assetKey": app["assetKey"], "assetRevision": 1}, timeout=TIMEOUT).status_code == 401
    )
    assert odc_emulator.stats()["operations_started"]["build"] == 0


def test_unknown_build_keys_are_404(client: Any, kit: Any) -> None:
    for key in (str(uuid.uuid4()), "nope"):
        kit.problem(client.get(f"{BUILDS}/{key}", route=BUILD), 404, "OS-BLD-40402")
        kit.problem(client.get(f"{BUILDS}/{key}/log-messages", route=LOG), 404)
    seeded = kit.apps(0)[0]["builds"][0]["buildKey"]
    assert details(client, seeded.upper())["buildKey"] == seeded
