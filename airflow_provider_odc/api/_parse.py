"""Reading ODC's JSON into typed results: tolerant of extra fields and of the specs' nullable values."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from airflow_provider_odc.exceptions import OdcError


def is_key(value: str) -> bool:
    """Whether ``value`` is an ODC key (a GUID, in any case, with or without braces)."""
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def same_key(a: Any, b: Any) -> bool:
    """Whether two ODC keys are the same GUID, whatever their case or braces (``str`` compare otherwise)."""
    if not isinstance(a, str) or not isinstance(b, str):
        return False
    try:
        return uuid.UUID(a) == uuid.UUID(b)
    except ValueError:
        return a == b


def as_object(body: Any, what: str) -> Mapping[str, Any]:
    """``body`` if it is a JSON object; else an OdcError naming what was expected."""
    if not isinstance(body, Mapping):
        raise OdcError(f"ODC answered {type(body).__name__} where {what} (a JSON object) was expected.")
    return body


def required_str(body: Mapping[str, Any], field: str, what: str) -> str:
    """A string field the provider cannot do without (a key): missing or empty is an OdcError."""
    value = body.get(field)
    if isinstance(value, str) and value:
        return value
    raise OdcError(f"ODC answered {what} without its '{field}'.")


def text(body: Mapping[str, Any], field: str) -> str | None:
    """An optional (nullable) string field; anything that is not a string is None."""
    value = body.get(field)
    return value if isinstance(value, str) else None


def integer(body: Mapping[str, Any], field: str) -> int | None:
    """An optional (nullable) integer field; ``bool`` and other types are None."""
    value = body.get(field)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def objects(value: Any) -> list[Mapping[str, Any]]:
    """The objects of a nullable list: ``null`` is empty, items that are not objects are skipped."""
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []
