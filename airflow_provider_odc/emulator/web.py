"""HTTP helpers shared by the emulator's route modules: the guarded route, ProblemDetails, query parameters.

ASP.NET Core conventions (the ODC services are .NET): validation problems carry an ``errors`` map and the
title "One or more validation errors occurred."; ODC adds ``traceId`` and ``errorCode`` to every problem.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from http import HTTPStatus
from typing import Any, get_args

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel

from airflow_provider_odc.emulator.seed import parse_timestamp
from airflow_provider_odc.emulator.validation import INT32_MAX, INT32_MIN, VALIDATION_TITLE, ApiError, problem_errors

CONTROL_PREFIX = "/_emulator"
PROBLEM_MEDIA_TYPE = "application/problem+json"

# ``guard(request, route template)``: a Response means "answer this instead" (fault, 429, 401).
Guard = Callable[[Request, str], Awaitable[Response | None]]
Handler = Callable[..., Awaitable[Response]]

# ASP.NET Core's default ProblemDetails ``type`` links.
PROBLEM_TYPES = {
    400: "https://tools.ietf.org/html/rfc9110#section-15.5.1",
    401: "https://tools.ietf.org/html/rfc9110#section-15.5.2",
    403: "https://tools.ietf.org/html/rfc9110#section-15.5.4",
    404: "https://tools.ietf.org/html/rfc9110#section-15.5.5",
    405: "https://tools.ietf.org/html/rfc9110#section-15.5.6",
    409: "https://tools.ietf.org/html/rfc9110#section-15.5.10",
    422: "https://tools.ietf.org/html/rfc9110#section-15.5.21",
    429: "https://tools.ietf.org/html/rfc6585#section-4",
    500: "https://tools.ietf.org/html/rfc9110#section-15.6.1",
    502: "https://tools.ietf.org/html/rfc9110#section-15.6.3",
    503: "https://tools.ietf.org/html/rfc9110#section-15.6.4",
    504: "https://tools.ietf.org/html/rfc9110#section-15.6.5",
}


class QueryError(ValueError):
    """A bad query parameter; becomes an ASP.NET-style validation ProblemDetails (400)."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


# Responses ---------------------------------------------------------------------------------------------


def _status_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_response(
    request: Request,
    status: int,
    detail: str,
    error_code: str,
    *,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    errors: dict[str, list[str]] | None = None,
) -> JSONResponse:
    """RFC 7807 body with ODC's extra ``traceId`` and ``errorCode`` fields."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPES.get(status, "about:blank"),
        "title": title or _status_phrase(status),
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "traceId": f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00",
        "errorCode": error_code,
    }
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def validation_problem(request: Request, error: QueryError, error_code: str) -> JSONResponse:
    return problem_response(
        request,
        400,
        str(error),
        error_code,
        title=VALIDATION_TITLE,
        errors={error.parameter: [str(error)]},
    )


def api_error_response(request: Request, error: ApiError) -> JSONResponse:
    return problem_response(
        request,
        error.status,
        error.detail,
        error.error_code,
        title=error.title,
        headers=error.headers,
        errors=error.errors,
    )


def page_with_totals(items: list[Any], limit: int, offset: int) -> dict[str, Any]:
    """``{page: PageInfoWithTotals, results}``: ``nextPageOffset`` is null on the last page."""
    total = len(items)
    results = items[offset : offset + limit]
    page = {
        "count": len(results),
        "limit": limit,
        "offset": offset,
        "nextPageOffset": offset + limit if offset + limit < total else None,
        "totalResults": total,
        "totalPages": -(-total // limit),
    }
    return {"page": page, "results": results}


def page_without_totals(items: list[Any], limit: int, offset: int) -> dict[str, Any]:
    """``{page: Int32NullablePageInfo, results}`` (deployment and publish operation lists: no totals)."""
    results = items[offset : offset + limit]
    page = {
        "count": len(results),
        "limit": limit,
        "offset": offset,
        "nextPageOffset": offset + limit if offset + limit < len(items) else None,
    }
    return {"page": page, "results": results}


class OdcRoute(APIRoute):
    """An ODC API route: the guard (call count, faults, rate limits, bearer auth) answers first, as a gateway
    does, before FastAPI parses anything; errors then become ProblemDetails with the route's ``error_code``."""

    guard: Guard
    error_code: str

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        parse_and_handle = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            denied = await self.guard(request, self.path_format)
            if denied is not None:
                return denied
            if self.body_field is not None and (await request.body()).strip():
                media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
                if media_type != "application/json" and not re.fullmatch(r"application/[^/]+\+json", media_type):
                    detail = f"Unsupported media type '{media_type}': send application/json."
                    raise ApiError(415, detail, self.error_code)
            return await parse_and_handle(request)

        return guarded


