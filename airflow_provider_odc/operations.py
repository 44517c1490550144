"""Every kind of long-running ODC operation the provider waits for, collected from the API modules.

Everything in ODC that takes time is "POST to start, then GET by key until the status is terminal"
(``odc-api.md`` 3.3). Each API module (``airflow_provider_odc.api``) declares its own kinds; this is
the one registry the sensor, the trigger and the operators look them up in. No Airflow imports.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_odc.api import (
    builds,
    code_quality,
    dependency_management,
    deployments,
    external_libraries,
    identity,
    native_builds,
)
from airflow_provider_odc.api.long_running import OperationKind, error_messages

OPERATION_KINDS: dict[str, OperationKind] = {
    kind.name: kind
    for kind in (
        builds.BUILD,
        deployments.DEPLOYMENT,
        deployments.PUBLISH_KIND,
        builds.GENERATED_CODE,
        dependency_management.DEPLOYMENT_ANALYSIS,
        dependency_management.DELETION_ANALYSIS,
        code_quality.CODE_ANALYSIS,
        external_libraries.EXTERNAL_LIBRARY,
        external_libraries.GENERATED,
        native_builds.NATIVE_BUILD,
        identity.BULK_USERS,
    )
}


def operation_kind(name: str) -> OperationKind:
    try:
        return OPERATION_KINDS[name]
    except KeyError:
        raise ValueError(f"Unknown ODC operation kind {name!r}; use one of {', '.join(OPERATION_KINDS)}.") from None


def body_errors(body: Any, limit: int = 20) -> list[str]:
    """What ODC says about a failure inside a status body: ``errors[]`` (generated code), ``error`` (a
    failed analysis' ProblemDetails), the Error findings of an analysis report, ``errorMessage`` and the
    failed records of ``operations[]`` (bulk users)."""
    if not isinstance(body, dict):
        return []
    lines = [
        *builds.generated_code_errors(body),
        *dependency_management.analysis_errors(body),
        *identity.bulk_errors(body),
    ]
    return [line for line in lines if line][:limit]


__all__ = ["OPERATION_KINDS", "OperationKind", "body_errors", "error_messages", "operation_kind"]
