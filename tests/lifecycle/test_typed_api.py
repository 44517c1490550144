"""The hook's typed calls (one ``airflow_provider_odc.api`` module per ODC API): a release walked through them
against the emulator, results read tolerantly, and every field, status and body checked against the specs."""

from __future__ import annotations

import re
from typing import Any

import pytest

from airflow_provider_odc.api import assets, builds, deployments, portfolios
from airflow_provider_odc.api.assets import Asset
from airflow_provider_odc.api.builds import Build
from airflow_provider_odc.api.deployments import DeploymentOperation
from airflow_provider_odc.api.portfolios import DeployedAsset, Deployment, Stage
from airflow_provider_odc.exceptions import OdcError
from airflow_provider_odc.hooks.odc import OdcHook
from airflow_provider_odc.operations import OPERATION_KINDS

from ..emulator.conftest import OpenApiContract, openapi_dir, specs_missing_reason
from ..required import missing
from .conftest import web_app

KEY = "6f1f1e0c-8a9e-4a51-9c51-3f5a0f7a2b11"
OTHER_KEY = "0b8d4f9e-1c2a-4e7b-9d3f-5a6b7c8d9e0f"


def test_a_release_through_the_typed_calls(fast_emulator: Any) -> None:
    hook = OdcHook()
    stages = hook.list_stages()
    assert [stage.name for stage in stages] == ["Development", "QA", "Production"]
    qa = hook.resolve_stage("qa")
    assert qa == stages[1] and qa.purpose == "NonProduction"

    app = web_app(fast_emulator, with_release_build=False)
    asset = hook.find_asset(app["name"])
    assert asset.asset_key == app["assetKey"] and asset.name == app["name"]
    assert hook.find_asset(app["assetKey"].upper()).asset_key == app["assetKey"]
    web_apps = hook.list_assets(asset_types=["WebApplication"], page_size=5)
    assert asset in web_apps and {a.asset_type for a in web_apps} == {"WebApplication"}
    revision = hook.resolve_revision(asset.asset_key, "latest")
    assert revision == app["latestRevision"] == hook.resolve_revision(asset.asset_key, str(revision))

    build_key = hook.start_build(asset.asset_key, revision)
    build = hook.get_build(build_key)
    assert (build.asset_key, build.asset_revision, build.build_type) == (asset.asset_key, revision, "Release")
    assert build.status in builds.RUNNING
    fast_emulator.advance(60)
    assert hook.get_build(build_key).status == "Finished"
    assert build_key in [b.build_key for b in hook.list_builds(asset.asset_key, revision, "Release")]
    reusable = hook.reusable_build(asset.asset_key, revision, finished_only=True)
    assert reusable is not None and reusable.build_key == build_key

    deploy_key = hook.start_deployment(asset.asset_key, qa.key, revision=revision, build_key=build_key)
    deployment = hook.get_deployment(deploy_key)
    assert (deployment.operation, deployment.asset_key, deployment.build_key) == ("Deploy", asset.asset_key, build_key)
    fast_emulator.advance(60)
    assert hook.get_deployment(deploy_key).status == "Finished"
    listed = hook.list_deployment_operations(asset.asset_key, stage_key=qa.key, operation="Deploy")
    assert deploy_key in [operation.key for operation in listed]
    [deployed] = hook.list_deployed_assets(asset_key=asset.asset_key)
    on_qa = deployed.on_stage(qa.key.upper())
    assert deployed.key == asset.asset_key and on_qa is not None
    assert (on_qa.revision, on_qa.build_key) == (revision, build_key)
    assert deployed.on_stage(hook.resolve_stage("Production").key) is None
    # The README's ``what_runs_where``:
    revisions = {d.stage_key: d.revision for a in [deployed] for d in a.deployments}
    where = {stage.name: revisions.get(stage.key) for stage in hook.list_stages()}
    assert (where["QA"], where["Production"]) == (revision, None)

    publish_key = hook.start_publish(asset.asset_key, revision)
    publish = hook.get_publish(publish_key)
    assert (publish.operation, publish.revisions) == ("Publish", (revision,))
    assert publish_key in [p.key for p in hook.list_publish_operations(asset.asset_key, revision=revision)]

    major = int((app["highestTag"] or "0.0.0").split(".")[0]) + 1
    hook.tag_revision(asset.asset_key, revision, f"{major}.0.0", "<p>typed</p>")
    assert hook.resolve_revision(asset.asset_key, "highest-tag") == revision
    assert fast_emulator.stats()["operations_started"]["build"] == 1