def make_endpoint(app: FastAPI, guard: Guard) -> Callable[[str, str, str], Callable[[Handler], Handler]]:
    """An ``endpoint(method, template, error_code)`` decorator registering ``OdcRoute`` API routes on ``app``."""

    def endpoint(method: str, template: str, error_code: str) -> Callable[[Handler], Handler]:
        def decorate(handler: Handler) -> Handler:
            app.router.add_api_route(template, handler, methods=[method], route_class_override=OdcRoute)
            route = app.router.routes[-1]
            assert isinstance(route, OdcRoute)
            route.guard, route.error_code = guard, error_code
            return handler

        return decorate

    return endpoint


def _route_error_code(request: Request) -> str:
    route = request.scope.get("route")
    return route.error_code if isinstance(route, OdcRoute) else "OS-GATEWAY-40001"


def _body_schema(request: Request) -> str:
    """The name of the route's body model (``AssetVersionPatchRequest`` also for ``... | None``)."""
    body = getattr(request.scope.get("route"), "body_field", None)
    annotation = None if body is None else body.field_info.annotation
    models = [t for t in (annotation, *get_args(annotation)) if isinstance(t, type) and issubclass(t, BaseModel)]
    return models[0].__name__ if models else "the request body"


def add_problem_handlers(app: FastAPI) -> None:
    """The one place where request errors become ODC ProblemDetails (ASP.NET Core style)."""

    async def api_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, ApiError)
        return api_error_response(request, error)

    async def query_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, QueryError)
        return validation_problem(request, error, _route_error_code(request))

    async def invalid_request(request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        errors = problem_errors(error.errors(), _body_schema(request))
        first = next(iter(errors.values()))[0]
        problem = ApiError(400, first, _route_error_code(request), errors=errors, title=VALIDATION_TITLE)
        return api_error_response(request, problem)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(QueryError, query_error)
    app.add_exception_handler(RequestValidationError, invalid_request)


# Query parameters --------------------------------------------------------------------------------------


def _int_param(request: Request, name: str, default: int, minimum: int, maximum: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise QueryError(name, f"The value '{raw}' is not valid for {name}.") from None
    if not minimum <= value <= maximum:
        raise QueryError(name, f"The field {name} must be between {minimum} and {maximum}.")
    return value


def _paging(request: Request, default_limit: int = 100) -> tuple[int, int]:
    return _int_param(request, "limit", default_limit, 1, 1000), _int_param(request, "offset", 0, 0, INT32_MAX)


def _sort(request: Request, parse: Callable[[str], list[tuple[str, bool]]]) -> list[tuple[str, bool]] | None:
    raw = request.query_params.get("sort")
    if not raw:
        return None
    try:
        return parse(raw)
    except ValueError as error:
        raise QueryError("sort", str(error)) from None


def _list_param(request: Request, name: str) -> list[str]:
    """Arrays arrive as repeated keys (``?a=x&a=y``) or comma-separated (``?a=x,y``); accept both."""
    values: list[str] = []
    for raw in request.query_params.getlist(name):
        values.extend(part.strip() for part in raw.split(",") if part.strip())
    return values


def _bool_param(request: Request, name: str) -> bool | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise QueryError(name, f"The value '{raw}' is not valid for {name}.")


def _int_param_or_none(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    return _int_param(request, name, 0, INT32_MIN, INT32_MAX)


def _guid_param(request: Request, name: str) -> str | None:
    """A GUID filter, canonical (lower-case, hyphenated), or ``None`` when absent."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise QueryError(name, f"The value '{raw}' is not a valid GUID.") from None


def _guid_list_param(request: Request, name: str) -> list[str]:
    values = []
    for raw in _list_param(request, name):
        try:
            values.append(str(uuid.UUID(raw)))
        except ValueError:
            raise QueryError(name, f"The value '{raw}' is not a valid GUID.") from None
    return values


def _enum_param(request: Request, name: str, allowed: tuple[str, ...]) -> str | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if raw not in allowed:
        raise QueryError(name, f"The value '{raw}' is not valid for {name}. Allowed: {', '.join(allowed)}.")
    return raw


def _date_param(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return parse_timestamp(raw)
    except ValueError:
        raise QueryError(name, f"The value '{raw}' is not a valid date-time.") from None
