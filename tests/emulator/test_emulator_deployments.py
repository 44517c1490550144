"""Deployment operations (Deploy, ApplyConfigs, Undeploy), publish operations, their string-offset messages and
the portfolio's deployed assets. Time moves with ``advance()``: no test sleeps."""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

import pytest

from airflow_provider_odc.emulator.server import OdcEmulator

DEPLOYMENTS = "/api/deployments/v1/deployment-operations"
DEPLOYMENT = "/api/deployments/v1/deployment-operations/{operationKey}"
MESSAGES = "/api/deployments/v1/deployment-operations/{operationKey}/messages"
PUBLISHES = "/api/deployments/v1/publish-operations"
PUBLISH = "/api/deployments/v1/publish-operations/{operationKey}"
PUBLISH_MESSAGES = "/api/deployments/v1/publish-operations/{operationKey}/messages"
DEPLOYED_ASSETS = "/api/portfolios/v2/deployed-assets"
BUILD_SECONDS = 2.0
OPERATION_SECONDS = 2.0


def deploy_body(asset: dict[str, Any], build_key: str, revision: int, stage: str) -> dict[str, Any]:
    return {
        "operation": "Deploy",
        "assetKey": asset["assetKey"],
        "buildKey": build_key,
        "revision": revision,
        "environmentKey": stage,
    }


def reusable(kit: Any) -> tuple[dict[str, Any], str, int]:
    """Claims Intake 001: a seeded, finished Release build of its latest revision (48)."""
    app = kit.apps(0)[0]
    assert app["name"] == "Claims Intake 001" and app["latestRevision"] == 48
    return app, kit.release_build(app, 48), 48


# Deploy ----------------------------------------------------------------------------------------------


def test_deploy_reusing_an_existing_release_build(client: Any, kit: Any, odc_emulator: OdcEmulator) -> None:
    app, build, revision = reusable(kit)
    qa = kit.stage("QA")
    assert kit.deployed(app["assetKey"])[qa] == 47  # seeded: the previous revision is in QA
    response = kit.deploy(deploy_body(app, build, revision, qa))
    assert response.status_code == 201
    started = response.json()
    assert started["status"] == "Running" and "finishedDateTime" not in started
    assert (started["operation"], started["assetKey"], started["buildKey"], started["revisions"]) == (
        "Deploy",
        app["assetKey"],
        build,
        [48],
    )
    assert started["assetName"] == "Claims Intake 001" and started["deployedBy"] == odc_emulator.state.client_subject
    assert started["portfolioKey"] == kit.inventory()["portfolioKey"]
    assert kit.operation(started["key"])["status"] == "Running"
    assert kit.deployed(app["assetKey"])[qa] == 47  # nothing changes while running

    odc_emulator.advance(OPERATION_SECONDS)
    finished = kit.operation(started["key"])
    assert finished["status"] == "Finished" and finished["finishedDateTime"] > finished["startedDateTime"]
    assert kit.deployed(app["assetKey"])[qa] == 48
    assert kit.inventory()["assets"][0]["deployed"]["QA"] == {"revision": 48, "buildKey": build}
    assert odc_emulator.stats()["operations_started"] == {
        "build": 0,
        "deploy": 1,
        "apply_configs": 0,
        "undeploy": 0,
        "publish": 0,
    }


def test_build_then_deploy_when_there_is_no_release_build(client: Any, kit: Any, odc_emulator: OdcEmulator) -> None:
    app = kit.apps(1)[0]  # Loan Origination 002: only a Debug build of its latest revision
    latest, dev = app["latestRevision"], kit.stage("Development")
    debug = next(b["buildKey"] for b in app["builds"] if b["revision"] == latest)
    problem = kit.problem(kit.deploy(deploy_body(app, debug, latest, dev)), 400, "OS-DPL-40002")
    assert "Release" in problem["detail"]

    build = kit.build(app["assetKey"], latest, "Release", finish=False)
    problem = kit.problem(kit.deploy(deploy_body(app, build, latest, dev)), 400, "OS-DPL-40003")
    assert "Pending" in problem["detail"]
    odc_emulator.advance(BUILD_SECONDS)
    response = kit.deploy(deploy_body(app, build, latest, dev))
    assert response.status_code == 201
    odc_emulator.advance(OPERATION_SECONDS)
    assert kit.deployed(app["assetKey"]) == {dev: latest}
    assert odc_emulator.stats()["operations_started"]["deploy"] == 1  # rejected POSTs start nothing


