"""Request validation, the way ASP.NET Core model binding rejects requests (the ODC services are .NET).

Request bodies are pydantic models (``OdcBody``) declared like the official schemas: ``additionalProperties:
false`` (``extra="forbid"``), typed fields that take no other JSON type (``Int32``, ``StrictStr``,
``StrictBool``, GUIDs), ``nullable`` (``| None``) and enums (``Literal``). FastAPI validates them;
``problem_errors`` turns pydantic's errors into the ``errors`` map of a 400 ``ProblemDetails``, worded as
ASP.NET Core words them. Nothing here knows about routes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, StrictInt

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
VALIDATION_TITLE = "One or more validation errors occurred."

Int32 = Annotated[StrictInt, Field(ge=INT32_MIN, le=INT32_MAX)]
Guid = Annotated[UUID, Strict(False)]  # a JSON string in any case; canonical (lower-case) once dumped


def _refuse_null(value: Any) -> Any:
    if value is None:
        raise ValueError("null")
    return value


# ``field: Annotated[X | None, NOT_NULL] = None``: the field may be absent, but not null (not ``nullable``).
NOT_NULL = BeforeValidator(_refuse_null)
# The JSON type each pydantic error type stands for, in ASP.NET's "could not be converted to ..." wording.
CONVERSIONS = {"uuid": "GUID", "int": "32-bit integer", "greater": "32-bit integer", "less": "32-bit integer"}
CONVERSIONS |= {"string": "string", "bool": "boolean"}


class OdcBody(BaseModel):
    """A request schema: unknown properties are refused, JSON types are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True)

    def present(self) -> dict[str, Any]:
        """The fields the body carried (GUIDs canonical): a PATCH tells "absent" from "null"."""
        return self.model_dump(mode="json", include=self.model_fields_set)


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


def _message(error: dict[str, Any], name: str, schema: str) -> str:
    kind, given = error["type"], error.get("input")
    if kind == "json_invalid":
        return f"The request body is not valid JSON: {error.get('ctx', {}).get('error', error['msg'])}"
    if name == "$":
        if kind == "missing":
            return "A non-empty request body is required."
        return f"The request body must be a JSON object ({schema})."
    if kind == "extra_forbidden":
        return f"The JSON property '{name}' could not be mapped to any member of {schema}."
    if kind == "missing":
        return f"The {name} field is required."
    if given is None:
        return f"The {name} field does not accept null."
    if kind == "value_error":  # a query parser's (or NOT_NULL's) own words
        return str(error.get("ctx", {}).get("error", error["msg"]))
    if kind == "literal_error":
        return f"The value {given!r} is not valid for {name}. Allowed: {error['ctx']['expected']}."
    target = next((text for prefix, text in CONVERSIONS.items() if kind.startswith(prefix)), None)
    if target is None:
        return f"The value for {name} is not valid: {error['msg']}."
    return f"The JSON value for {name} could not be converted to a {target}."


def problem_errors(errors: Sequence[Any], schema: str) -> dict[str, list[str]]:
    """Pydantic's errors of a body (``loc`` starting with ``"body"``) as ASP.NET's ``errors`` map."""
    found: dict[str, list[str]] = {}
    for error in errors:
        names = [part for part in error["loc"][1:] if isinstance(part, str)]
        name = "$" if error["type"] == "json_invalid" or not names else names[-1]
        found.setdefault(name, []).append(_message(error, name, schema))
    return found


def require(values: dict[str, Any], names: tuple[str, ...], context: str, error_code: str) -> None:
    """Fields an operation needs although the schema lets them be absent or null."""
    errors = {name: [f"The {name} field is required for {context}."] for name in names if values.get(name) is None}
    if errors:
        raise validation_error(errors, error_code)
