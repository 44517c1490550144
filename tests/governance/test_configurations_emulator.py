"""The emulator's stage configurations and asset deletion over HTTP, every answer checked against the specs."""

from __future__ import annotations

from typing import Any

from .conftest import asset_of

BASE = "/api/asset-configurations/v1/environments/{environmentKey}"
APP = BASE + "/applications/{applicationKey}/revisions/{baselineRevision}/configurations"
APP_PATCH = BASE + "/applications/{applicationKey}/configurations"
AGENT = BASE + "/agents/{agentKey}/revisions/{baselineRevision}/configurations"
STAGE = BASE + "/default-system-configurations"
ASSET = "/api/asset-repository/v1/assets/{assetKey}"
DEPLOYMENTS = "/api/deployments/v1/deployment-operations"


def stage(client: Any, name: str) -> str:
    results = client.get("/api/portfolios/v2/environments").json()["results"]
    return str(next(e["key"] for e in results if e["name"] == name))


def path(template: str, **values: Any) -> str:
    for name, value in values.items():
        template = template.replace("{" + name + "}", str(value))
    return template


def setting(body: dict[str, Any], name: str) -> dict[str, Any]:
    return next(item for item in body["settings"] if item["name"] == name)


def test_read_patch_and_apply_an_app_configuration(client: Any, odc_emulator: Any) -> None:
    odc_emulator.configure(operation_duration=0.5)
    app, qa = asset_of(odc_emulator), stage(client, "QA")
    where = {"environmentKey": qa, "applicationKey": app["assetKey"]}
    read = client.get(path(APP, baselineRevision="deployed", **where), route=APP)
    assert read.status_code == 200
    body = read.json()
    assert body["revisionDeployed"] == app["deployed"]["QA"]["revision"]
    assert setting(body, "ApiKey")["isSecret"] is True and setting(body, "ApiKey")["value"] is None
    api_url = setting(body, "ApiUrl")
    timer = body["timers"][0]
    is_active = next(c for c in timer["configs"] if c["name"] == "IsActive")
    api_key = setting(body, "ApiKey")

    patch = {
        "settings": [
            {"key": api_url["key"], "value": "https://new.example.test"},
            {"key": api_key["key"], "value": "k-1"},
        ],
        "timers": [{"key": timer["key"], "configs": [{"key": is_active["key"], "value": "False"}]}],
    }
    assert client.patch(path(APP_PATCH, **where), patch, route=APP_PATCH).status_code == 204
    pending = client.get(path(APP, baselineRevision="deployed", **where), route=APP).json()
    assert setting(pending, "ApiUrl")["value"] == "https://new.example.test"
    assert setting(pending, "ApiUrl")["deployedValue"] == "https://api.example.test"
    assert setting(pending, "ApiKey")["valueSetAfterDeploy"] is True
    assert "k-1" not in str(pending), "a secret's value is never answered"

    started = client.post(DEPLOYMENTS, {"operation": "ApplyConfigs", "assetKey": app["assetKey"], "environmentKey": qa})
    assert started.status_code == 201, started.text
    odc_emulator.advance(1)
    applied = client.get(path(APP, baselineRevision="deployed", **where), route=APP).json()
    assert setting(applied, "ApiUrl")["deployedValue"] == "https://new.example.test"
    assert setting(applied, "ApiKey")["valueSetAfterDeploy"] is False
    assert next(c for c in applied["timers"][0]["configs"] if c["name"] == "IsActive")["deployedValue"] == "False"


def test_refusals_are_odc_shaped(client: Any, odc_emulator: Any) -> None:
    app, qa = asset_of(odc_emulator), stage(client, "QA")
    where = {"environmentKey": qa, "applicationKey": app["assetKey"]}
    key = setting(client.get(path(APP, baselineRevision="deployed", **where), route=APP).json(), "MaxItems")["key"]

    wrong_type = client.patch(path(APP_PATCH, **where), {"settings": [{"key": key, "value": "many"}]}, route=APP_PATCH)
    assert wrong_type.status_code == 400 and "Integer" in wrong_type.text
    unknown = client.patch(path(APP_PATCH, **where), {"settings": [{"key": "nope", "value": "1"}]}, route=APP_PATCH)
    assert unknown.status_code == 400 and "does not exist" in unknown.text
    extra = client.patch(path(APP_PATCH, **where), {"settings": [], "stage": "QA"}, route=APP_PATCH)
    assert extra.status_code == 400

    undeployed = asset_of(odc_emulator, deployed_to=None)
    nowhere = {"environmentKey": qa, "applicationKey": undeployed["assetKey"]}
    assert client.get(path(APP, baselineRevision="deployed", **nowhere), route=APP).status_code == 404
    assert client.get(path(APP, baselineRevision=1, **nowhere), route=APP).status_code == 200
    assert client.get(path(APP, baselineRevision=99999, **nowhere), route=APP).status_code == 404
    no_baseline = client.patch(path(APP_PATCH, **nowhere), {"settings": [{"key": key, "value": "1"}]}, route=APP_PATCH)
    assert no_baseline.status_code == 400 and "revisionBaseline" in no_baseline.text
    # An app is not an agent.
    agent_path = path(AGENT, environmentKey=qa, agentKey=app["assetKey"], baselineRevision="deployed")
    assert client.get(agent_path, route=AGENT).status_code == 404


def test_agents_have_no_system_configurations(client: Any, odc_emulator: Any) -> None:
    agent, qa = asset_of(odc_emulator, asset_type="Agent"), stage(client, "QA")
    body = client.get(
        path(AGENT, environmentKey=qa, agentKey=agent["assetKey"], baselineRevision="deployed"), route=AGENT
    )
    assert body.status_code == 200
    assert "systemConfigurations" not in body.json() and body.json()["settings"]


def test_stage_default_system_configurations(client: Any, odc_emulator: Any) -> None:
    qa = stage(client, "QA")
    body = client.get(path(STAGE, environmentKey=qa), route=STAGE).json()
    zone = next(item for item in body["systemConfigurations"] if item["name"] == "DefaultTimeZone")
    patched = client.patch(
        path(STAGE, environmentKey=qa),
        {"systemConfigurations": [{"key": zone["key"], "value": "Europe/Lisbon"}]},
        route=STAGE,
    )
    assert patched.status_code == 204
    after = client.get(path(STAGE, environmentKey=qa), route=STAGE).json()
    assert next(i for i in after["systemConfigurations"] if i["name"] == "DefaultTimeZone")["value"] == "Europe/Lisbon"
    unknown = client.patch(
        path(STAGE, environmentKey=qa), {"systemConfigurations": [{"key": "x", "value": "1"}]}, route=STAGE
    )
    assert unknown.status_code == 404
    production = client.get(path(STAGE, environmentKey=stage(client, "Production")), route=STAGE).json()
    assert next(i for i in production["systemConfigurations"] if i["name"] == "DefaultTimeZone")["value"] == "UTC"


def test_deleting_an_asset(client: Any, odc_emulator: Any) -> None:
    library = asset_of(odc_emulator, asset_type="LowCodeLibrary", deployed_to=None)
    target = path(ASSET, assetKey=library["assetKey"])
    assert client.call("DELETE", target, route=ASSET).status_code == 204
    assert client.get(target, route=ASSET).status_code == 404
    assert client.call("DELETE", target, route=ASSET).status_code == 404
    assert library["assetKey"] not in {a["assetKey"] for a in client.all_assets()}