def test_a_failed_build_cannot_be_deployed(client: Any, kit: Any, odc_emulator: OdcEmulator) -> None:
    app = kit.apps(2)[0]
    odc_emulator.fail_next("build")
    build = kit.build(app["assetKey"], 5)
    problem = kit.problem(kit.deploy(deploy_body(app, build, 5, kit.stage("QA"))), 400, "OS-DPL-40003")
    assert "FinishedWithErrors" in problem["detail"]


def test_deploy_rejects_builds_of_another_asset_or_revision(client: Any, kit: Any) -> None:
    app, build, _ = reusable(kit)
    other = kit.apps(0)[1]
    qa = kit.stage("QA")
    problem = kit.problem(kit.deploy(deploy_body(other, build, other["latestRevision"], qa)), 400, "OS-DPL-40002")
    assert "not a build of" in problem["detail"]
    previous = kit.release_build(app, 47)
    problem = kit.problem(kit.deploy(deploy_body(app, previous, 48, qa)), 400, "OS-DPL-40002")
    assert "revision 47" in problem["detail"]
    kit.problem(kit.deploy(deploy_body(app, str(uuid.uuid4()), 48, qa)), 400, "OS-DPL-40002")


def test_libraries_are_not_deployed(client: Any, kit: Any) -> None:
    library = kit.asset("Customer 360 003")
    build = kit.build(library["assetKey"], 46)  # libraries can be built...
    problem = kit.problem(kit.deploy(deploy_body(library, build, 46, kit.stage("QA"))), 400, "OS-DPL-40004")
    assert "LowCodeLibrary" in problem["detail"]


def test_not_found_errors(client: Any, kit: Any) -> None:
    app, build, revision = reusable(kit)
    kit.problem(kit.deploy(deploy_body(app, build, revision, str(uuid.uuid4()))), 404, "OS-DPL-40403")
    missing = {**app, "assetKey": str(uuid.uuid4())}
    kit.problem(kit.deploy(deploy_body(missing, build, revision, kit.stage("QA"))), 404, "OS-DPL-40401")
    kit.problem(kit.deploy(deploy_body(app, build, 49, kit.stage("QA"))), 404, "OS-DPL-40402")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"operation": None}, "operation"),
        ({"operation": "Rollback"}, "operation"),
        ({"operation": "deploy"}, "operation"),
        ({"environmentKey": None}, "environmentKey"),
        ({"environmentKey": "qa"}, "environmentKey"),
        ({"assetKey": 7}, "assetKey"),
        ({"buildKey": None}, "buildKey"),
        ({"revision": None}, "revision"),
        ({"revision": "48"}, "revision"),
        ({"revision": 2**31}, "revision"),
        ({"comment": "go"}, "comment"),
    ],
)
def test_deploy_body_validation(
    client: Any, kit: Any, odc_emulator: OdcEmulator, change: dict[str, Any], field: str
) -> None:
    app, build, revision = reusable(kit)
    body = {**deploy_body(app, build, revision, kit.stage("QA")), **change}
    if change.get(field, "x") is None and field in ("operation", "environmentKey"):
        del body[field]  # absent rather than null
    problem = kit.problem(kit.deploy(body), 400, "OS-DPL-40001")
    assert field in problem["errors"] and problem["title"] == "One or more validation errors occurred."
    assert odc_emulator.stats()["operations_started"]["deploy"] == 0


