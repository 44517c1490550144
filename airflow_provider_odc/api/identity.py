"""User and Access Management API (``/api/identity/v1``): bulk user operations.

A bulk operation ``FinishedWithErrors`` says why in its body: ``errorMessage`` and the records of
``operations[]`` whose status is ``Error``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_odc.api._parse import objects
from airflow_provider_odc.api.long_running import kind, message_line

BULK_USERS_PATH = "/api/identity/v1/users/bulk"

BULK_USERS = kind(
    "bulk_users",
    BULK_USERS_PATH + "/{key}",
    {"Finished"},
    {"FinishedWithErrors"},
    details_in_body=True,  # errorMessage, operations[].errorMessage
)


def bulk_errors(body: Mapping[str, Any]) -> list[str]:
    """``errorMessage``, then one line per failed record of ``operations[]`` (who, and why)."""
    lines: list[str] = []
    if isinstance(body.get("errorMessage"), str) and body["errorMessage"]:
        lines.append(message_line(body["errorMessage"], body.get("errorCode")))
    for operation in objects(body.get("operations")):
        if operation.get("status") == "Error":
            record = operation.get("record")
            record = record if isinstance(record, dict) else {}
            who = next((record[k] for k in ("email", "username", "subject") if record.get(k)), "a record")
            lines.append(
                message_line(f"{who}: {operation.get('errorMessage') or 'not created'}", operation.get("errorCode"))
            )
    return lines
