"""The typed results and request bodies of the governance calls, checked against the official schemas."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_odc.api import dependency_management as dependencies
from airflow_provider_odc.api.asset_configurations import (
    AssetConfiguration,
    ConfigChanges,
    ConfigGroup,
    ConfigValue,
    resolve_patch,
    system_patch_body,
)

from ..lifecycle.test_typed_api import KEY, ReadFields, component

CONFIGS = "/api/asset-configurations/v1"


@pytest.mark.parametrize(
    ("parse", "component_name"),
    [
        (ConfigValue.from_json, "GenericConfigResult"),
        (ConfigGroup.from_json, "TimerResult"),
        (ConfigGroup.from_json, "IntegrationResult"),
        (AssetConfiguration.from_json, "ApplicationConfigResult"),
    ],
)
def test_every_field_a_result_reads_is_in_its_spec_schema(contract: Any, parse: Any, component_name: str) -> None:
    read: set[str] = set()
    parse(ReadFields(read))
    declared = set(component(contract, CONFIGS, component_name)["properties"])
    assert read and read <= declared, f"{component_name} has no {sorted(read - declared)}"


def configuration() -> AssetConfiguration:
    value = {"key": KEY, "name": "ApiUrl", "isSecret": False}
    secret = {"key": KEY.replace("a", "b"), "name": "ApiKey", "isSecret": True}
    timer = {"key": KEY, "name": "NightlySync", "configs": [{"key": KEY, "name": "IsActive", "isSecret": False}]}
    return AssetConfiguration.from_json(
        {"settings": [value, secret], "timers": [timer], "integrations": [], "systemConfigurations": [value]}
    )


def test_every_request_body_validates_against_its_spec(contract: Any) -> None:
    changes = ConfigChanges(
        settings={"ApiUrl": "https://x.test", "apikey": "s"},
        timers={"nightlysync": {"IsActive": "False"}},
        integrations={},
        system_configurations={"ApiUrl": "UTC"},
    )
    patch = resolve_patch(configuration(), changes, what="app", revision_baseline=3)
    assert patch.secret_names == ("ApiKey",)
    assert patch.changed == {
        "settings": ["ApiUrl", "ApiKey"],
        "systemConfigurations": ["ApiUrl"],
        "timers": ["NightlySync.IsActive"],
    }
    system = system_patch_body(configuration().settings, {"ApiUrl": "x"}, what="stage")
    bodies = [
        (CONFIGS, "/environments/{environmentKey}/applications/{applicationKey}/configurations", "patch", patch.body),
        (CONFIGS, "/environments/{environmentKey}/default-system-configurations", "patch", system.body),
        (
            "/api/dependency-management/v1",
            "/deployment-analyses",
            "post",
            dependencies.deployment_analysis_body(KEY, 3, KEY),
        ),
        ("/api/dependency-management/v1", "/deletion-analyses", "post", dependencies.deletion_analysis_body(KEY)),
    ]
    for base, template, method, body in bodies:
        spec = contract.specs[base]
        request = spec["paths"][template][method]["requestBody"]["content"]["application/json"]["schema"]
        contract.validate_schema(spec, request, body)


def test_report_summary_counts_and_names_findings() -> None:
    body = {
        "analysisKey": KEY,
        "processStatus": "Finished",
        "report": {
            "status": "ErrorsFound",
            "impactedAssets": [
                {
                    "name": "Portal",
                    "elementLevelIssues": [
                        {"name": "GetX", "type": "ServiceAction", "conflictSeverity": "Error", "hint": "removed"},
                        {"name": "GetY", "type": "ServiceAction", "conflictSeverity": "Warning", "hint": "changed"},
                    ],
                    "applicationLevelIssues": [{"conflictType": "UrlDiscrepancy", "conflictSeverity": "Warning"}],
                }
            ],
        },
    }
    summary = dependencies.report_summary(body)
    assert (summary["errors"], summary["warnings"], summary["impactedAssets"]) == (1, 2, ["Portal"])
    assert summary["findings"][0] == "Portal: ServiceAction GetX: removed"
    assert "deployedEnvironments" not in summary