def test_injected_deploy_failure_reports_error_messages(client: Any, kit: Any, odc_emulator: OdcEmulator) -> None:
    app, build, revision = reusable(kit)
    qa = kit.stage("QA")
    odc_emulator.fail_next("deploy", messages=["Database upgrade failed.", "Rolled back to revision 47."])
    key = kit.deploy(deploy_body(app, build, revision, qa)).json()["key"]
    assert kit.operation(key)["status"] == "Running"
    assert all(m["severity"] != "Error" for m in kit.messages(key))  # errors only appear at the end
    odc_emulator.advance(OPERATION_SECONDS)
    assert kit.operation(key)["status"] == "FinishedWithError"
    errors = [m for m in kit.messages(key) if m["severity"] == "Error"]
    assert [m["message"] for m in errors] == [
        "Database upgrade failed.",
        "Rolled back to revision 47.",
        "Deploy finished with errors.",
    ]
    assert all(m["type"] and m["additionalInfo"]["assetKey"] == app["assetKey"] for m in errors)
    assert kit.deployed(app["assetKey"])[qa] == 47  # a failed deploy changes nothing
    again = kit.deploy(deploy_body(app, build, revision, qa)).json()["key"]
    odc_emulator.advance(OPERATION_SECONDS)
    assert kit.operation(again)["status"] == "Finished"


def test_messages_have_info_warning_and_appear_as_time_passes(client: Any, kit: Any, odc_emulator: OdcEmulator) -> None:
    odc_emulator.configure(operation_duration=40)
    app, build, revision = reusable(kit)
    key = kit.deploy(deploy_body(app, build, revision, kit.stage("Production"))).json()["key"]
    first = kit.messages(key)
    assert [m["severity"] for m in first] == ["Info", "Warning"]  # revision 48 has no version tag
    assert "no version tag" in first[1]["message"]
    odc_emulator.advance(21)
    assert len(kit.messages(key)) == 4
    odc_emulator.advance(20)
    final = kit.messages(key)
    assert [m["severity"] for m in final] == ["Info", "Warning", "Info", "Info", "Info", "Info"]
    assert final[-1]["message"] == "Deployment finished successfully."
    assert final[:4] == kit.messages(key)[:4]  # stable as more arrive
    assert [m["timestamp"] for m in final] == sorted(m["timestamp"] for m in final)


def test_messages_are_paged_with_opaque_string_offsets(client: Any, kit: Any, odc_emulator: OdcEmulator) -> None:
    app, build, revision = reusable(kit)
    key = kit.deploy(deploy_body(app, build, revision, kit.stage("QA"))).json()["key"]
    odc_emulator.advance(OPERATION_SECONDS)
    everything = kit.messages(key)
    assert len(everything) == 6
    pages, offset = [], None
    while True:
        params: dict[str, Any] = {"limit": 4} if offset is None else {"limit": 4, "offset": offset}
        body = client.get(f"{DEPLOYMENTS}/{key}/messages", params, route=MESSAGES).json()
        pages.append(body)
        offset = body["page"]["nextPageOffset"]
        if offset is None:
            break
        assert isinstance(offset, str) and not offset.isdigit()
    assert [p["page"]["count"] for p in pages] == [4, 2]
    assert pages[0]["page"]["offset"] is None and pages[1]["page"]["offset"] == pages[0]["page"]["nextPageOffset"]
    assert [m for p in pages for m in p["results"]] == everything
    default = client.get(f"{DEPLOYMENTS}/{key}/messages", route=MESSAGES).json()["page"]
    assert (default["count"], default["nextPageOffset"]) == (6, None)

    not_an_index = base64.urlsafe_b64encode(f"{key}:four".encode()).decode()
    for bad in ("3", "not-a-token", not_an_index):
        problem = kit.problem(client.get(f"{DEPLOYMENTS}/{key}/messages", {"offset": bad}, route=MESSAGES), 400)
        assert "offset" in problem["detail"]
    other = kit.deploy(deploy_body(app, build, revision, kit.stage("Production"))).json()["key"]
    foreign = pages[0]["page"]["nextPageOffset"]  # a token of another operation is refused
    kit.problem(client.get(f"{DEPLOYMENTS}/{other}/messages", {"offset": foreign}, route=MESSAGES), 400)
    kit.problem(client.get(f"{DEPLOYMENTS}/{key}/messages", {"limit": 0}, route=MESSAGES), 400)
    kit.problem(client.get(f"{DEPLOYMENTS}/{uuid.uuid4()}/messages", route=MESSAGES), 404)


