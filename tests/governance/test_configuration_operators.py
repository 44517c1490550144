"""Stage configuration operators against the emulator: read, patch, apply and wait, and where secrets go.

The secret tests switch Airflow's log masking off (``airflow_masking_off``) so they see what the provider
itself writes, and look for the secret in every log record (DEBUG included), every XCom, the error texts and
the operator's rendered template fields.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

try:
    from airflow.sdk.log import redact
except ImportError:  # Airflow 3.0
    from airflow.sdk.execution_time.secrets_masker import redact

from airflow_provider_odc.api.asset_configurations import AssetConfiguration
from airflow_provider_odc.exceptions import OdcError
from airflow_provider_odc.hooks.odc import OdcHook
from airflow_provider_odc.operators.configurations import (
    CHANGES_XCOM_KEY,
    OdcGetConfigurationsOperator,
    OdcPatchConfigurationsOperator,
    OdcStageSystemConfigurationsOperator,
)

from ..lifecycle.conftest import run_operator
from .conftest import FAST, asset_of

SECRET = "sk_live_9f8e7d6c5b4a3210"
INTEGRATION_SECRET = "pw-Integration-42-xyz"


def deployed_configuration(app: dict[str, Any], stage: str = "QA") -> AssetConfiguration:
    hook = OdcHook()
    return hook.get_asset_configuration(app["assetKey"], hook.resolve_stage(stage).key)


def value(configuration: AssetConfiguration, name: str) -> Any:
    return next(v for v in configuration.settings if v.name == name)


def test_read_returns_the_configuration_with_secrets_hidden(fast_emulator: Any) -> None:
    app = asset_of(fast_emulator)
    result, _ = run_operator(OdcGetConfigurationsOperator(task_id="read", asset=app["name"], stage="QA"))
    names = {item["name"]: item for item in result["settings"]}
    assert names["ApiUrl"]["value"] == "https://api.example.test"
    assert names["ApiKey"]["isSecret"] is True and names["ApiKey"]["value"] is None
    assert result["revisionDeployed"] == app["deployed"]["QA"]["revision"]
    assert result["timers"][0]["name"] == "NightlySync" and result["pending"] == []


def test_summary_never_holds_a_secret_odc_returned() -> None:
    """ODC does not document whether it returns secret values: when it does, the summary hides them."""
    body = {
        "settings": [
            {"key": "k1", "name": "ApiKey", "isSecret": True, "value": SECRET, "deployedValue": SECRET + "-old"},
            {
                "key": "k2",
                "name": "ApiUrl",
                "isSecret": False,
                "value": "https://x.test",
                "deployedValue": "https://x.test",
            },
        ],
        "integrations": [
            {
                "key": "i1",
                "name": "Pay",
                "configs": [{"key": "p", "name": "Password", "isSecret": True, "value": SECRET}],
            }
        ],
    }
    summary = AssetConfiguration.from_json(body).summary()
    assert SECRET not in str(summary)
    assert summary["settings"][0]["value"] == "***" and summary["settings"][1]["value"] == "https://x.test"


def test_patch_then_apply_and_wait(fast_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # A Variable key Airflow would not mask by itself: the operator must.
    monkeypatch.setenv("AIRFLOW_VAR_PAYMENTS_CREDENTIAL", SECRET)
    monkeypatch.setenv("AIRFLOW_CONN_PAYMENTS_API", f'{{"conn_type": "http", "password": "{INTEGRATION_SECRET}"}}')
    app = asset_of(fast_emulator)
    operator = OdcPatchConfigurationsOperator(
        task_id="patch",
        asset=app["name"],
        stage="QA",
        settings={"ApiUrl": "https://payments.v2.test", "MaxItems": "75"},
        timers={"NightlySync": {"IsActive": "False"}},
        integrations={"PaymentsApi": {"BaseUrl": "https://pay.v2.test"}},
        secret_settings={"ApiKey": "variable:payments_credential"},
        secret_integrations={"PaymentsApi": {"Password": "connection:payments_api"}},
        deferrable=True,
        **FAST,
    )
    key, ti = run_operator(operator)
    assert ti.xcom["operation_key"] == key
    changes = ti.xcom[CHANGES_XCOM_KEY]
    assert changes["changed"] == {
        "settings": ["ApiUrl", "MaxItems", "ApiKey"],
        "timers": ["NightlySync.IsActive"],
        "integrations": ["PaymentsApi.BaseUrl", "PaymentsApi.Password"],
    }
    assert fast_emulator.stats()["operations_started"]["apply_configs"] == 1
    after = deployed_configuration(app)
    assert value(after, "ApiUrl").deployed_value == "https://payments.v2.test"
    assert value(after, "ApiKey").value_set_after_deploy is False, "the secret was applied"
    assert after.pending == []
    assert redact(f"key={SECRET}") == "key=***" and redact(f"pw={INTEGRATION_SECRET}") == "pw=***"


def test_patch_without_apply_leaves_values_pending(fast_emulator: Any) -> None:
    app = asset_of(fast_emulator)
    operator = OdcPatchConfigurationsOperator(
        task_id="patch", asset=app["name"], stage="QA", settings={"FeatureEnabled": "True"}, apply=False
    )
    result, ti = run_operator(operator)
    assert result is None and "operation_key" not in ti.xcom
    assert fast_emulator.stats()["operations_started"]["apply_configs"] == 0
    assert [route for route in fast_emulator.stats()["api_calls"] if route.startswith("PATCH ")] == [
        "PATCH /api/asset-configurations/v1/environments/{environmentKey}/applications/{applicationKey}/configurations"
    ]
    assert deployed_configuration(app).pending == ["FeatureEnabled"]


def test_secrets_leave_no_trace(
    airflow_masking_off: None,
    fast_emulator: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The secret reaches ODC, and nothing else: not a log line (DEBUG), an XCom or a rendered field."""
    monkeypatch.setenv("AIRFLOW_VAR_PAYMENTS_API_KEY", SECRET)
    sent: list[Any] = []
    import requests

    original = requests.Session.request

    def recording(self: requests.Session, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        sent.append(kwargs.get("json"))
        return original(self, method, url, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "request", recording)
    caplog.set_level(logging.DEBUG)
    app = asset_of(fast_emulator)
    operator = OdcPatchConfigurationsOperator(
        task_id="patch",
        asset="{{ params.asset }}",
        stage="QA",
        settings={"ApiUrl": "https://x.test"},
        secret_settings={"ApiKey": "variable:payments_api_key"},
        **FAST,
    )
    operator.render_template_fields({"params": {"asset": app["name"]}})  # type: ignore[arg-type]
    rendered = {name: getattr(operator, name) for name in operator.template_fields}
    _, ti = run_operator(operator)

    assert any(SECRET in str(body) for body in sent), "the secret was sent to ODC"
    assert SECRET not in str(rendered)
    assert SECRET not in str(ti.xcom)
    printed = capsys.readouterr()  # the task SDK's structlog prints what operators log
    everything = "\n".join([*(record.getMessage() for record in caplog.records), printed.out, printed.err])
    assert "Patched" in everything and "ApiKey" in everything, "the operator's log lines were not captured"
    assert SECRET not in everything


def test_a_secret_as_a_plain_value_is_refused(fast_emulator: Any) -> None:
    with pytest.raises(ValueError, match="looks like a secret") as refused:
        OdcPatchConfigurationsOperator(task_id="p", asset="a", stage="QA", settings={"ApiKey": SECRET})
    assert SECRET not in str(refused.value)
    with pytest.raises(ValueError, match="looks like a secret"):
        OdcPatchConfigurationsOperator(
            task_id="p", asset="a", stage="QA", integrations={"PaymentsApi": {"Password": SECRET}}
        )
    with pytest.raises(ValueError, match="is not a reference") as literal:
        OdcPatchConfigurationsOperator(task_id="p", asset="a", stage="QA", secret_settings={"ApiKey": SECRET})
    assert SECRET not in str(literal.value)


def test_a_plain_value_for_a_setting_odc_marks_secret_is_refused_before_sending(fast_emulator: Any) -> None:
    """``LicenseCode`` has a harmless name, but ODC says it is a secret: nothing is sent, the value is masked."""
    app = asset_of(fast_emulator)
    operator = OdcPatchConfigurationsOperator(
        task_id="p", asset=app["name"], stage="QA", settings={"LicenseCode": SECRET, "ApiUrl": "https://x.test"}
    )
    with pytest.raises(OdcError, match="LicenseCode is a secret in ODC") as refused:
        run_operator(operator)
    assert SECRET not in str(refused.value)
    assert redact(f"code={SECRET}") == "code=***"
    patches = [route for route in fast_emulator.stats()["api_calls"] if route.startswith("PATCH ")]
    assert patches == [], "nothing was sent"
    assert deployed_configuration(app).pending == []


def test_unknown_names_and_odc_refusals_say_what(fast_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    app = asset_of(fast_emulator)
    unknown = OdcPatchConfigurationsOperator(task_id="p", asset=app["name"], stage="QA", settings={"ApiUrll": "x"})
    with pytest.raises(OdcError, match=r"no configuration value named 'ApiUrll' \(known: .*ApiUrl"):
        run_operator(unknown)
    wrong = OdcPatchConfigurationsOperator(task_id="p", asset=app["name"], stage="QA", settings={"MaxItems": "many"})
    with pytest.raises(OdcError, match="not a valid Integer"):
        run_operator(wrong)
    monkeypatch.delenv("AIRFLOW_VAR_MISSING_KEY", raising=False)
    missing = OdcPatchConfigurationsOperator(
        task_id="p", asset=app["name"], stage="QA", secret_settings={"ApiKey": "variable:missing_key"}
    )
    with pytest.raises(OdcError, match="Variable 'missing_key' could not be read"):
        run_operator(missing)


def test_agents_are_patched_through_their_own_endpoints(fast_emulator: Any, exchanges: list[Any]) -> None:
    agent = asset_of(fast_emulator, asset_type="Agent")
    operator = OdcPatchConfigurationsOperator(
        task_id="p", asset=agent["name"], stage="Production", settings={"MaxItems": "5"}, **FAST
    )
    run_operator(operator)
    paths = [path for method, path, _, _ in exchanges if method == "PATCH"]
    assert len(paths) == 1 and f"/agents/{agent['assetKey']}/configurations" in paths[0]


def test_stage_default_system_configurations(fast_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_SMTP_PASSWORD", SECRET)
    operator = OdcStageSystemConfigurationsOperator(
        task_id="sys",
        stage="QA",
        changes={"DefaultTimeZone": "Europe/Lisbon"},
        secret_changes={"SmtpPassword": "variable:smtp_password"},
    )
    result, _ = run_operator(operator)
    by_name = {item["name"]: item for item in result}
    assert by_name["DefaultTimeZone"]["value"] == "Europe/Lisbon"
    assert by_name["SmtpPassword"]["isSecret"] is True and SECRET not in str(result)
    read, _ = run_operator(OdcStageSystemConfigurationsOperator(task_id="read", stage="Production"))
    assert {item["name"]: item for item in read}["DefaultTimeZone"]["value"] == "UTC"
