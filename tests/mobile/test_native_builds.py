"""Native mobile builds against the emulator: suggestions, validation, the deferred build, its artifact
(streamed without our token), the build configurations; and no pre-signed link or signing secret leaves
the task (logs at DEBUG, XCom, return value, error message)."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest

try:
    from airflow.sdk.log import redact
except ImportError:  # Airflow 3.0
    from airflow.sdk.execution_time.secrets_masker import redact

from airflow_provider_odc.emulator.storage import artifact
from airflow_provider_odc.exceptions import OdcError, OdcOperationFailed
from airflow_provider_odc.hooks.odc import OdcHook
from airflow_provider_odc.operators.mobile_builds import (
    OdcMobileBuildConfigurationOperator,
    OdcMobileVersionSuggestionOperator,
    OdcNativeBuildOperator,
)

from .conftest import FAST, MOBILE_APP, Outflow, StateStore, run

SIGNATURE = re.compile(r"X-Amz-Signature=([0-9a-f]{64})")
NATIVE_POST = "POST /api/native-mobile-builds/v1/build-operations"


def scope(emulator: Any, stage: str = "QA") -> tuple[str, str]:
    app = next(a for a in emulator.inventory()["assets"] if a["name"] == MOBILE_APP)
    return emulator.inventory()["environments"][stage], app["assetKey"]


def build(platform: str = "Android", **kwargs: Any) -> OdcNativeBuildOperator:
    return OdcNativeBuildOperator(
        task_id="task", asset=MOBILE_APP, stage="QA", platform=platform, deferrable=True, **FAST, **kwargs
    )


def test_a_deferred_android_build_downloads_its_binary_and_lets_no_link_out(
    fast: Any, outflow: Outflow, tmp_path: Any
) -> None:
    target = tmp_path / "builds" / "app.aab"
    result, ti = run(build(download_to=str(target)))

    assert result["status"] == "Finished" and result["mobilePlatform"] == "Android"
    assert (result["mobileVersionNumber"], result["mobileVersionCode"]) == ("0.1.0", 1), "ODC's first suggestion"
    assert result["links"] == ["appBinaryDownloadUrl"]
    stage_key, app_key = scope(fast)
    name = f"native/{result['operationKey']}.aab"
    expected = artifact(name)
    assert target.read_bytes() == expected
    assert result["artifact"] == {
        "path": str(target),
        "size": len(expected),
        "sha256": hashlib.sha256(expected).hexdigest(),
    }
    assert ti.xcom["native_build_scope"] == {"environmentKey": stage_key, "applicationKey": app_key}

    # The download went to the storage's own origin, without a token.
    storage = [r for r in fast.recent_requests(200) if r["path"].startswith("/_storage/native/")]
    assert [(r["method"], r["authorization"], r["status"]) for r in storage] == [("GET", False, 200)]
    assert fast.state.storage.requests_with_authorization() == 0

    # A fresh link, read the way a later task would: masked the moment the hook holds it.
    fresh = OdcHook().get_native_build(result["operationKey"], stage_key, app_key)
    link = fresh.links["appBinaryDownloadUrl"]
    assert redact(f"link={link}") == "link=***"
    assert link not in repr(fresh) and "appBinaryDownloadUrl" not in str(fresh.summary().values()).replace(
        "'appBinaryDownloadUrl'", ""
    )

    outflow.add(result, ti.xcom)
    everything = outflow.text()
    assert "ODC native build" in everything and "ODC GET" in everything, "the task's DEBUG lines were not captured"
    signatures = {m.group(1) for r in storage for m in [SIGNATURE.search(r["query"])] if m}
    assert signatures, "the emulator should have recorded the signed query"
    for signature in signatures:
        assert signature not in everything
    assert not SIGNATURE.search(everything)


def test_the_next_build_gets_the_next_suggested_version_and_can_be_skipped_when_up_to_date(fast: Any) -> None:
    run(build(platform="iOS"))
    suggested, _ = run(OdcMobileVersionSuggestionOperator(task_id="task", asset=MOBILE_APP, stage="QA"))
    assert suggested == {
        "Android": {"mobileVersionNumber": "0.1.0", "mobileVersionCode": 1},
        "iOS": {"mobileVersionNumber": "0.1.1", "mobileVersionCode": 2},
    }
    posts = fast.stats()["api_calls"][NATIVE_POST]
    skipped, _ = run(build(platform="iOS", only_if_needed=True))
    assert skipped["status"] == "NativeBuildNotNeeded"
    assert fast.stats()["api_calls"][NATIVE_POST] == posts, "no build was started"
    given, _ = run(build(platform="iOS", mobile_version_number="2.0.0", mobile_version_code="40"))
    assert (given["mobileVersionNumber"], given["mobileVersionCode"]) == ("2.0.0", 40)


def test_a_missing_configuration_fails_before_any_build_is_started(fast: Any) -> None:
    stage_key, app_key = scope(fast)
    OdcHook().patch_mobile_configuration(stage_key, app_key, "Android", {"keystore": None})
    with pytest.raises(OdcError, match="MissingConfiguration") as caught:
        run(build())
    assert "OdcMobileBuildConfigurationOperator" in str(caught.value)
    assert NATIVE_POST not in fast.stats()["api_calls"]


def test_a_failed_build_fails_with_what_odc_said(fast: Any) -> None:
    fast.fail_next("native_build", messages=["The keystore password is wrong."])
    with pytest.raises(OdcOperationFailed, match="keystore password is wrong") as caught:
        run(build())
    assert "ended with status Error" in str(caught.value)


def test_not_deployed_on_the_stage_is_a_clear_error(fast: Any) -> None:
    operator = OdcNativeBuildOperator(task_id="task", asset="Loan Origination 002", stage="QA", platform="android")
    with pytest.raises(OdcError, match="is not deployed on stage QA"):
        run(operator)


def test_bad_arguments_are_refused_at_parse_time() -> None:
    with pytest.raises(ValueError, match="'Android' or 'iOS'"):
        OdcNativeBuildOperator(task_id="t", asset="a", stage="s", platform="Windows")
    with pytest.raises(ValueError, match="signing_conn_id"):
        OdcMobileBuildConfigurationOperator(
            task_id="t", asset="a", stage="s", platform="Android", settings={"keystorePassword": "x"}
        )
    with pytest.raises(ValueError, match="unknown iOS build configuration field"):
        OdcMobileBuildConfigurationOperator(
            task_id="t", asset="a", stage="s", platform="iOS", settings={"keystoreName": "x"}
        )


SIGNING = {
    "keystore": "c2lnbmluZy1rZXlzdG9yZS1ieXRlcy0xMjM0NTY3OA==",
    "alias": "release-key-alias-5531",
    "aliasPassword": "alias-password-7720-secret",
}
KEYSTORE_PASSWORD = "keystore-password-9914-secret"


def test_the_configuration_operator_sets_signing_material_from_a_connection_and_never_shows_it(
    fast: Any, outflow: Outflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    connection = {"conn_type": "generic", "password": KEYSTORE_PASSWORD, "extra": SIGNING}
    monkeypatch.setenv("AIRFLOW_CONN_ANDROID_SIGNING", json.dumps(connection))
    fast.advance(60)
    operator = OdcMobileBuildConfigurationOperator(
        task_id="task",
        asset=MOBILE_APP,
        stage="QA",
        platform="Android",
        settings={"appIdentifier": "com.acme.customer360", "buildType": "Bundle"},
        signing_conn_id="android_signing",
    )
    result, ti = run(operator)

    assert result["settings"]["appIdentifier"] == "com.acme.customer360"
    assert result["settings"]["buildType"] == "Bundle"
    assert set(result["secretsSet"]) == {"keystore", "keystorePassword", "alias", "aliasPassword"}
    stage_key, app_key = scope(fast)
    stored = fast.state.mobile.configuration(stage_key, app_key, "Android")
    assert all(stored[name]["value"] is None for name in result["secretsSet"]), "the emulator returns no secret"
    changed = fast.state.mobile._configs.values[(stage_key, app_key, "Android")]
    assert changed["keystorePassword"] == KEYSTORE_PASSWORD and changed["alias"] == SIGNING["alias"]
    for value in [KEYSTORE_PASSWORD, *SIGNING.values()]:
        assert redact(f"v={value}") == "v=***"

    outflow.add(result, ti.xcom, operator.settings, repr(operator.__dict__))
    everything = outflow.text()
    assert "Changed the Android build configuration" in everything and "keystorePassword" in everything
    for value in [KEYSTORE_PASSWORD, *SIGNING.values()]:
        assert value not in everything


def test_a_signing_connection_with_unknown_fields_is_refused_naming_them(
    fast: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    monkeypatch.setenv("AIRFLOW_CONN_IOS_SIGNING", json.dumps({"conn_type": "generic", "extra": {"keystore": "x"}}))
    operator = OdcMobileBuildConfigurationOperator(
        task_id="task", asset=MOBILE_APP, stage="QA", platform="iOS", signing_conn_id="ios_signing"
    )
    with pytest.raises(OdcError, match=r"ios_signing.*keystore.*certificate"):
        run(operator)


def test_an_unwritable_download_target_is_a_clear_error(fast: Any) -> None:
    expected = r"could not be written to /proc/odc-nope/app\.aab.*writable local path"
    with pytest.raises(OdcError, match=expected) as caught:
        run(build(download_to="/proc/odc-nope/app.aab"))
    assert "X-Amz" not in str(caught.value)


def test_a_retry_attaches_to_the_build_its_earlier_try_started(fast: Any) -> None:
    store = StateStore()
    first, _ = run(build(wait_for_completion=False), store=store)
    assert first["status"] == "Waiting" and fast.stats()["api_calls"][NATIVE_POST] == 1
    again, ti = run(build(), store=store, try_number=2)
    assert again["operationKey"] == first["operationKey"] and again["status"] == "Finished"
    assert fast.stats()["api_calls"][NATIVE_POST] == 1, "the retry started no second build"
    assert ti.xcom["operation_key"] == first["operationKey"]

    fast.fail_next("native_build", messages=["Out of build minutes."])
    failed_store = StateStore()
    with pytest.raises(OdcOperationFailed):
        run(build(), store=failed_store)
    retried, _ = run(build(), store=failed_store, try_number=2)
    assert retried["status"] == "Finished" and fast.stats()["api_calls"][NATIVE_POST] == 3, "a failed one is not reused"
