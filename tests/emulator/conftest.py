"""Helpers for the emulator tests: a tiny ODC client over real sockets and an OpenAPI contract checker.

Every API response fetched through ``OdcClient.get`` / ``post`` / ``patch`` is validated against the official
ODC OpenAPI spec (when the spec folder is available), so any test that calls the API is also a contract test.
"""

from __future__ import annotations

import base64
import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests

from airflow_provider_odc.emulator.server import OdcEmulator

from ..required import IN_CI, missing

TIMEOUT = 10
ASSETS = "/api/asset-repository/v1/assets"
ASSET = "/api/asset-repository/v1/assets/{assetKey}"
ENVIRONMENTS = "/api/portfolios/v2/environments"
SPEC_FILES = {
    "/api/asset-repository/v1": "asset-repository-api-v1.json",
    "/api/asset-configurations/v1": "asset-configurations-api-v1.json",
    "/api/portfolios/v2": "portfolio-api-v2.json",
    "/api/builds/v1": "build-operations-api-v1.json",
    "/api/deployments/v1": "deployments-api-v1.json",
    "/api/dependency-management/v1": "dependency-management-api-v1.json",
    "/api/code-quality/v1": "code-quality-api-v1.json",
    "/api/external-libraries/v1": "external-library-generation-api-v1.json",
    "/api/native-mobile-builds/v1": "native-application-orchestration-service-api-v1.json",
    "/api/identity/v1": "user-access-management-api-v1.json",
}


def openapi_dir() -> Path:
    """``ODC_OPENAPI_DIR`` or ``../shared/odc-openapi`` next to the repository (where CI puts it)."""
    default = Path(__file__).resolve().parents[3] / "shared" / "odc-openapi"
    return Path(os.environ.get("ODC_OPENAPI_DIR", default))


