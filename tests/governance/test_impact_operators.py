"""The impact gate and the guarded deletion against the emulator, in the worker and deferred through the trigger."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_odc.exceptions import OdcApiError, OdcOperationFailed
from airflow_provider_odc.hooks.odc import OdcHook
from airflow_provider_odc.operators.impact import SUMMARY_XCOM_KEY, OdcDeleteAssetOperator, OdcImpactAnalysisOperator

from ..lifecycle.conftest import RecordingTI, run_operator
from ..lifecycle.test_conformance import spec_route
from .conftest import FAST, asset_of

FINDING = "Action GetInvoices: input parameter CustomerId was removed"


def gate(app: dict[str, Any], **kwargs: Any) -> OdcImpactAnalysisOperator:
    return OdcImpactAnalysisOperator(task_id="gate", asset=app["name"], stage="Production", **{**FAST, **kwargs})


@pytest.mark.parametrize("deferrable", [False, True])
def test_a_clean_analysis_passes_with_its_summary(fast_emulator: Any, deferrable: bool) -> None:
    app = asset_of(fast_emulator)
    summary, ti = run_operator(gate(app, deferrable=deferrable))
    assert summary["status"] == "NoIssuesFound" and summary["errors"] == summary["warnings"] == 0
    assert summary["assetKey"] == app["assetKey"] and summary["processStatus"] == "Finished"
    assert ti.xcom[SUMMARY_XCOM_KEY] == summary and ti.xcom["operation_key"] == summary["analysisKey"]
    assert fast_emulator.stats()["api_calls"]["POST /api/dependency-management/v1/deployment-analyses"] == 1


@pytest.mark.parametrize("deferrable", [False, True])
def test_errors_fail_the_gate_with_odcs_findings(
    fast_emulator: Any, deferrable: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    app = asset_of(fast_emulator)
    fast_emulator.fail_next("deployment_analysis_errors", messages=[FINDING])
    operator = gate(app, deferrable=deferrable)
    ti = RecordingTI()
    with pytest.raises(OdcOperationFailed, match="result ErrorsFound") as failed:
        run_operator_with(operator, ti)
    assert FINDING in str(failed.value) and "not deploying" in str(failed.value)
    summary = ti.xcom[SUMMARY_XCOM_KEY]
    assert summary["errors"] == 1 and summary["status"] == "ErrorsFound" and FINDING in summary["findings"][0]
    assert len(summary["impactedAssets"]) == 1
    assert FINDING in capsys.readouterr().out, "the finding is in the task log"


def test_warnings_pass_unless_asked(fast_emulator: Any) -> None:
    app = asset_of(fast_emulator)
    fast_emulator.fail_next("deployment_analysis_warnings", messages=[FINDING])
    summary, _ = run_operator(gate(app))
    assert summary["status"] == "WarningsFound" and summary["warnings"] == 1
    fast_emulator.fail_next("deployment_analysis_warnings", messages=[FINDING])
    with pytest.raises(OdcOperationFailed, match="fail_on_warnings"):
        run_operator(gate(app, fail_on_warnings=True))


def test_an_analysis_odc_could_not_run_says_why(fast_emulator: Any) -> None:
    app = asset_of(fast_emulator)
    fast_emulator.fail_next("deployment_analysis", messages=["The dependency graph is being rebuilt"])
    with pytest.raises(OdcOperationFailed, match="status Failed") as failed:
        run_operator(gate(app, deferrable=True))
    assert "The dependency graph is being rebuilt" in str(failed.value)


def test_an_unknown_revision_is_odcs_404(fast_emulator: Any) -> None:
    app = asset_of(fast_emulator)
    with pytest.raises(OdcApiError, match="404"):
        run_operator(gate(app, revision=app["latestRevision"] + 1))


def run_operator_with(operator: Any, ti: RecordingTI) -> Any:
    """``run_operator`` keeping the task instance, so XComs pushed before a failure can be read."""
    import asyncio

    from ..lifecycle.conftest import TaskDeferred, first_event

    context: Any = {"ti": ti}
    try:
        return operator.execute(context)
    except TaskDeferred as deferred:
        event = asyncio.run(first_event(deferred.trigger))
        return getattr(operator, deferred.method_name)(context, event.payload)


# Deleting unused assets ------------------------------------------------------------------------------------


def still_there(asset_key: str) -> bool:
    try:
        OdcHook().find_asset(asset_key)
    except OdcApiError as exc:
        assert exc.status == 404
        return False
    return True


@pytest.mark.parametrize("deferrable", [False, True])
def test_an_unused_asset_is_deleted(fast_emulator: Any, deferrable: bool) -> None:
    library = asset_of(fast_emulator, asset_type="LowCodeLibrary", deployed_to=None)
    result, _ = run_operator(
        OdcDeleteAssetOperator(task_id="delete", asset=library["name"], deferrable=deferrable, **FAST)
    )
    assert result["deleted"] is True and result["impactedAssets"] == [] and result["deployedEnvironments"] == []
    assert not still_there(library["assetKey"])


def test_consumers_stop_the_deletion(fast_emulator: Any) -> None:
    library = asset_of(fast_emulator, asset_type="LowCodeLibrary", deployed_to=None)
    fast_emulator.fail_next("deletion_analysis_errors", messages=["Claims Intake uses GetInvoices"])
    ti = RecordingTI()
    operator = OdcDeleteAssetOperator(task_id="delete", asset=library["name"], **FAST)
    with pytest.raises(OdcOperationFailed, match="Refusing to delete") as refused:
        run_operator_with(operator, ti)
    assert "1 asset(s) still consume it: Consumer 1" in str(refused.value)
    assert "Claims Intake uses GetInvoices" in str(refused.value)
    assert ti.xcom[SUMMARY_XCOM_KEY]["impactedAssets"] == ["Consumer 1"]
    assert still_there(library["assetKey"])
    assert "DELETE /api/asset-repository/v1/assets/{assetKey}" not in fast_emulator.stats()["api_calls"]


def test_warnings_and_deployed_stages_stop_it_unless_allowed(fast_emulator: Any) -> None:
    app = asset_of(fast_emulator, deployed_to="QA")
    with pytest.raises(OdcOperationFailed, match="it is deployed to Development, QA, Production"):
        run_operator(OdcDeleteAssetOperator(task_id="delete", asset=app["name"], **FAST))
    assert still_there(app["assetKey"])
    library = asset_of(fast_emulator, asset_type="LowCodeLibrary", deployed_to=None)
    fast_emulator.fail_next("deletion_analysis_warnings", messages=["An old revision of Reports used it"])
    with pytest.raises(OdcOperationFailed, match="allow_warnings"):
        run_operator(OdcDeleteAssetOperator(task_id="delete", asset=library["name"], **FAST))
    assert still_there(library["assetKey"])
    result, _ = run_operator(
        OdcDeleteAssetOperator(task_id="delete", asset=app["name"], allow_deployed=True, analyse_only=True, **FAST)
    )
    assert result["deleted"] is False and result["deployedEnvironments"] == ["Development", "QA", "Production"]
    assert still_there(app["assetKey"])


def test_requests_and_answers_match_the_specs(contract: Any, fast_emulator: Any, exchanges: list[Any]) -> None:
    app = asset_of(fast_emulator)
    library = asset_of(fast_emulator, asset_type="LowCodeLibrary", deployed_to=None)
    run_operator(gate(app))
    fast_emulator.fail_next("deployment_analysis_errors", messages=[FINDING])
    with pytest.raises(OdcOperationFailed):
        run_operator(gate(app))
    run_operator(OdcDeleteAssetOperator(task_id="delete", asset=library["name"], **FAST))
    from airflow_provider_odc.operators.configurations import OdcPatchConfigurationsOperator

    run_operator(OdcPatchConfigurationsOperator(task_id="p", asset=app["name"], stage="QA", settings={"MaxItems": "9"}))
    checked = set()
    for method, path, body, response in exchanges:
        route = spec_route(contract, path)
        assert route is not None, f"{method} {path} is not in the official specs"
        spec, base, template = route
        operation = spec["paths"][template][method.lower()]
        if body is not None:
            schema = operation["requestBody"]["content"]["application/json"]["schema"]
            contract.validate_schema(spec, schema, body)
        if response.content:
            contract.validate(base + template, method, response.status_code, json.loads(response.content))
        checked.add(f"{method} {base}{template}")
    assert {
        "POST /api/dependency-management/v1/deployment-analyses",
        "GET /api/dependency-management/v1/deployment-analyses/{analysisKey}",
        "POST /api/dependency-management/v1/deletion-analyses",
        "GET /api/dependency-management/v1/deletion-analyses/{analysisKey}",
        "DELETE /api/asset-repository/v1/assets/{assetKey}",
        "GET /api/asset-configurations/v1/environments/{environmentKey}/applications/{applicationKey}"
        "/revisions/deployed/configurations",
        "PATCH /api/asset-configurations/v1/environments/{environmentKey}/applications/{applicationKey}/configurations",
    } <= checked
