"""HTTP helpers shared by the emulator's route modules: the guarded route, ProblemDetails, query parameters.

ASP.NET Core conventions (the ODC services are .NET): validation problems carry an ``errors`` map and the
title "One or more validation errors occurred."; ODC adds ``traceId`` and ``errorCode`` to every problem.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from datetime import datetime
from http import HTTPStatus
from typing import Annotated, Any, get_args

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, BeforeValidator

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
#
# Each list endpoint takes a pydantic query model (``Annotated[Model, Query()]``): FastAPI binds the query
# string to it, the fields' parsers raise ``ValueError`` with ASP.NET's wording, and the validation handler
# puts that text in the problem's ``errors`` map under the parameter's name. Unknown parameters are ignored.


def parsed(parse: Callable[[str], Any], default: Any = None) -> BeforeValidator:
    """Parse the raw value with ``parse``; an empty one (``?limit=``) means ``default``."""

    def check(raw: Any) -> Any:
        if isinstance(raw, list):  # FastAPI collects every ``?sort=`` for a list-typed result: the last one counts
            raw = raw[-1] if raw else ""
        return default if raw == "" else parse(raw)

    return BeforeValidator(check)


def listed(parse: Callable[[str], Any] | None = None) -> BeforeValidator:
    """Arrays arrive as repeated keys (``?a=x&a=y``) or comma-separated (``?a=x,y``); accept both."""

    def split(raws: list[str]) -> list[Any]:
        values = [part.strip() for raw in raws for part in raw.split(",") if part.strip()]
        return values if parse is None else [parse(value) for value in values]

    return BeforeValidator(split)


def bounded_int(name: str, minimum: int = INT32_MIN, maximum: int = INT32_MAX) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"The value '{raw}' is not valid for {name}.") from None
        if not minimum <= value <= maximum:
            raise ValueError(f"The field {name} must be between {minimum} and {maximum}.")
        return value

    return parse


def boolean(name: str) -> Callable[[str], bool]:
    def parse(raw: str) -> bool:
        if raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        raise ValueError(f"The value '{raw}' is not valid for {name}.")

    return parse


def guid(raw: str) -> str:
    """A GUID, canonical (lower-case, hyphenated)."""
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise ValueError(f"The value '{raw}' is not a valid GUID.") from None


def one_of(name: str, allowed: Iterable[str]) -> Callable[[str], str]:
    choices = tuple(allowed)

    def parse(raw: str) -> str:
        if raw not in choices:
            raise ValueError(f"The value '{raw}' is not valid for {name}. Allowed: {', '.join(choices)}.")
        return raw

    return parse


def date_time(raw: str) -> datetime:
    try:
        return parse_timestamp(raw)
    except ValueError:
        raise ValueError(f"The value '{raw}' is not a valid date-time.") from None


Limit = Annotated[int, parsed(bounded_int("limit", 1, 1000), 100)]
Offset = Annotated[int, parsed(bounded_int("offset", 0), 0)]
GuidFilter = Annotated[str | None, parsed(guid)]
DateFilter = Annotated[datetime | None, parsed(date_time)]
Sort = list[tuple[str, bool]] | None
StringList = Annotated[tuple[str, ...], listed()]
GuidList = Annotated[tuple[str, ...], listed(guid)]


class Paging(BaseModel):
    """``limit`` (1..1000, default 100) and ``offset`` of the pages with totals."""

    limit: Limit = 100
    offset: Offset = 0
