"""The long-running operations outside the release lifecycle: start, poll through the statuses, read the
messages or report, fail on ``fail_next``. Every answer goes through ``OdcClient``, which validates it
against the official spec of its path (``contract_checked`` proves that it did)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from airflow_provider_odc.emulator.server import OdcEmulator

from .conftest import BUILDS, OdcClient, OpenApiContract

GENERATED = "/api/builds/v1/build-operations/{operationKey}/generated-code"
DEPLOYMENT_ANALYSES = "/api/dependency-management/v1/deployment-analyses"
DELETION_ANALYSES = "/api/dependency-management/v1/deletion-analyses"
CODE_ANALYSES = "/api/code-quality/v1/code-analyses"
LIBRARIES = "/api/external-libraries/v1/generation-operations"
NATIVE = "/api/native-mobile-builds/v1/build-operations"
BULK = "/api/identity/v1/users/bulk"
DURATION = 2.0  # the default operation_duration


def first(emulator: OdcEmulator, asset_type: str) -> dict[str, Any]:
    return next(a for a in emulator.inventory()["assets"] if a["assetType"] == asset_type)


def stage_key(emulator: OdcEmulator, name: str = "QA") -> str:
    key: str = emulator.inventory()["environments"][name]
    return key


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def test_generated_code_runs_after_the_post_and_ends_with_a_uri(client: OdcClient, odc_emulator: OdcEmulator) -> None:
    app = first(odc_emulator, "WebApplication")
    build = ok(client.post(BUILDS, {"assetKey": app["assetKey"], "assetRevision": 1, "buildType": "Release"}), 201)
    path = GENERATED.replace("{operationKey}", build["buildKey"])
    assert client.get(path, route=GENERATED).status_code == 404, "no package before the POST"
    assert client.post(path, route=GENERATED).status_code == 422, "the build is still Pending"
    odc_emulator.advance(2.0)
    assert ok(client.post(path, route=GENERATED), 201) == {"isSuccessful": True}
    assert ok(client.get(path, route=GENERATED))["status"] == "NotStarted"
    odc_emulator.advance(DURATION / 2)
    assert ok(client.get(path, route=GENERATED))["status"] == "Running"
    odc_emulator.advance(DURATION)
    done = ok(client.get(GENERATED.replace("{operationKey}", build["buildKey"].upper()), route=GENERATED))
    assert done["status"] == "Finished" and urlsplit(done["uri"]).path.endswith(".zip") and done["errors"] is None


def test_generated_code_failure_lists_its_errors(client: OdcClient, odc_emulator: OdcEmulator) -> None:
    build_key = next(
        b["buildKey"] for b in first(odc_emulator, "WebApplication")["builds"] if b["status"] == "Finished"
    )
    odc_emulator.fail_next("generated_code", messages=["Packaging ran out of disk."])
    path = GENERATED.replace("{operationKey}", build_key)
    ok(client.post(path, route=GENERATED), 201)
    odc_emulator.advance(DURATION)
    body = ok(client.get(path, route=GENERATED))
    assert body["status"] == "Failed" and body["uri"] is None
    assert [(e["severity"], e["message"]) for e in body["errors"]] == [("Error", "Packaging ran out of disk.")]


@pytest.mark.parametrize(
    ("failure", "process", "report"),
    [
        (None, "Finished", "NoIssuesFound"),
        ("deployment_analysis_warnings", "Finished", "WarningsFound"),
        ("deployment_analysis_errors", "Finished", "ErrorsFound"),
        ("deployment_analysis", "Failed", None),
    ],
)
def test_deployment_analysis_outcomes(
    failure: str | None, process: str, report: str | None, client: OdcClient, odc_emulator: OdcEmulator
) -> None:
    app = first(odc_emulator, "WebApplication")
    if failure:
        odc_emulator.fail_next(failure, messages=["Action GetOrders lost its input parameter."])
    body = {"assetKey": app["assetKey"].upper(), "revision": 1, "environmentKey": stage_key(odc_emulator)}
    key = ok(client.post(DEPLOYMENT_ANALYSES, body), 201)["analysisKey"]
    route = f"{DEPLOYMENT_ANALYSES}/{{analysisKey}}"
    running = ok(client.get(f"{DEPLOYMENT_ANALYSES}/{key}", route=route))
    assert running["processStatus"] == "InProgress" and running["report"] is None
    odc_emulator.advance(DURATION)
    result = ok(client.get(f"{DEPLOYMENT_ANALYSES}/{key}", route=route))
    assert result["processStatus"] == process and result["assetKey"] == app["assetKey"]
    if report is None:
        assert result["report"] is None and "GetOrders" in result["error"]["detail"]
        return
    assert result["report"]["status"] == report and result["error"] is None
    hints = [i["hint"] for a in result["report"]["impactedAssets"] for i in a["elementLevelIssues"]]
    assert hints == ([] if report == "NoIssuesFound" else ["Action GetOrders lost its input parameter."])


def test_deletion_analysis_with_errors_names_the_consumers(client: OdcClient, odc_emulator: OdcEmulator) -> None:
    odc_emulator.fail_next("deletion_analysis_errors", messages=["Orders Portal still uses it."])
    key = ok(client.post(DELETION_ANALYSES, {"assetKey": first(odc_emulator, "LowCodeLibrary")["assetKey"]}), 201)
    odc_emulator.advance(DURATION)
    result = ok(client.get(f"{DELETION_ANALYSES}/{key['analysisKey']}", route=f"{DELETION_ANALYSES}/{{analysisKey}}"))
    assert result["type"] == "Deletion" and result["report"]["status"] == "ErrorsFound"
    revisions = [r for a in result["report"]["impactedAssets"] for r in a["deployedRevisions"]]
    assert [(r["severity"], r["indirectLibraryHint"]) for r in revisions] == [("Error", "Orders Portal still uses it.")]


def test_analysis_bodies_are_checked(client: OdcClient, odc_emulator: OdcEmulator) -> None:
    # The spec declares no 400 or 404 for these POSTs: the answers are ASP.NET's, not checked against it.
    asset_key = first(odc_emulator, "WebApplication")["assetKey"]
    missing = client.post(DEPLOYMENT_ANALYSES, {"assetKey": asset_key}, check=False)
    assert missing.status_code == 400 and "revision" in missing.json()["errors"]
    unknown = client.post(DELETION_ANALYSES, {"assetKey": "00000000-0000-0000-0000-000000000001"}, check=False)
    assert unknown.status_code == 404
    extra = client.post(DELETION_ANALYSES, {"assetKey": None, "force": True}, check=False)
    assert extra.status_code == 400 and set(extra.json()["errors"]) == {"force"}


def test_code_analysis_completes_or_fails(client: OdcClient, odc_emulator: OdcEmulator) -> None:
    app = first(odc_emulator, "WebApplication")
    route = f"{CODE_ANALYSES}/{{analysisKey}}"
    started = ok(client.post(CODE_ANALYSES, {"assetKey": app["assetKey"], "assetRevision": 1}))
    assert started["status"] == "Pending"
    odc_emulator.fail_next("code_analysis")
    failing = ok(client.post(CODE_ANALYSES, {"assetKey": app["assetKey"], "assetRevision": 1}))
    odc_emulator.advance(DURATION)
    done = ok(client.get(f"{CODE_ANALYSES}/{started['analysisKey']}", {"Limit": 10, "offset": 0}, route=route))
    assert done["status"] == "Completed" and done["findings"] == [] and done["qualityScore"] == 100.0
    assert ok(client.get(f"{CODE_ANALYSES}/{failing['analysisKey']}", route=route))["status"] == "Failed"
    too_small = client.get(f"{CODE_ANALYSES}/{started['analysisKey']}", {"Limit": 0}, check=False)
    assert too_small.status_code == 400
    bad = client.post(CODE_ANALYSES, {"assetKey": app["assetKey"], "assetRevision": 0}, check=False)
    assert bad.status_code == 400


def test_external_library_generation_and_its_validation_messages(client: OdcClient, odc_emulator: OdcEmulator) -> None:
    body = {"fileName": "PdfTools.zip", "highCodeBinaryUri": "https://uploads.example.test/abc"}
    good = ok(client.post(LIBRARIES, body), 201)["operationKey"]
    odc_emulator.fail_next("external_library", messages=["No public action found in PdfTools.dll."])
    bad = ok(client.post(LIBRARIES, body), 201)["operationKey"]
    route, log_route = f"{LIBRARIES}/{{operationKey}}", f"{LIBRARIES}/{{operationKey}}/log-messages"
    assert ok(client.get(f"{LIBRARIES}/{good}", route=route))["status"] == "None"
    odc_emulator.advance(DURATION / 2)
    assert ok(client.get(f"{LIBRARIES}/{good}", route=route))["status"] == "Downloading"
    odc_emulator.advance(DURATION)
    completed = ok(client.get(f"{LIBRARIES}/{good}", route=route))
    assert completed["status"] == "Completed" and completed["libraryName"] == "PdfTools"
    assert ok(client.get(f"{LIBRARIES}/{bad}", route=route))["status"] == "GenerationError"
    messages = ok(client.get(f"{LIBRARIES}/{bad}/log-messages", route=log_route))["validationMessages"]
    assert [(m["type"], m["message"]) for m in messages if m["type"] == "Error"] == [
        ("Error", "No public action found in PdfTools.dll.")
    ]
    assert all("severity" not in m for m in messages), "the spec's field is `type`"
    refused = client.post(LIBRARIES, {**body, "highCodeBinaryUri": "ftp://x"}, check=False)
    assert refused.status_code == 400


def test_native_build_is_scoped_by_stage_and_app(client: OdcClient, odc_emulator: OdcEmulator) -> None:
    app = first(odc_emulator, "MobileApplication")
    scope = {"environmentKey": stage_key(odc_emulator), "applicationKey": app["assetKey"]}
    body = {"buildKey": "4bb2c7cf-3c5c-4e4f-9a43-0f6c1f0d8a11", "revision": 1, "mobilePlatform": "Android", **scope}
    odc_emulator.fail_next("native_build", messages=["The keystore password is wrong."])
    started = ok(client.post(NATIVE, body), 201)
    assert started["status"] == "Waiting" and started["finishedDateTime"] is None
    route, log_route = f"{NATIVE}/{{operationKey}}", f"{NATIVE}/{{operationKey}}/log-messages"
    path = f"{NATIVE}/{started['key']}"
    assert client.get(path, route=route, check=False).status_code == 400, "environmentKey/applicationKey required"
    assert (
        client.get(f"{path}/log-messages", {"environmentKey": scope["environmentKey"]}, check=False).status_code == 400
    )
    other = {**scope, "environmentKey": stage_key(odc_emulator, "Production")}
    assert client.get(path, other, route=route).status_code == 404
    odc_emulator.advance(DURATION)
    assert ok(client.get(path, scope, route=route))["status"] == "Error"
    page = ok(client.get(f"{path}/log-messages", {**scope, "limit": 2}, route=log_route))
    assert page["page"] == {"count": 2, "limit": 2, "offset": 0, "nextPageOffset": 2}
    rest = ok(client.get(f"{path}/log-messages", {**scope, "limit": 2, "offset": 2}, route=log_route))
    assert "nextPageOffset" not in rest["page"]
    assert [m["message"] for m in rest["results"] if m["severity"] == "Error"] == ["The keystore password is wrong."]
    web = {**body, "applicationKey": first(odc_emulator, "WebApplication")["assetKey"]}
    assert client.post(NATIVE, web).status_code == 404


def test_bulk_users_report_each_record(client: OdcClient, odc_emulator: OdcEmulator) -> None:
    records = [{"email": "ana@example.test", "name": "Ana"}, {"email": "not-an-email"}, {"username": "bo"}]
    started = ok(client.post(BULK, {"records": records}), 202)
    assert started["status"] == "Pending" and started["operations"] is None
    route = f"{BULK}/{{key}}"
    odc_emulator.advance(DURATION)
    done = ok(client.get(f"{BULK}/{started['key']}", route=route))
    assert done["status"] == "FinishedWithErrors"
    assert [o["status"] for o in done["operations"]] == ["Inserted", "Error", "Inserted"]
    assert "not-an-email" in done["operations"][1]["errorMessage"]
    clean = ok(client.post(BULK, {"records": [records[0]]}), 202)
    odc_emulator.advance(DURATION)
    assert ok(client.get(f"{BULK}/{clean['key']}", route=route))["status"] == "Finished"
    assert client.post(BULK, {"records": []}, check=False).status_code == 400
    assert client.post(BULK, {"records": [{"email": "a@b.test", "isAdmin": True}]}, check=False).status_code == 400


def test_every_new_route_was_checked_against_its_spec(openapi_contract: OpenApiContract | None) -> None:
    """The contract checker knows the new routes (else OdcClient would skip their validation)."""
    if openapi_contract is None:
        pytest.skip("ODC OpenAPI specs not found (set ODC_OPENAPI_DIR)")
    for route in (
        GENERATED,
        f"{DEPLOYMENT_ANALYSES}/{{analysisKey}}",
        f"{DELETION_ANALYSES}/{{analysisKey}}",
        f"{CODE_ANALYSES}/{{analysisKey}}",
        f"{LIBRARIES}/{{operationKey}}/log-messages",
        f"{NATIVE}/{{operationKey}}/log-messages",
        f"{BULK}/{{key}}",
    ):
        assert openapi_contract.knows(route), route
