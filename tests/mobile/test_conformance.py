"""What the mobile build and external library operators send to ODC, and what the emulator answers, checked
against the official OpenAPI specs (request bodies and response bodies, success and failure outcomes)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_provider_odc.exceptions import OdcError, OdcOperationFailed
from airflow_provider_odc.hooks.odc import OdcHook
from airflow_provider_odc.operators.external_libraries import OdcExternalLibraryOperator
from airflow_provider_odc.operators.mobile_builds import (
    OdcMobileBuildConfigurationOperator,
    OdcMobileVersionSuggestionOperator,
    OdcNativeBuildOperator,
)

from ..emulator.conftest import OpenApiContract
from ..lifecycle.test_conformance import contract, exchanges  # noqa: F401  (fixtures)
from .conftest import FAST, MOBILE_APP, run, zip_bytes

NATIVE = "/api/native-mobile-builds/v1"


def spec_route(contract: OpenApiContract, method: str, path: str) -> tuple[dict[str, Any], str, str] | None:  # noqa: F811
    """(spec, base, template) of a request: the template with that method, literal segments before
    parameters (``/build-operations/version-suggestions`` is not ``/build-operations/{operationKey}``)."""
    for base, spec in contract.specs.items():
        if not path.startswith(base):
            continue
        matches = [
            template
            for template, operations in spec["paths"].items()
            if method.lower() in operations and re.fullmatch(re.sub(r"\{[^/]+\}", "[^/]+", template), path[len(base) :])
        ]
        if matches:
            return spec, base, min(matches, key=lambda template: template.count("{"))
    return None


LIBRARIES = "/api/external-libraries/v1"


def test_mobile_and_library_calls_match_the_specs(
    contract: OpenApiContract,  # noqa: F811
    fast: Any,
    exchanges: list[tuple[str, str, Any, requests.Response]],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SIGNING", json.dumps({"conn_type": "generic", "password": "pw-1234567890"}))
    for platform in ("Android", "iOS"):
        run(
            OdcMobileBuildConfigurationOperator(
                task_id="task",
                asset=MOBILE_APP,
                stage="QA",
                platform=platform,
                settings={"mabsVersion": "11.1", "mobileFramework": "Capacitor"},
                signing_conn_id="signing",
            )
        )
        run(OdcNativeBuildOperator(task_id="task", asset=MOBILE_APP, stage="QA", platform=platform, **FAST))
    run(OdcMobileVersionSuggestionOperator(task_id="task", asset=MOBILE_APP, stage="QA"))
    fast.fail_next("native_build", messages=["Signing failed."])
    with pytest.raises(OdcOperationFailed):
        run(OdcNativeBuildOperator(task_id="task", asset=MOBILE_APP, stage="QA", platform="iOS", **FAST))
    stage_key = fast.inventory()["environments"]["QA"]
    app_key = next(a["assetKey"] for a in fast.inventory()["assets"] if a["name"] == MOBILE_APP)
    with pytest.raises(OdcError):  # 404: an unknown app
        OdcHook().get_mobile_configuration(stage_key, stage_key, "Android")
    OdcHook().validate_native_build(stage_key, app_key, app_key, 1)  # both platforms

    good = tmp_path / "Lib.zip"
    good.write_bytes(zip_bytes({"Lib.dll": b"MZ"}))
    run(OdcExternalLibraryOperator(task_id="task", source=str(good), **FAST))
    bad = tmp_path / "Bad.zip"
    bad.write_bytes(b"nope")
    with pytest.raises(OdcOperationFailed):
        run(OdcExternalLibraryOperator(task_id="task", source=str(bad), **FAST))

    checked: set[str] = set()
    for method, path, body, response in exchanges:
        if not path.startswith((NATIVE, LIBRARIES)):
            continue
        route = spec_route(contract, method, path)
        assert route is not None, f"{method} {path} is not in the official specs"
        spec, base, template = route
        operation = spec["paths"][template][method.lower()]
        if body is not None:
            schema = operation["requestBody"]["content"]["application/json"]["schema"]
            contract.validate_schema(spec, schema, body)
            checked.add(f"{method} {template} body")
        if response.content:
            contract.validate(base + template, method, response.status_code, json.loads(response.content))
            checked.add(f"{method} {template} {response.status_code}")
    configuration = "/environments/{environmentKey}/applications/{applicationKey}/configurations"
    assert {
        "POST /build-operations/version-suggestions body",
        "POST /build-operations/version-suggestions 200",
        "POST /build-operations/native-build-validation body",
        "POST /build-operations/native-build-validation 200",
        "POST /build-operations body",
        "POST /build-operations 201",
        "GET /build-operations/{operationKey} 200",
        "GET /build-operations/{operationKey}/log-messages 200",
        f"PATCH {configuration}/android body",
        f"PATCH {configuration}/ios body",
        f"GET {configuration}/android 200",
        f"GET {configuration}/ios 200",
        f"GET {configuration}/android 404",
        "GET /uploads 200",
        "POST /generation-operations body",
        "POST /generation-operations 201",
        "GET /generation-operations/{operationKey} 200",
        "GET /generation-operations/{operationKey}/log-messages 200",
    } <= checked, checked