# ApplyConfigs and Undeploy ---------------------------------------------------------------------------


def test_apply_configs_accepts_a_missing_revision(client: Any, kit: Any, odc_emulator: OdcEmulator) -> None:
    app = kit.apps(1)[0]  # revision 13 deployed to Development
    dev = kit.stage("Development")
    body = {"operation": "ApplyConfigs", "assetKey": app["assetKey"], "environmentKey": dev}
    response = kit.deploy(body)
    assert response.status_code == 201
    started = response.json()
    assert (started["operation"], started["revisions"], started["status"]) == ("ApplyConfigs", [13], "Running")
    with_revision = kit.deploy({**body, "revision": 13})
    assert with_revision.status_code == 201
    kit.problem(kit.deploy({**body, "revision": 14}), 400, "OS-DPL-40007")
    kit.problem(kit.deploy({**body, "environmentKey": kit.stage("QA")}), 400, "OS-DPL-40005")
    kit.problem(kit.deploy({"operation": "ApplyConfigs", "environmentKey": dev}), 400, "OS-DPL-40001")
    odc_emulator.fail_next("apply_configs", messages=["Setting 'ApiUrl' has no value."])
    failing = kit.deploy(body).json()["key"]
    odc_emulator.advance(OPERATION_SECONDS)
    assert kit.operation(started["key"])["status"] == "Finished"
    assert kit.operation(failing)["status"] == "FinishedWithError"
    assert "Setting 'ApiUrl' has no value." in [m["message"] for m in kit.messages(failing)]
    assert kit.deployed(app["assetKey"]) == {dev: 13}  # ApplyConfigs does not change the revision
    assert odc_emulator.stats()["operations_started"]["apply_configs"] == 3


def test_undeploy_removes_the_deployment(client: Any, kit: Any, odc_emulator: OdcEmulator) -> None:
    app = kit.apps(1)[0]
    dev = kit.stage("Development")
    body = {"operation": "Undeploy", "assetKey": app["assetKey"], "environmentKey": dev}
    odc_emulator.fail_next("undeploy")
    failed = kit.deploy(body).json()["key"]
    odc_emulator.advance(OPERATION_SECONDS)
    assert kit.operation(failed)["status"] == "FinishedWithError"
    assert kit.deployed(app["assetKey"]) == {dev: 13}
    started = kit.deploy(body).json()
    assert (started["operation"], started["revisions"], started["buildKey"]) == ("Undeploy", [13], None)
    odc_emulator.advance(OPERATION_SECONDS)
    assert kit.operation(started["key"])["status"] == "Finished"
    assert kit.deployed(app["assetKey"]) == {}
    assert client.get(DEPLOYED_ASSETS, {"key": app["assetKey"]}).json()["page"]["totalResults"] == 0
    kit.problem(kit.deploy(body), 400, "OS-DPL-40005")


def test_zero_duration_still_answers_running_then_finished(client: Any, kit: Any, odc_emulator: OdcEmulator) -> None:
    odc_emulator.configure(operation_duration=0)
    app, build, revision = reusable(kit)
    started = kit.deploy(deploy_body(app, build, revision, kit.stage("Production"))).json()
    assert started["status"] == "Running"
    assert kit.operation(started["key"])["status"] == "Finished"
    assert kit.deployed(app["assetKey"])[kit.stage("Production")] == 48


# Listing operations ----------------------------------------------------------------------------------


