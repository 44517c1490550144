"""What the code-scan operators send to ODC and get back, checked against the official OpenAPI specs: request
bodies against ``requestBody``, query parameter names against the operation's ``parameters`` (the Code
Quality API's are PascalCase), JSON answers against the declared response schemas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from airflow_provider_odc.operators.code_quality import OdcCodeQualityGateOperator, OdcCodeQualityReportOperator
from airflow_provider_odc.operators.generated_code import OdcGeneratedCodeOperator, OdcSourceCodeDownloadOperator

from ..emulator.conftest import OpenApiContract
from ..lifecycle.test_conformance import contract, spec_route  # noqa: F401  # contract is a fixture
from .conftest import SPEEDY, app_with_builds, run_operator

Exchange = tuple[str, str, Any, Any, requests.Response]


@pytest.fixture
def exchanges(monkeypatch: pytest.MonkeyPatch) -> list[Exchange]:
    """Every API call made through requests: method, path, query, JSON body, response."""
    seen: list[Exchange] = []
    original = requests.Session.request

    def recording(self: requests.Session, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        response = original(self, method, url, *args, **kwargs)
        if urlsplit(url).path.startswith("/api/"):
            seen.append((method.upper(), urlsplit(url).path, kwargs.get("params"), kwargs.get("json"), response))
        return response

    monkeypatch.setattr(requests.Session, "request", recording)
    return seen


def test_code_scan_requests_and_responses_match_the_specs(
    contract: OpenApiContract,  # noqa: F811
    fast_emulator: Any,
    exchanges: list[Exchange],
    tmp_path: Path,
) -> None:
    app = app_with_builds(fast_emulator)
    latest = app["latestRevision"]
    finding = {"patternId": "PERF-001", "severity": "High", "category": "performance", "elementName": "Dashboard"}
    fast_emulator.state.jobs.scans.plant(app["assetKey"], latest - 1, [finding])
    fast_emulator.state.jobs.scans.plant(app["assetKey"], latest, [finding, finding | {"elementName": "Other"}])
    run_operator(
        OdcCodeQualityGateOperator(task_id="base", asset=app["name"], revision=latest - 1, deferrable=False, **SPEEDY)
    )
    gate = OdcCodeQualityGateOperator(
        task_id="gate", asset=app["name"], baseline_revision=latest - 1, max_new_findings=1, deferrable=False, **SPEEDY
    )
    run_operator(gate)
    OdcCodeQualityReportOperator(task_id="report", assets=[app["assetKey"]], severities=["High"]).execute({})  # type: ignore[arg-type]
    run_operator(
        OdcGeneratedCodeOperator(
            task_id="code", asset=app["name"], destination=str(tmp_path / "a.zip"), deferrable=False, **SPEEDY
        )
    )
    source = OdcSourceCodeDownloadOperator(task_id="source", asset=app["name"], destination=str(tmp_path / "a.oml"))
    source.execute({"ti": type("TI", (), {"xcom_push": lambda *a, **k: None})()})  # type: ignore[arg-type]

    checked: set[str] = set()
    for method, path, params, body, response in exchanges:
        route = spec_route(contract, path)
        assert route is not None, f"{method} {path} is not in the official specs"
        spec, base, template = route
        operation = spec["paths"][template][method.lower()]
        declared = {p["name"].casefold() for p in operation.get("parameters", []) if p["in"] == "query"}
        for name in params or {}:
            assert name.casefold() in declared, f"{method} {base}{template} declares no query parameter {name}"
        if body is not None:
            contract.validate_schema(spec, operation["requestBody"]["content"]["application/json"]["schema"], body)
        if response.content and response.headers.get("content-type", "").startswith("application/json"):
            contract.validate(base + template, method, response.status_code, json.loads(response.content))
        checked.add(f"{method} {base}{template}")
    assert checked >= {
        "POST /api/code-quality/v1/code-analyses",
        "GET /api/code-quality/v1/code-analyses/{analysisKey}",
        "GET /api/code-quality/v1/assets/{assetKey}/revisions/{revision}/analysis-summary",
        "GET /api/code-quality/v1/findings",
        "GET /api/code-quality/v1/findings-trend",
        "GET /api/code-quality/v1/patterns/{patternId}",
        "POST /api/builds/v1/build-operations/{operationKey}/generated-code",
        "GET /api/builds/v1/build-operations/{operationKey}/generated-code",
        "GET /api/asset-repository/v1/assets/{assetKey}/revisions/{revisionNumber}/source-code",
    }