def test_names_that_match_nothing_or_too_much_say_what_to_pass(fast_emulator: Any) -> None:
    hook = OdcHook()
    with pytest.raises(OdcError, match="not found; the API client can see: Development, QA, Production"):
        hook.resolve_stage("Staging")
    with pytest.raises(OdcError, match="names are matched exactly"):
        hook.find_asset("No Such App 123")
    with pytest.raises(OdcError, match="is not a number, 'latest' or 'highest-tag'"):
        hook.resolve_revision(KEY, "newest")


def test_results_take_extra_fields_and_the_specs_nulls() -> None:
    build = Build.from_json({"buildKey": KEY, "assetRevision": True, "status": None, "securityAudit": {}, "new": 1})
    assert (build.key, build.asset_revision, build.status, build.asset_key) == (KEY, None, None, None)
    deployed = DeployedAsset.from_json({"key": KEY, "type": None, "deployments": None, "isBuiltIn": "yes"})
    assert (deployed.deployments, deployed.is_built_in, deployed.on_stage(KEY)) == ((), False, None)
    operation = DeploymentOperation.from_json({"key": KEY, "revisions": None, "operation": "Undeploy"})
    assert operation.revisions == () and operation.operation == "Undeploy"
    assert DeploymentOperation.from_json({"key": KEY, "revisions": [3, "4", None, 5]}).revisions == (3, 5)
    assert portfolios.stages_of({"results": None}) == [] and portfolios.stages_of([]) == []
    stage = Stage.from_json({"key": KEY, "name": None, "purpose": None})
    assert (stage.name, stage.order, stage.purpose) == ("", 0, None)
    assert builds.reusable([build], finished_only=False) is None
    for parse, what in ((Build.from_json, "buildKey"), (Asset.from_json, "assetKey"), (Stage.from_json, "key")):
        with pytest.raises(OdcError, match=f"without its '{what}'"):
            parse({"name": "x"})
    with pytest.raises(OdcError, match="where a stage"):
        Stage.from_json(["not", "an", "object"])


def test_stage_names_used_by_two_portfolios_list_both() -> None:
    first = Stage(KEY, "QA", 1000, "NonProduction", "portfolio-a")
    second = Stage(OTHER_KEY, "qa", 1500, "NonProduction", "portfolio-b")
    with pytest.raises(OdcError, match="ambiguous") as caught:
        portfolios.pick_stage([first, second], "Qa")
    assert "portfolio-a" in str(caught.value) and "portfolio-b" in str(caught.value)
    assert portfolios.pick_stage([first, second], "{" + OTHER_KEY.upper() + "}") == second


# Against the specs ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def contract() -> OpenApiContract:
    reason = specs_missing_reason()
    if reason is not None:
        missing(reason)
    return OpenApiContract(openapi_dir())


class ReadFields(dict[str, Any]):
    """A JSON object that records which fields a parser reads (every one answers with a plausible value)."""

    def __init__(self, read: set[str]) -> None:
        super().__init__()
        self.read = read

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return KEY


def schema(contract: OpenApiContract, spec_base: str, ref: dict[str, Any]) -> dict[str, Any]:
    """A schema with its ``$ref`` and single ``allOf`` followed."""
    spec = contract.specs[spec_base]
    while True:
        if "$ref" in ref:
            ref = spec["components"]["schemas"][ref["$ref"].rsplit("/", 1)[1]]
        elif len(ref.get("allOf", [])) == 1:
            ref = ref["allOf"][0]
        else:
            return ref


def component(contract: OpenApiContract, spec_base: str, name: str) -> dict[str, Any]:
    return schema(contract, spec_base, {"$ref": f"#/components/schemas/{name}"})