def test_list_operations_filters_and_int32_paging(client: Any, kit: Any, odc_emulator: OdcEmulator) -> None:
    app, build, revision = reusable(kit)
    qa, prod, dev = kit.stage("QA"), kit.stage("Production"), kit.stage("Development")
    deploy_qa = kit.deploy(deploy_body(app, build, revision, qa)).json()["key"]
    odc_emulator.advance(OPERATION_SECONDS)
    deploy_prod = kit.deploy(deploy_body(app, build, revision, prod)).json()["key"]
    apply_dev = kit.deploy({"operation": "ApplyConfigs", "assetKey": app["assetKey"], "environmentKey": dev})
    apply_dev_key = apply_dev.json()["key"]

    mine = client.get(DEPLOYMENTS, {"assetKey": app["assetKey"]}).json()
    assert set(mine["page"]) == {"count", "limit", "offset", "nextPageOffset"}  # Int32NullablePageInfo: no totals
    keys = [op["key"] for op in mine["results"]]
    assert keys[:3] == [apply_dev_key, deploy_prod, deploy_qa]  # default sort: -CreatedAt
    seeded = [op for op in mine["results"] if op["key"] not in (apply_dev_key, deploy_prod, deploy_qa)]
    assert len(seeded) == 3 and {op["status"] for op in seeded} == {"Finished"}
    ascending = client.get(DEPLOYMENTS, {"assetKey": app["assetKey"], "sort": "CreatedAt"}).json()["results"]
    assert [op["key"] for op in ascending] == keys[::-1]

    running = client.get(DEPLOYMENTS, {"status": "Running"}).json()["results"]
    assert {op["key"] for op in running} == {deploy_prod, apply_dev_key}
    in_qa = client.get(DEPLOYMENTS, {"environmentKey": qa, "assetKey": app["assetKey"]}).json()["results"]
    assert in_qa[0]["key"] == deploy_qa and all(op["assetKey"] == app["assetKey"] for op in in_qa)
    applies = client.get(DEPLOYMENTS, [("operations", "ApplyConfigs"), ("operations", "Undeploy")]).json()
    assert [op["key"] for op in applies["results"]] == [apply_dev_key]
    both = client.get(DEPLOYMENTS, {"operations": "Deploy,ApplyConfigs", "assetKey": app["assetKey"]}).json()
    assert len(both["results"]) == 6
    assert [op["key"] for op in client.get(DEPLOYMENTS, {"revision": 47}).json()["results"]] == [
        op["key"] for op in seeded if op["revisions"] == [47]
    ]

    total = len(client.get(DEPLOYMENTS, {"limit": 1000}).json()["results"])
    pages, offset = [], 0
    while offset is not None:
        body = client.get(DEPLOYMENTS, {"limit": 7, "offset": offset}).json()
        pages.append(body)
        offset = body["page"]["nextPageOffset"]
    assert sum(p["page"]["count"] for p in pages) == total and pages[-1]["page"]["nextPageOffset"] is None
    assert [p["page"]["offset"] for p in pages] == list(range(0, total, 7))


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"status": "Failed"}, "status"),
        ({"operations": "Deploy,Publish"}, "operations"),
        ({"environmentKey": "qa"}, "environmentKey"),
        ({"sort": "-Priority"}, "sort"),
        ({"createdDateSince": "last week"}, "createdDateSince"),
        ({"limit": 0}, "limit"),
    ],
)
def test_invalid_operation_list_queries(client: Any, kit: Any, params: dict[str, Any], parameter: str) -> None:
    problem = kit.problem(client.get(DEPLOYMENTS, params), 400)
    assert parameter in problem["errors"]


def test_created_date_filters(client: Any, kit: Any, odc_emulator: OdcEmulator) -> None:
    app, build, revision = reusable(kit)
    key = kit.deploy(deploy_body(app, build, revision, kit.stage("QA"))).json()["key"]
    started = kit.operation(key)["startedDateTime"]
    since = client.get(DEPLOYMENTS, {"createdDateSince": started}).json()["results"]
    assert [op["key"] for op in since] == [key]
    before = client.get(DEPLOYMENTS, {"createdDateTo": "2024-06-30T00:00:00Z"}).json()["results"]
    assert before and all(op["startedDateTime"] <= "2024-06-30" for op in before)


