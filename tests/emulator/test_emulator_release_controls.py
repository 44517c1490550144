"""Test controls of the release lifecycle (advance, fail_next, configure, inventory, reset), the seeded release
facts other tests rely on, and the OpenAPI contract of every new response body."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from airflow_provider_odc.emulator.seed import DEPLOYABLE_TYPES, build_release_seed, build_seed
from airflow_provider_odc.emulator.server import OdcEmulator

ASSETS = "/api/asset-repository/v1/assets"
BUILDS = "/api/builds/v1/build-operations"
DEPLOYMENTS = "/api/deployments/v1/deployment-operations"
PUBLISHES = "/api/deployments/v1/publish-operations"
DEPLOYED_ASSETS = "/api/portfolios/v2/deployed-assets"
TIMEOUT = 10


# Seed facts ------------------------------------------------------------------------------------------


def test_seeded_release_shapes(client: Any, kit: Any) -> None:
    """The rules documented in seed.py, which operator and sensor tests rely on."""
    inventory = kit.inventory()
    assert list(inventory["environments"]) == ["Development", "QA", "Production"]
    for asset in inventory["assets"]:
        if not asset["deployable"]:
            assert asset["builds"] == [] and asset["deployed"] == {}
    latest_release = {
        a["name"]
        for a in inventory["assets"]
        if any(b["buildType"] == "Release" and b["revision"] == a["latestRevision"] for b in a["builds"])
    }
    assert {a["name"] for a in kit.apps(0)} == latest_release
    assert sorted(latest_release) == [
        "Claims Intake 001",
        "Customer 360 013",
        "Patient Check-in 008",
        "Patient Check-in 023",
        "Supplier Hub 017",
    ]
    for asset in kit.apps(0):
        latest = asset["latestRevision"]
        assert asset["deployed"]["Development"]["revision"] == latest
        if latest > 1:
            assert asset["deployed"]["QA"]["revision"] == asset["deployed"]["Production"]["revision"] == latest - 1
    for asset in kit.apps(1):
        latest = asset["latestRevision"]
        assert [(b["revision"], b["buildType"]) for b in asset["builds"] if b["revision"] == latest] == [
            (latest, "Debug")
        ]
        assert set(asset["deployed"]) == {"Development"} and asset["deployed"]["Development"]["revision"] == latest - 1
    for asset in kit.apps(2):
        assert asset["builds"] == [] and asset["deployed"] == {}
    never_tagged = [a["name"] for a in inventory["assets"] if a["highestTag"] is None]
    assert "Customer 360 003" in never_tagged and len(never_tagged) >= 5
    assert {b["status"] for a in inventory["assets"] for b in a["builds"]} == {"Finished"}


def test_release_seed_is_deterministic_and_leaves_assets_alone() -> None:
    seed = build_seed(25)
    assert build_release_seed(seed) == build_release_seed(build_seed(25))
    release = build_release_seed(seed)
    assert {b.asset_key for b in release.builds} <= {
        a["assetKey"] for a in seed.assets if a["assetType"] in DEPLOYABLE_TYPES
    }
    assert seed.assets[0]["name"] == "Claims Intake 001" and seed.assets[0]["revision"] == 48


def test_inventory_over_http_matches_the_api(client: Any, odc_emulator: OdcEmulator) -> None:
    inventory = requests.get(f"{odc_emulator.control_url}/inventory", timeout=TIMEOUT).json()
    assert inventory == odc_emulator.inventory()
    stages = client.get("/api/portfolios/v2/environments").json()["results"]
    assert inventory["environments"] == {stage["name"]: stage["key"] for stage in stages}
    for asset in inventory["assets"][:10]:
        listed = client.get(BUILDS, {"assetKey": asset["assetKey"]}).json()["builds"]
        assert {b["buildKey"] for b in listed} == {b["buildKey"] for b in asset["builds"]}


# advance / fail_next / configure ---------------------------------------------------------------------


def test_advance_moves_the_emulator_clock(odc_emulator: OdcEmulator) -> None:
    before = odc_emulator.state.now()
    assert odc_emulator.advance(90) == 90
    assert odc_emulator.state.now() - before >= 90
    response = requests.post(f"{odc_emulator.control_url}/advance", json={"seconds": 10.5}, timeout=TIMEOUT)
    assert response.status_code == 200 and response.json()["clock_offset"] == 100.5
    assert odc_emulator.config()["clock_offset"] == 100.5
    for bad in ({"seconds": -1}, {"seconds": "1"}, {}, {"seconds": 1, "unit": "h"}):
        assert requests.post(f"{odc_emulator.control_url}/advance", json=bad, timeout=TIMEOUT).status_code == 400
    with pytest.raises(ValueError):
        odc_emulator.advance(-5)
    assert odc_emulator.config()["clock_offset"] == 100.5


def test_advance_keeps_tokens_valid_within_their_lifetime(client: Any, odc_emulator: OdcEmulator) -> None:
    token = client.token()
    odc_emulator.advance(3600)
    assert client.get(ASSETS, {"limit": 1}, token=token).status_code == 200
    odc_emulator.advance(43200)
    assert client.get(ASSETS, {"limit": 1}, token=token, check=False).status_code == 401


def test_fail_next_over_http(odc_emulator: OdcEmulator) -> None:
    url = f"{odc_emulator.control_url}/fail-next"
    body = {"kind": "deploy", "count": 2, "messages": ["Quota exceeded."]}
    added = requests.post(url, json=body, timeout=TIMEOUT)
    assert added.status_code == 200
    assert added.json()["failure"] == {"kind": "deploy", "remaining": 2, "messages": ["Quota exceeded."]}
    requests.post(url, json={"kind": "publish"}, timeout=TIMEOUT)
    pending = requests.get(url, timeout=TIMEOUT).json()["pending"]
    assert [p["kind"] for p in pending] == ["deploy", "publish"] and odc_emulator.pending_failures() == pending
    assert "fail_next 'publish'" in pending[1]["messages"][0]
    assert requests.delete(url, timeout=TIMEOUT).json() == {"pending": []}
    assert odc_emulator.pending_failures() == []


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "rollback"},
        {"kind": "deploy", "count": 0},
        {"kind": "deploy", "messages": []},
        {"kind": "deploy", "messages": "boom"},
        {"kind": "deploy", "colour": "red"},
        {"count": 1},
    ],
)
def test_invalid_fail_next_requests(odc_emulator: OdcEmulator, body: dict[str, Any]) -> None:
    response = requests.post(f"{odc_emulator.control_url}/fail-next", json=body, timeout=TIMEOUT)
    assert response.status_code == 400 and response.json()["error"]
    assert odc_emulator.pending_failures() == []


def test_failures_are_shared_exactly_between_concurrent_clients(
    client: Any, kit: Any, odc_emulator: OdcEmulator
) -> None:
    odc_emulator.configure(post_limit_per_minute=None, build_durations={"pending": 0, "running": 0})
    odc_emulator.fail_next("build", count=5)
    token, app = client.token(), kit.apps(2)[0]

    def start(_: int) -> str:
        response = requests.post(
            f"{odc_emulator.base_url}{BUILDS}",
            json={"assetKey": app["assetKey"], "assetRevision": 1},
            headers={"Authorization": f"Bearer {token}"},
            timeout=TIMEOUT,
        )
        key: str = response.json()["buildKey"]
        return key

    with ThreadPoolExecutor(max_workers=10) as pool:
        keys = list(pool.map(start, range(20)))
    statuses = [client.get(f"{BUILDS}/{key}", route=f"{BUILDS}/{{operationKey}}").json()["status"] for key in keys]
    assert statuses.count("FinishedWithErrors") == 5 and statuses.count("Finished") == 15
    assert odc_emulator.stats()["operations_started"]["build"] == 20


def test_durations_config_over_http(odc_emulator: OdcEmulator) -> None:
    url = f"{odc_emulator.control_url}/config"
    defaults = requests.get(url, timeout=TIMEOUT).json()
    assert defaults["build_durations"] == {"pending": 0.5, "running": 1.5}
    assert (defaults["operation_duration"], defaults["post_limit_per_minute"]) == (2.0, 10)
    changed = requests.post(url, json={"build_durations": {"running": 4}, "operation_duration": 9}, timeout=TIMEOUT)
    assert changed.status_code == 200
    assert changed.json()["build_durations"] == {"pending": 0.5, "running": 4.0}
    assert changed.json()["operation_duration"] == 9.0
    for bad in (
        {"build_durations": {"compile": 1}},
        {"build_durations": {"pending": -1}},
        {"build_durations": {}},
        {"operation_duration": "fast"},
        {"operation_duration": True},
    ):
        assert requests.post(url, json=bad, timeout=TIMEOUT).status_code == 400, bad
    assert odc_emulator.config()["operation_duration"] == 9.0


def test_new_durations_apply_to_operations_started_afterwards(client: Any, kit: Any, odc_emulator: OdcEmulator) -> None:
    app = kit.apps(0)[0]
    build = kit.release_build(app, 48)
    body = {"operation": "Deploy", "assetKey": app["assetKey"], "buildKey": build, "revision": 48}
    first = kit.deploy({**body, "environmentKey": kit.stage("QA")}).json()["key"]
    odc_emulator.configure(operation_duration=60)
    second = kit.deploy({**body, "environmentKey": kit.stage("Production")}).json()["key"]
    odc_emulator.advance(2)
    assert (kit.operation(first)["status"], kit.operation(second)["status"]) == ("Finished", "Running")
    odc_emulator.advance(58)
    assert kit.operation(second)["status"] == "Finished"


# reset -----------------------------------------------------------------------------------------------


def test_reset_restores_the_seeded_release_state(client: Any, kit: Any, odc_emulator: OdcEmulator) -> None:
    seeded_inventory = kit.inventory()
    seeded_deployed = client.get(DEPLOYED_ASSETS).json()
    app = kit.apps(0)[0]
    build = kit.release_build(app, 48)
    qa = kit.stage("QA")
    kit.deploy(
        {"operation": "Deploy", "assetKey": app["assetKey"], "buildKey": build, "revision": 48, "environmentKey": qa}
    )
    kit.deploy(
        {"operation": "Undeploy", "assetKey": kit.apps(1)[0]["assetKey"], "environmentKey": kit.stage("Development")}
    )
    kit.build(app["assetKey"], 48)
    client.post(PUBLISHES, {"operation": "Publish", "assetKey": app["assetKey"], "revision": 48})
    client.patch(f"{ASSETS}/{app['assetKey']}/revisions/48", {"tag": "9.0.0"}, check=False)
    odc_emulator.fail_next("deploy", count=3)
    odc_emulator.configure(operation_duration=30, post_limit_per_minute=1)
    odc_emulator.advance(60)
    assert kit.inventory() != seeded_inventory

    assert requests.post(f"{odc_emulator.control_url}/reset", timeout=TIMEOUT).json() == {"reset": True}
    client.token(fresh=True)
    assert kit.inventory() == seeded_inventory
    assert client.get(DEPLOYED_ASSETS).json() == seeded_deployed
    assert client.get(PUBLISHES).json()["results"] == []
    assert all(op["status"] == "Finished" for op in client.get(DEPLOYMENTS, {"limit": 1000}).json()["results"])
    assert odc_emulator.pending_failures() == []
    config = odc_emulator.config()
    assert (config["operation_duration"], config["post_limit_per_minute"], config["clock_offset"]) == (2.0, 10, 0.0)
    stats = odc_emulator.stats()
    assert stats["operations_started"] == dict.fromkeys(("build", "deploy", "apply_configs", "undeploy", "publish"), 0)
    assert stats["rate_limited"] == 0


# OpenAPI contract ------------------------------------------------------------------------------------


def test_every_release_response_matches_the_official_schemas(
    client: Any, kit: Any, contract: Any, odc_emulator: OdcEmulator
) -> None:
    """Each new body kind validated by name, in every state (running, finished, failed, errors)."""
    repo, builds, deployments, portfolio = (
        "asset-repository-api-v1.json",
        "build-operations-api-v1.json",
        "deployments-api-v1.json",
        "portfolio-api-v2.json",
    )
    app, other = kit.apps(0)[0], kit.apps(2)[0]
    key = app["assetKey"]
    contract.validate_named(
        repo, "AssetRevisionV1PagedListResponse", client.get(f"{ASSETS}/{key}/revisions", check=False).json()
    )
    for path in ("revisions/40", "latest-revision", "highest-tag-revision"):
        contract.validate_named(repo, "AssetRevisionV1", client.get(f"{ASSETS}/{key}/{path}", check=False).json())
    for number in (40, 48):
        notes = client.get(f"{ASSETS}/{key}/revisions/{number}/release-notes", check=False).json()
        contract.validate_named(repo, "AssetReleaseNoteContent", notes)
    assert client.patch(f"{ASSETS}/{key}/revisions/48", {"tag": "2.0.0"}, check=False).status_code == 204
    contract.validate_named(repo, "AssetRevisionV1", client.get(f"{ASSETS}/{key}", check=False).json())

    odc_emulator.configure(build_durations={"pending": 5, "running": 5})
    odc_emulator.fail_next("build", messages=["boom"])
    started = client.post(BUILDS, {"assetKey": other["assetKey"], "assetRevision": 1}, check=False).json()
    contract.validate_named(builds, "BuildResponse", started)
    for step in (0, 5, 5):
        odc_emulator.advance(step)
        build = client.get(f"{BUILDS}/{started['buildKey']}", check=False).json()
        contract.validate_named(builds, "BuildDetails", build)
        log = client.get(f"{BUILDS}/{started['buildKey']}/log-messages", check=False).json()
        contract.validate_named(builds, "BuildFeedbackDetailsResponse", log)
    assert build["status"] == "FinishedWithErrors"
    contract.validate_named(builds, "BuildDetailsBuildListResponse", client.get(BUILDS, check=False).json())

    release = kit.release_build(app, 48)
    body = {
        "operation": "Deploy",
        "assetKey": key,
        "buildKey": release,
        "revision": 48,
        "environmentKey": kit.stage("QA"),
    }
    odc_emulator.fail_next("deploy")
    operation = client.post(DEPLOYMENTS, body, check=False).json()
    publish = client.post(PUBLISHES, {"operation": "Publish", "assetKey": key, "revision": 48}, check=False).json()
    for step in (0, 2):
        odc_emulator.advance(step)
        for path, name in ((DEPLOYMENTS, "DeploymentOperationResponse"), (PUBLISHES, "PublishOperationResponse")):
            op_key = operation["key"] if path == DEPLOYMENTS else publish["key"]
            contract.validate_named(deployments, name, client.get(f"{path}/{op_key}", check=False).json())
            messages = client.get(f"{path}/{op_key}/messages", {"limit": 2}, check=False).json()
            contract.validate_named(deployments, "StringMessageDetailsV1TaskProgressMessagePagedListResponse", messages)
    listed = client.get(DEPLOYMENTS, check=False).json()
    contract.validate_named(deployments, "Int32NullableDeploymentOperationResponsePagedListResponse", listed)
    published = client.get(PUBLISHES, check=False).json()
    contract.validate_named(deployments, "Int32NullablePublishOperationResponsePagedListResponse", published)
    contract.validate_named(
        portfolio, "DeployedAssetPagedListResponse", client.get(DEPLOYED_ASSETS, check=False).json()
    )

    for response in (
        client.get(f"{ASSETS}/{key}/revisions/99", check=False),
        client.patch(f"{ASSETS}/{key}/revisions/48", {"tag": "2.0.0"}, check=False),
        client.post(BUILDS, {"assetKey": key}, check=False),
        client.post(DEPLOYMENTS, {"operation": "Deploy"}, check=False),
        client.post(PUBLISHES, {}, check=False),
        client.get(DEPLOYED_ASSETS, {"type": "Library"}, check=False),
    ):
        assert response.status_code in (400, 404)
        contract.validate_named(deployments, "ProblemDetails", response.json())