@pytest.mark.parametrize(
    ("parse", "spec_base", "component_name"),
    [
        (Asset.from_json, "/api/asset-repository/v1", "AssetRevisionV1"),
        (Build.from_json, "/api/builds/v1", "BuildDetails"),
        (DeploymentOperation.from_json, "/api/deployments/v1", "DeploymentOperationResponse"),
        (DeploymentOperation.from_json, "/api/deployments/v1", "PublishOperationResponse"),
        (Stage.from_json, "/api/portfolios/v2", "Environment"),
        (DeployedAsset.from_json, "/api/portfolios/v2", "DeployedAsset"),
        (Deployment.from_json, "/api/portfolios/v2", "Deployment"),
    ],
)
def test_every_field_a_result_reads_is_in_its_spec_schema(
    contract: OpenApiContract, parse: Any, spec_base: str, component_name: str
) -> None:
    read: set[str] = set()
    parse(ReadFields(read))
    declared = set(component(contract, spec_base, component_name)["properties"])
    if component_name == "PublishOperationResponse":
        read -= {"revisions"}  # a publish has one ``revision``; a deployment ``revisions``: both are read
    elif component_name == "DeploymentOperationResponse":
        read -= {"revision"}
    assert read and read <= declared, f"{component_name} has no {sorted(read - declared)}"


def test_every_kind_polls_a_spec_path_and_its_statuses_are_the_specs(contract: OpenApiContract) -> None:
    for kind in OPERATION_KINDS.values():
        base = next(b for b in contract.specs if kind.status_path.startswith(b))
        spec = contract.specs[base]
        template = next(
            t
            for t in spec["paths"]
            if re.fullmatch(re.sub(r"\{[^/]+\}", "[^/]+", t), kind.path("k")[len(base) :]) and "get" in spec["paths"][t]
        )
        body = schema(
            contract, base, spec["paths"][template]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        )
        status = schema(contract, base, body["properties"][kind.status_field])
        if "enum" not in status:  # the code quality spec leaves status a plain string; its use case names them
            assert (kind.name, status["type"]) == ("code_analysis", "string")
            continue
        assert kind.success | kind.failure <= set(status["enum"]), kind.name
        if kind.result_field:
            report, field = kind.result_field.split(".")
            verdict = schema(contract, base, schema(contract, base, body["properties"][report])["properties"][field])
            assert kind.result_failure <= set(verdict["enum"]), kind.name
        if kind.messages_path:
            messages = kind.messages_path.format(key="{key}")[len(base) :]
            assert any(re.sub(r"\{[^/]+\}", "{}", t) == re.sub(r"\{[^/]+\}", "{}", messages) for t in spec["paths"])


def test_every_request_body_validates_against_its_spec(contract: OpenApiContract) -> None:
    bodies = [
        ("/api/builds/v1", "/build-operations", "post", builds.start_body(KEY, 3, "Release")),
        ("/api/deployments/v1", "/deployment-operations", "post", deployments.deployment_body("Undeploy", KEY, KEY)),
        (
            "/api/deployments/v1",
            "/deployment-operations",
            "post",
            deployments.deployment_body("Deploy", KEY, KEY, revision=3, build_key=KEY),
        ),
        ("/api/deployments/v1", "/publish-operations", "post", deployments.publish_body(KEY, 3, KEY)),
        (
            "/api/asset-repository/v1",
            "/assets/{assetKey}/revisions/{revisionNumber}",
            "patch",
            assets.tag_body("1.2.3", "<p>notes</p>"),
        ),
    ]
    for base, template, method, body in bodies:
        spec = contract.specs[base]
        request = spec["paths"][template][method]["requestBody"]["content"]["application/json"]["schema"]
        contract.validate_schema(spec, request, body)
    for base, template, params in (
        ("/api/builds/v1", "/build-operations", builds.list_params(KEY, 3, "Release")),
        (
            "/api/deployments/v1",
            "/deployment-operations",
            deployments.list_params(
                KEY,
                stage_key=KEY,
                revision=3,
                operation="Deploy",
                created_since="2026-01-01T00:00:00Z",
                sort="-CreatedAt",
            ),
        ),
        (
            "/api/portfolios/v2",
            "/deployed-assets",
            portfolios.deployed_assets_params(stage_key=KEY, asset_key=KEY, asset_types=["WebApplication"]),
        ),
        (
            "/api/asset-repository/v1",
            "/assets",
            assets.list_params(name_contains="x", asset_types=["WebApplication"], sort="name"),
        ),
    ):
        declared = {p["name"] for p in contract.specs[base]["paths"][template]["get"].get("parameters", [])}
        assert set(params) <= declared, f"GET {base}{template}: {sorted(set(params) - declared)}"