def test_the_lookup_a_retry_makes_finds_exactly_the_new_operation(
    client: Any, kit: Any, odc_emulator: OdcEmulator
) -> None:
    """What ``attach.started_operations`` asks: asset, stage, revision, type, created since, newest first."""
    app, build, revision = reusable(kit)
    qa, prod = kit.stage("QA"), kit.stage("Production")
    since = odc_emulator.state.now()
    kit.deploy(deploy_body(app, build, revision, prod))  # another stage
    kit.deploy({"operation": "ApplyConfigs", "assetKey": app["assetKey"], "environmentKey": qa})  # another type
    odc_emulator.advance(OPERATION_SECONDS)
    key = kit.deploy(deploy_body(app, build, revision, qa)).json()["key"]
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since - 1))
    query = {
        "assetKey": app["assetKey"],
        "environmentKey": qa,
        "revision": revision,
        "operations": "Deploy",
        "createdDateSince": stamp,
        "sort": "-CreatedAt",
        "limit": 50,
    }
    assert [op["key"] for op in client.get(DEPLOYMENTS, query).json()["results"]] == [key]
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(odc_emulator.state.now() + 60))
    assert client.get(DEPLOYMENTS, {**query, "createdDateSince": later}).json()["results"] == []
    assert client.get(DEPLOYMENTS, {**query, "revision": revision - 1}).json()["results"] == []


def test_publish_list_filters_by_asset_revision_stage_and_creation_time(
    client: Any, kit: Any, odc_emulator: OdcEmulator
) -> None:
    first, second = kit.apps(2)[:2]
    dev = kit.stage("Development")
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(odc_emulator.state.now() - 1))
    mine = client.post(PUBLISHES, {"operation": "Publish", "assetKey": first["assetKey"], "revision": 3}).json()
    other_revision = client.post(PUBLISHES, {"operation": "Publish", "assetKey": first["assetKey"], "revision": 2})
    other_asset = client.post(PUBLISHES, {"operation": "Publish", "assetKey": second["assetKey"], "revision": 3})
    staged = client.post(
        PUBLISHES, {"operation": "Publish", "assetKey": first["assetKey"], "revision": 3, "environmentKey": dev}
    ).json()
    assert other_revision.status_code == other_asset.status_code == 201

    def keys(**params: Any) -> list[str]:
        return [op["key"] for op in client.get(PUBLISHES, params).json()["results"]]

    assert keys(assetKey=first["assetKey"], revision=3, createdDateSince=since) == [staged["key"], mine["key"]]
    assert keys(assetKey=first["assetKey"], revision=3, environmentKey=dev) == [staged["key"]]
    assert keys(assetKey=first["assetKey"], createdDateTo="2024-01-01T00:00:00Z") == []
    assert keys(assetKey=second["assetKey"], revision=3, createdDateSince=since) == [other_asset.json()["key"]]


def test_unknown_operation_keys_are_404(client: Any, kit: Any, odc_emulator: OdcEmulator) -> None:
    kit.problem(client.get(f"{DEPLOYMENTS}/{uuid.uuid4()}", route=DEPLOYMENT), 404, "OS-DPL-40404")
    kit.problem(client.get(f"{DEPLOYMENTS}/not-a-key", route=DEPLOYMENT), 404)
    app = kit.apps(0)[0]
    publish = client.post(PUBLISHES, {"operation": "Publish", "assetKey": app["assetKey"], "revision": 48})
    kit.problem(client.get(f"{DEPLOYMENTS}/{publish.json()['key']}", route=DEPLOYMENT), 404)  # other family
    deploy_key = kit.inventory()["assets"][0]["builds"][0]["buildKey"]  # a build key is no operation key
    kit.problem(client.get(f"{PUBLISHES}/{deploy_key}", route=PUBLISH), 404, "OS-PUB-40404")


# Publish ---------------------------------------------------------------------------------------------


