"""What the operators send to ODC, and what they get back, checked against the official OpenAPI specs.

Every request body the release operators send is validated against the spec's ``requestBody`` schema
for that path and method, and every JSON response against the declared response schema. The specs
are read from ``ODC_OPENAPI_DIR`` (default ``../shared/odc-openapi``); where they are absent (they may not
be redistributed) the test is skipped with that reason, and under CI it fails.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import requests

from airflow_provider_odc.exceptions import OdcOperationFailed
from airflow_provider_odc.operators.lifecycle import (
    OdcApplyConfigsOperator,
    OdcBuildOperator,
    OdcDeployOperator,
    OdcPublishOperator,
    OdcTagRevisionOperator,
    OdcUndeployOperator,
)

from ..emulator.conftest import OpenApiContract, openapi_dir, specs_missing_reason
from ..required import missing
from .conftest import run_operator, web_app

FAST = {"fast_interval": 0.05, "fast_period": 5, "slow_interval": 0.05}


def spec_route(contract: OpenApiContract, path: str) -> tuple[dict[str, Any], str, str] | None:
    """(spec, base, templated sub-path) of a concrete request path, or None when no spec covers it."""
    for base, spec in contract.specs.items():
        if not path.startswith(base):
            continue
        for template in spec["paths"]:
            if re.fullmatch(re.sub(r"\{[^/]+\}", "[^/]+", template), path[len(base) :]):
                return spec, base, template
    return None


@pytest.fixture(scope="module")
def contract() -> OpenApiContract:
    reason = specs_missing_reason()
    if reason is not None:
        missing(reason)  # a skip that says why; under CI a failure
    return OpenApiContract(openapi_dir())


@pytest.fixture
def exchanges(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, Any, requests.Response]]:
    """Every API call made through requests: method, path, JSON body sent, response."""
    seen: list[tuple[str, str, Any, requests.Response]] = []
    original = requests.Session.request

    def recording(self: requests.Session, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        response = original(self, method, url, *args, **kwargs)
        path = urlsplit(url).path
        if path.startswith("/api/"):
            seen.append((method.upper(), path, kwargs.get("json"), response))
        return response

    monkeypatch.setattr(requests.Session, "request", recording)
    return seen


def test_operator_requests_and_responses_match_the_specs(
    contract: OpenApiContract, fast_emulator: Any, exchanges: list[tuple[str, str, Any, requests.Response]]
) -> None:
    built = web_app(fast_emulator, with_release_build=False)
    deployed = web_app(fast_emulator, with_release_build=True)
    run_operator(OdcBuildOperator(task_id="build", asset=built["name"], **FAST))
    run_operator(OdcDeployOperator(task_id="deploy", asset=built["name"], stage="QA", **FAST))
    run_operator(OdcApplyConfigsOperator(task_id="cfg", asset=deployed["name"], stage="Production", **FAST))
    run_operator(OdcUndeployOperator(task_id="undeploy", asset=deployed["name"], stage="Production", **FAST))
    run_operator(OdcPublishOperator(task_id="publish", asset=deployed["name"], **FAST))
    major = int((deployed["highestTag"] or "0.0.0").split(".")[0]) + 1
    run_operator(OdcTagRevisionOperator(task_id="tag", asset=deployed["name"], revision="latest", tag=f"{major}.0.0"))

    bodies_checked, responses_checked = set(), set()
    for method, path, body, response in exchanges:
        route = spec_route(contract, path)
        assert route is not None, f"{method} {path} is not in the official specs"
        spec, base, template = route
        operation = spec["paths"][template][method.lower()]
        if body is not None:
            schema = operation["requestBody"]["content"]["application/json"]["schema"]
            contract.validate_schema(spec, schema, body)
            bodies_checked.add(f"{method} {base}{template}")
        if response.content and response.headers.get("content-type", "").startswith("application/json"):
            contract.validate(base + template, method, response.status_code, json.loads(response.content))
            responses_checked.add(f"{method} {base}{template}")

    assert bodies_checked == {
        "POST /api/builds/v1/build-operations",
        "POST /api/deployments/v1/deployment-operations",
        "POST /api/deployments/v1/publish-operations",
        "PATCH /api/asset-repository/v1/assets/{assetKey}/revisions/{revisionNumber}",
    }
    assert "GET /api/deployments/v1/deployment-operations/{operationKey}" in responses_checked
    assert "GET /api/builds/v1/build-operations/{operationKey}" in responses_checked


def test_a_body_off_the_spec_is_caught(contract: OpenApiContract) -> None:
    """The check itself can fail: a field the spec does not allow is rejected."""
    spec, _, template = spec_route(contract, "/api/deployments/v1/deployment-operations") or ({}, "", "")
    schema = spec["paths"][template]["post"]["requestBody"]["content"]["application/json"]["schema"]
    with pytest.raises(jsonschema.ValidationError, match="'stage' was unexpected"):
        contract.validate_schema(
            spec,
            schema,
            {"operation": "Deploy", "environmentKey": "6f1f1e0c-8a9e-4a51-9c51-3f5a0f7a2b11", "stage": "QA"},
        )


def test_every_operation_kind_matches_the_specs(
    contract: OpenApiContract, fast_emulator: Any, exchanges: list[tuple[str, str, Any, requests.Response]]
) -> None:
    """Each kind started, polled to its end and, failing, explained: every body sent and every JSON answer
    (status bodies, messages, reports) validates against the official spec of its path."""
    from .test_operation_kinds import CASES, MESSAGE, sensor, slow

    slow(fast_emulator)
    for case in CASES:
        fast_emulator.fail_next(case.fail_with, messages=[MESSAGE])
        key, params = case.start(fast_emulator)
        fast_emulator.advance(60 + 1)
        with pytest.raises(OdcOperationFailed):
            sensor(case.kind, key, params).poke({})
    for case in {case.kind: case for case in CASES}.values():
        key, params = case.start(fast_emulator)
        fast_emulator.advance(60 + 1)
        assert sensor(case.kind, key, params).poke({}) is True

    bodies_checked, responses_checked = set(), set()
    for method, path, body, response in exchanges:
        route = spec_route(contract, path)
        assert route is not None, f"{method} {path} is not in the official specs"
        spec, base, template = route
        operation = spec["paths"][template][method.lower()]
        if body is not None:
            schema = operation["requestBody"]["content"]["application/json"]["schema"]
            contract.validate_schema(spec, schema, body)
            bodies_checked.add(f"{method} {base}{template}")
        assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text[:300]}"
        if response.content:
            contract.validate(base + template, method, response.status_code, json.loads(response.content))
            responses_checked.add(f"{method} {base}{template}")
    assert {
        "POST /api/dependency-management/v1/deployment-analyses",
        "POST /api/dependency-management/v1/deletion-analyses",
        "POST /api/code-quality/v1/code-analyses",
        "POST /api/external-libraries/v1/generation-operations",
        "POST /api/native-mobile-builds/v1/build-operations",
        "POST /api/identity/v1/users/bulk",
    } <= bodies_checked
    assert {
        "GET /api/builds/v1/build-operations/{operationKey}/generated-code",
        "GET /api/dependency-management/v1/deployment-analyses/{analysisKey}",
        "GET /api/dependency-management/v1/deletion-analyses/{analysisKey}",
        "GET /api/code-quality/v1/code-analyses/{analysisKey}",
        "GET /api/external-libraries/v1/generation-operations/{operationKey}",
        "GET /api/external-libraries/v1/generation-operations/{operationKey}/log-messages",
        "GET /api/native-mobile-builds/v1/build-operations/{operationKey}",
        "GET /api/native-mobile-builds/v1/build-operations/{operationKey}/log-messages",
        "GET /api/identity/v1/users/bulk/{key}",
    } <= responses_checked


def test_lookups_after_a_lost_answer_ask_only_what_the_specs_declare(
    contract: OpenApiContract, fast_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The list queries that find an operation whose POST answer was lost: every query parameter is one
    the spec declares for that list, every answer matches its schema."""
    queries: list[tuple[str, dict[str, Any], requests.Response]] = []
    original = requests.Session.request

    def recording(self: requests.Session, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        response = original(self, method, url, *args, **kwargs)
        path = urlsplit(url).path
        if method.upper() == "GET" and path.endswith("-operations"):
            queries.append((path, dict(kwargs.get("params") or {}), response))
        return response

    monkeypatch.setattr(requests.Session, "request", recording)
    built = web_app(fast_emulator, with_release_build=False)
    deployed = web_app(fast_emulator, with_release_build=True)
    deploy = OdcDeployOperator(task_id="d", asset=deployed["name"], stage="QA", **FAST)
    publish = OdcPublishOperator(task_id="p", asset=deployed["name"], stage="QA", **FAST)
    operators = [
        ("/api/builds/v1/build-operations", OdcBuildOperator(task_id="b", asset=built["name"], **FAST)),
        ("/api/deployments/v1/deployment-operations", deploy),
        ("/api/deployments/v1/publish-operations", publish),
    ]
    for path, operator in operators:
        fast_emulator.add_fault(path_prefix=path, method="POST", drop_response=True)
        run_operator(operator)

    checked = set()
    for path, params, response in queries:
        route = spec_route(contract, path)
        assert route is not None
        spec, base, template = route
        declared = {parameter["name"] for parameter in spec["paths"][template]["get"].get("parameters", [])}
        assert set(params) <= declared, f"GET {path} sends {sorted(set(params) - declared)}, not in the spec"
        assert response.status_code == 200
        contract.validate(base + template, "GET", 200, response.json())
        checked.add(path)
    assert checked == {path for path, _ in operators}
    started = fast_emulator.stats()["operations_started"]
    assert (started["build"], started["deploy"], started["publish"]) == (1, 1, 1)