def to_json_schema(schema: Any) -> Any:
    """Adapt an OpenAPI 3.0 schema object to JSON Schema: ``nullable: true`` becomes "or null"."""
    if not isinstance(schema, dict):
        return schema
    converted: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "nullable":
            continue
        if key == "properties":
            converted[key] = {name: to_json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            converted[key] = to_json_schema(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            converted[key] = [to_json_schema(sub) for sub in value]
        else:
            converted[key] = value
    if schema.get("nullable") is True:
        if "type" in converted:
            converted["type"] = [converted["type"], "null"]
            if "enum" in converted:
                converted["enum"] = [*converted["enum"], None]
        else:
            converted = {"anyOf": [{"type": "null"}, converted]}
    return converted


class OpenApiContract:
    """Validates a response body against the schema the spec declares for (path, method, status)."""

    def __init__(self, directory: Path) -> None:
        self.specs: dict[str, dict[str, Any]] = {}
        for base, filename in SPEC_FILES.items():
            self.specs[base] = json.loads((directory / filename).read_text(encoding="utf-8"))

    def schema_for(self, route: str, method: str, status: int) -> tuple[dict[str, Any], dict[str, Any]]:
        base = next(prefix for prefix in self.specs if route.startswith(prefix))
        spec = self.specs[base]
        responses = spec["paths"][route[len(base) :]][method.lower()]["responses"]
        response = responses.get(str(status))
        if response is None and status == 429 and "ProblemDetails" in spec["components"]["schemas"]:
            # ODC's rate-limiting page limits every domain, also operations whose spec lists no 429 (code
            # quality, asset configurations, ...): their 429 is the API's ProblemDetails, not the default body.
            return spec, {"$ref": "#/components/schemas/ProblemDetails"}
        response = response or responses.get("default")
        assert response is not None, f"the spec declares no {status} (nor default) for {method} {route}"
        return spec, response["content"]["application/json"]["schema"]

    def knows(self, route: str) -> bool:
        return any(route.startswith(base) and route[len(base) :] in spec["paths"] for base, spec in self.specs.items())

    def validate(self, route: str, method: str, status: int, body: Any) -> None:
        spec, schema = self.schema_for(route, method, status)
        self.validate_schema(spec, schema, body)

    def validate_named(self, spec_file: str, name: str, body: Any) -> None:
        spec = next(s for b, s in self.specs.items() if SPEC_FILES[b] == spec_file)
        self.validate_schema(spec, {"$ref": f"#/components/schemas/{name}"}, body)

    @staticmethod
    def validate_schema(spec: dict[str, Any], schema: dict[str, Any], body: Any) -> None:
        components = {name: to_json_schema(s) for name, s in spec["components"]["schemas"].items()}
        root = {**to_json_schema(schema), "components": {"schemas": components}}
        validator = jsonschema.Draft202012Validator(root, format_checker=jsonschema.FormatChecker())
        validator.validate(body)


def specs_missing_reason() -> str | None:
    """Why the specs cannot be read, or None when every spec file is there."""
    directory = openapi_dir()
    absent = [name for name in SPEC_FILES.values() if not (directory / name).is_file()]
    if not absent:
        return None
    return f"ODC OpenAPI specs not found in {directory} ({', '.join(absent)}); set ODC_OPENAPI_DIR to their folder"


@pytest.fixture(scope="session")
def openapi_contract() -> OpenApiContract | None:
    """The specs, or None on a developer's machine without them: then the emulator's responses are not checked,
    which a warning says once. Under CI the specs are required (a failure)."""
    reason = specs_missing_reason()
    if reason is None:
        return OpenApiContract(openapi_dir())
    if IN_CI:
        pytest.fail(f"required in CI: {reason}", pytrace=False)
    warnings.warn(f"{reason}: the emulator's responses are NOT checked against the specs", SpecsMissing, stacklevel=1)
    return None


class SpecsMissing(UserWarning):
    """The ODC OpenAPI specs are absent: the contract checks of this run are off."""


@pytest.fixture
def contract(openapi_contract: OpenApiContract | None) -> OpenApiContract:
    """For tests that are only about the contract: skipped, saying why, when the specs are absent (CI: fails)."""
    if openapi_contract is None:
        missing(specs_missing_reason() or "ODC OpenAPI specs not loaded")
    return openapi_contract


def basic_auth(client_id: str, client_secret: str) -> str:
    """RFC 6749 2.3.1: form-encode id and secret, then base64."""
    from urllib.parse import quote_plus

    raw = f"{quote_plus(client_id)}:{quote_plus(client_secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode()


class OdcClient:
    """What a well-behaved ODC client does: discovery, client credentials, bearer calls."""

    def __init__(self, emulator: OdcEmulator, contract: OpenApiContract | None) -> None:
        self.emulator = emulator
        self.contract = contract
        self.session = requests.Session()
        self._token: str | None = None

    def discover(self) -> dict[str, Any]:
        response = self.session.get(self.emulator.discovery_url, timeout=TIMEOUT)
        response.raise_for_status()
        document: dict[str, Any] = response.json()
        return document

    def request_token(self, form: dict[str, str] | None = None, **kwargs: Any) -> requests.Response:
        """POST the (form-encoded once, by requests) credentials to the discovered token endpoint."""
        if form is None:
            form = {
                "grant_type": "client_credentials",
                "client_id": self.emulator.client_id,
                "client_secret": self.emulator.client_secret,
            }
        return self.session.post(self.discover()["token_endpoint"], data=form, timeout=TIMEOUT, **kwargs)

    def token(self, fresh: bool = False) -> str:
        if self._token is None or fresh:
            response = self.request_token()
            assert response.status_code == 200, response.text
            self._token = response.json()["access_token"]
        return self._token

    def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        route: str | None = None,
        authorize: bool = True,
        check: bool = True,
        **kwargs: Any,
    ) -> requests.Response:
        """Call an API path and check the body against the spec (``route`` is the spec's path template)."""
        headers = kwargs.pop("headers", {})
        kwargs.setdefault("timeout", TIMEOUT)
        if authorize:
            headers.setdefault("Authorization", f"Bearer {token or self.token()}")
        response = self.session.request(method, f"{self.emulator.base_url}{path}", headers=headers, **kwargs)
        route = route or path
        if check and self.contract is not None and self.contract.knows(route):
            if response.status_code == 204:
                assert response.content == b"", "a 204 answer must have no body"
            else:
                self.contract.validate(route, method, response.status_code, response.json())
        return response

    def get(self, path: str, params: Any = None, **kwargs: Any) -> requests.Response:
        return self.call("GET", path, params=params, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        return self.call("POST", path, json=body, **kwargs)

    def patch(self, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        return self.call("PATCH", path, json=body, **kwargs)

    def all_assets(self, **params: Any) -> list[dict[str, Any]]:
        response = self.get(ASSETS, {**params, "limit": 1000})
        assert response.status_code == 200, response.text
        results: list[dict[str, Any]] = response.json()["results"]
        return results


@pytest.fixture
def client(odc_emulator: OdcEmulator, openapi_contract: OpenApiContract | None) -> Iterator[OdcClient]:
    """A client for the (reset) session emulator from the project's own pytest plugin."""
    odc = OdcClient(odc_emulator, openapi_contract)
    yield odc
    odc.session.close()


@pytest.fixture
def make_client(openapi_contract: OpenApiContract | None) -> Iterator[Any]:
    """Clients for emulators a test starts itself."""
    clients: list[OdcClient] = []

    def make(emulator: OdcEmulator) -> OdcClient:
        clients.append(OdcClient(emulator, openapi_contract))
        return clients[-1]

    yield make
    for odc in clients:
        odc.session.close()


# Release lifecycle -------------------------------------------------------------------------------------

REVISIONS = "/api/asset-repository/v1/assets/{assetKey}/revisions"
REVISION = "/api/asset-repository/v1/assets/{assetKey}/revisions/{revisionNumber}"
BUILDS = "/api/builds/v1/build-operations"
BUILD = "/api/builds/v1/build-operations/{operationKey}"
DEPLOYMENTS = "/api/deployments/v1/deployment-operations"
DEPLOYMENT = "/api/deployments/v1/deployment-operations/{operationKey}"
PUBLISHES = "/api/deployments/v1/publish-operations"
PUBLISH = "/api/deployments/v1/publish-operations/{operationKey}"
DEPLOYED_ASSETS = "/api/portfolios/v2/deployed-assets"
BUILD_SECONDS = 0.5 + 1.5  # default pending + running
OPERATION_SECONDS = 2.0


class ReleaseKit:
    """Shortcuts for the release-lifecycle tests; every call goes through the real HTTP API."""

    def __init__(self, client: OdcClient, emulator: OdcEmulator) -> None:
        self.client = client
        self.emulator = emulator

    def inventory(self) -> dict[str, Any]:
        return self.emulator.inventory()

    def stage(self, name: str) -> str:
        key: str = self.inventory()["environments"][name]
        return key

    def asset(self, name: str) -> dict[str, Any]:
        return next(asset for asset in self.inventory()["assets"] if asset["name"] == name)

    def apps(self, shape: int) -> list[dict[str, Any]]:
        """Deployable assets whose index among deployable assets is ``shape`` modulo 3 (see ``seed.py``)."""
        deployable = [asset for asset in self.inventory()["assets"] if asset["deployable"]]
        return [asset for j, asset in enumerate(deployable) if j % 3 == shape]

    def release_build(self, asset: dict[str, Any], revision: int) -> str:
        return next(
            build["buildKey"]
            for build in asset["builds"]
            if build["revision"] == revision and build["buildType"] == "Release"
        )

    def build(self, asset_key: str, revision: int, build_type: str = "Release", finish: bool = True) -> str:
        response = self.client.post(BUILDS, {"assetKey": asset_key, "assetRevision": revision, "buildType": build_type})
        assert response.status_code == 201, response.text
        if finish:
            self.emulator.advance(BUILD_SECONDS)
        key: str = response.json()["buildKey"]
        return key

    def deploy(self, body: dict[str, Any], **kwargs: Any) -> Any:
        return self.client.post(DEPLOYMENTS, body, **kwargs)

    def operation(self, key: str) -> dict[str, Any]:
        response = self.client.get(f"{DEPLOYMENTS}/{key}", route=DEPLOYMENT)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def messages(self, key: str, family: str = DEPLOYMENTS) -> list[dict[str, Any]]:
        route = f"{family}/{{operationKey}}/messages"
        response = self.client.get(f"{family}/{key}/messages", {"limit": 1000}, route=route)
        assert response.status_code == 200, response.text
        results: list[dict[str, Any]] = response.json()["results"]
        return results

    @staticmethod
    def problem(response: Any, status: int, error_code: str | None = None) -> dict[str, Any]:
        """Assert a ProblemDetails answer with ODC's ``traceId`` and ``errorCode``; returns the body."""
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        problem: dict[str, Any] = response.json()
        assert problem["status"] == status and problem["traceId"] and problem["errorCode"].startswith("OS-")
        if error_code is not None:
            assert problem["errorCode"] == error_code, problem
        return problem

    def deployed(self, asset_key: str) -> dict[str, int]:
        """``{stage key: revision}`` from ``GET /deployed-assets``."""
        results = self.client.get(DEPLOYED_ASSETS, {"key": asset_key}).json()["results"]
        return {d["environmentKey"]: d["revision"] for item in results for d in item["deployments"]}


@pytest.fixture
def kit(client: OdcClient, odc_emulator: OdcEmulator) -> ReleaseKit:
    return ReleaseKit(client, odc_emulator)