def test_publish_lifecycle_and_messages(client: Any, kit: Any, odc_emulator: OdcEmulator) -> None:
    app = kit.apps(2)[0]
    dev = kit.stage("Development")
    body = {"operation": "Publish", "assetKey": app["assetKey"], "revision": 3, "environmentKey": dev}
    response = client.post(PUBLISHES, body)
    assert response.status_code == 201
    started = response.json()
    assert (started["status"], started["operation"], started["revision"]) == ("Running", "Publish", 3)
    assert "revisions" not in started and "assetName" not in started
    odc_emulator.advance(1)
    messages = client.get(f"{PUBLISHES}/{started['key']}/messages", route=PUBLISH_MESSAGES).json()["results"]
    assert [m["additionalInfo"]["stepId"] for m in messages] == ["Start", "Compile"]
    odc_emulator.advance(1)
    assert client.get(f"{PUBLISHES}/{started['key']}", route=PUBLISH).json()["status"] == "Finished"
    page = client.get(f"{PUBLISHES}/{started['key']}/messages", {"limit": 3}, route=PUBLISH_MESSAGES).json()
    assert page["page"]["count"] == 3 and isinstance(page["page"]["nextPageOffset"], str)
    rest = client.get(
        f"{PUBLISHES}/{started['key']}/messages",
        {"limit": 3, "offset": page["page"]["nextPageOffset"]},
        route=PUBLISH_MESSAGES,
    ).json()
    assert [m["message"] for m in rest["results"]] == ["Publish finished successfully."]

    odc_emulator.fail_next("publish", messages=["Revision 2 has compilation errors."])
    hotfix = client.post(PUBLISHES, {"operation": "Publish", "assetKey": app["assetKey"], "revision": 2}).json()
    odc_emulator.advance(2)
    assert client.get(f"{PUBLISHES}/{hotfix['key']}", route=PUBLISH).json()["status"] == "FinishedWithError"
    errors = [
        m["message"]
        for m in client.get(f"{PUBLISHES}/{hotfix['key']}/messages", route=PUBLISH_MESSAGES).json()["results"]
        if m["severity"] == "Error"
    ]
    assert errors == ["Revision 2 has compilation errors.", "Publish finished with errors."]

    listed = client.get(PUBLISHES).json()
    assert [op["key"] for op in listed["results"]] == [hotfix["key"], started["key"]]
    assert set(listed["page"]) == {"count", "limit", "offset", "nextPageOffset"}
    assert [op["key"] for op in client.get(PUBLISHES, {"environmentKey": dev}).json()["results"]] == [started["key"]]
    assert [op["key"] for op in client.get(PUBLISHES, {"status": "FinishedWithError"}).json()["results"]] == [
        hotfix["key"]
    ]
    assert client.get(DEPLOYMENTS, {"assetKey": app["assetKey"]}).json()["results"] == []  # separate family
    assert odc_emulator.stats()["operations_started"]["publish"] == 2


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"operation": "Deploy", "assetKey": "{app}", "revision": 1}, 400, "operation"),
        ({"assetKey": "{app}", "revision": 1}, 400, "operation"),
        ({"operation": "Publish", "assetKey": "{app}"}, 400, "revision"),
        ({"operation": "Publish", "assetKey": "{app}", "revision": 1, "force": True}, 400, "force"),
        ({"operation": "Publish", "assetKey": "{app}", "revision": 1, "environmentKey": None}, 400, "environmentKey"),
        ({"operation": "Publish", "assetKey": "{app}", "revision": 99}, 404, None),
        ({"operation": "Publish", "assetKey": "{app}", "revision": 1, "environmentKey": "{random}"}, 404, None),
        ({"operation": "Publish", "assetKey": "{random}", "revision": 1}, 404, None),
    ],
)
def test_publish_validation(
    client: Any, kit: Any, odc_emulator: OdcEmulator, body: dict[str, Any], status: int, field: str | None
) -> None:
    app = kit.apps(2)[0]["assetKey"]
    filled = {k: {"{app}": app, "{random}": str(uuid.uuid4())}.get(v, v) for k, v in body.items()}  # type: ignore[call-overload]
    problem = kit.problem(client.post(PUBLISHES, filled, check=False), status)
    if field is not None:
        assert field in problem["errors"]
    assert odc_emulator.stats()["operations_started"]["publish"] == 0


# Deployed assets -------------------------------------------------------------------------------------


