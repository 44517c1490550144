"""Request validation for the emulator's JSON bodies, the way ASP.NET Core model binding rejects them.

The official request schemas are ``additionalProperties: false`` objects whose fields have a type, an
optional ``nullable`` and sometimes an enum. ``validate_body`` applies exactly that (unknown fields, wrong
types, ``null`` where not nullable, values outside the enum, fields the operation needs) and collects every
problem into one ``ApiError`` that the app turns into a 400 ``ProblemDetails`` with an ``errors`` map.
Nothing here knows about FastAPI.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
VALIDATION_TITLE = "One or more validation errors occurred."


class ApiError(Exception):
    """An API error the app answers with a ``ProblemDetails`` body (never raised for control endpoints)."""

    def __init__(
        self,
        status: int,
        detail: str,
        error_code: str,
        *,
        errors: dict[str, list[str]] | None = None,
        title: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.error_code = error_code
        self.errors = errors
        self.title = title
        self.headers = headers


def validation_error(errors: dict[str, list[str]], error_code: str) -> ApiError:
    first = next(iter(errors.values()))[0]
    return ApiError(400, first, error_code, errors=errors, title=VALIDATION_TITLE)


@dataclass(frozen=True)
class Field:
    """One property of a request schema: ``kind`` is ``uuid``, ``int32``, ``string``, ``boolean`` or ``enum``."""

    kind: str
    nullable: bool = False
    enum: tuple[str, ...] = ()


def _check(name: str, value: Any, field: Field) -> tuple[Any, str | None]:
    """The normalised value, or an error message."""
    if value is None:
        if field.nullable:
            return None, None
        return None, f"The {name} field does not accept null."
    if field.kind == "uuid":
        if isinstance(value, str):
            try:
                return str(uuid.UUID(value)), None
            except ValueError:
                pass
        return None, f"The JSON value for {name} could not be converted to a GUID."
    if field.kind == "int32":
        if isinstance(value, int) and not isinstance(value, bool) and INT32_MIN <= value <= INT32_MAX:
            return value, None
        return None, f"The JSON value for {name} could not be converted to a 32-bit integer."
    if field.kind == "string":
        if isinstance(value, str):
            return value, None
        return None, f"The JSON value for {name} could not be converted to a string."
    if field.kind == "boolean":
        if isinstance(value, bool):
            return value, None
        return None, f"The JSON value for {name} could not be converted to a boolean."
    if field.kind == "enum":
        if isinstance(value, str) and value in field.enum:
            return value, None
        return None, f"The value {value!r} is not valid for {name}. Allowed: {', '.join(field.enum)}."
    raise AssertionError(f"unknown field kind {field.kind!r}")


def validate_body(
    body: Any,
    fields: dict[str, Field],
    error_code: str,
    *,
    schema_name: str,
    required: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Check ``body`` against ``fields``; returns the present fields normalised (GUIDs lower-case)."""
    if not isinstance(body, dict):
        raise validation_error({"$": [f"The request body must be a JSON object ({schema_name})."]}, error_code)
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    for name in body:
        if name not in fields:
            message = f"The JSON property '{name}' could not be mapped to any member of {schema_name}."
            errors.setdefault(name, []).append(message)
    for name, field in fields.items():
        if name not in body:
            continue
        value, problem = _check(name, body[name], field)
        if problem is not None:
            errors.setdefault(name, []).append(problem)
        else:
            values[name] = value
    for name in required:
        if values.get(name) is None and name not in errors:
            errors[name] = [f"The {name} field is required."]
    if errors:
        raise validation_error(errors, error_code)
    return values


def require(values: dict[str, Any], names: tuple[str, ...], context: str, error_code: str) -> None:
    """Fields an operation needs although the schema lets them be absent or null."""
    errors = {name: [f"The {name} field is required for {context}."] for name in names if values.get(name) is None}
    if errors:
        raise validation_error(errors, error_code)