def test_deployed_assets_reflect_the_seed(client: Any, kit: Any) -> None:
    inventory = kit.inventory()
    body = client.get(DEPLOYED_ASSETS).json()
    expected = {a["assetKey"]: a for a in inventory["assets"] if a["deployed"]}
    assert [item["key"] for item in body["results"]] == list(expected)
    assert body["page"]["totalResults"] == len(expected) == 10
    stage_names = {key: name for name, key in inventory["environments"].items()}
    for item in body["results"]:
        asset = expected[item["key"]]
        assert item["type"] == asset["assetType"] and item["isBuiltIn"] is False
        listed = {stage_names[d["environmentKey"]]: {"revision": d["revision"], "buildKey": d["buildKey"]}
                  for d in item["deployments"]}  # fmt: skip
        assert listed == asset["deployed"]
        dates = [d["deploymentDateTime"] for d in item["deployments"]]
        assert dates == sorted(dates, reverse=True)  # always newest first
        for deployment in item["deployments"]:
            assert deployment["url"].startswith("https://emulator-") and deployment["name"]
            operation = client.get(f"{DEPLOYMENTS}/{deployment['deploymentKey']}", route=DEPLOYMENT).json()
            assert operation["operation"] == "Deploy" and operation["status"] == "Finished"
            assert operation["buildKey"] == deployment["buildKey"]


def test_deployed_assets_filters_paging_and_sort(client: Any, kit: Any) -> None:
    inventory = kit.inventory()
    qa, prod = inventory["environments"]["QA"], inventory["environments"]["Production"]
    in_qa = client.get(DEPLOYED_ASSETS, {"environmentKey": qa}).json()["results"]
    assert in_qa and all([d["environmentKey"] for d in item["deployments"]] == [qa] for item in in_qa)
    both = client.get(DEPLOYED_ASSETS, {"environmentKey": f"{qa},{prod}"}).json()["results"]
    assert {len(item["deployments"]) for item in both} == {2}
    some = [a["assetKey"] for a in inventory["assets"] if a["deployed"]][:2]
    assert [i["key"] for i in client.get(DEPLOYED_ASSETS, {"key": ",".join(some)}).json()["results"]] == some
    mobiles = client.get(DEPLOYED_ASSETS, {"type": "MobileApplication"}).json()["results"]
    assert mobiles and {item["type"] for item in mobiles} == {"MobileApplication"}
    named = client.get(DEPLOYED_ASSETS, {"nameContains": "claims INTAKE"}).json()["results"]
    assert [item["key"] for item in named] == [inventory["assets"][0]["assetKey"]]

    page = client.get(DEPLOYED_ASSETS, {"limit": 4, "offset": 4}).json()["page"]
    assert page == {"count": 4, "limit": 4, "offset": 4, "nextPageOffset": 8, "totalResults": 10, "totalPages": 3}

    sort = f"-deployments[{qa}].deploymentDateTime"
    ordered = client.get(DEPLOYED_ASSETS, {"sort": sort}).json()["results"]

    def qa_date(item: dict[str, Any]) -> str:
        return next((d["deploymentDateTime"] for d in item["deployments"] if d["environmentKey"] == qa), "")

    with_qa = [item for item in ordered if qa_date(item)]
    assert [qa_date(i) for i in with_qa] == sorted((qa_date(i) for i in with_qa), reverse=True)
    assert ordered[: len(with_qa)] == with_qa  # assets not in QA come last
    ascending = client.get(DEPLOYED_ASSETS, {"sort": sort[1:]}).json()["results"]
    assert ascending[: len(with_qa)] == with_qa[::-1]


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"environmentKey": "qa"}, "environmentKey"),
        ({"key": "x,y"}, "key"),
        ({"type": "LowCodeLibrary"}, "type"),
        ({"sort": "name"}, "sort"),
        ({"sort": "deployments[qa].deploymentDateTime"}, "sort"),
    ],
)
def test_invalid_deployed_assets_queries(client: Any, kit: Any, params: dict[str, Any], parameter: str) -> None:
    problem = kit.problem(client.get(DEPLOYED_ASSETS, params), 400)
    assert parameter in problem["errors"]
