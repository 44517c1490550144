"""The emulator's test controls, each defined once: a method of the HTTP-independent state.

``CONTROLS`` lists which state method answers which ``/_emulator`` route and how its result becomes the
JSON answer; ``register_controls`` serves them all (no auth: loopback only), and ``OdcEmulator`` offers the
same methods in-process through ``in_process``. A control validates its own arguments (``ValueError``), so
a bad request over HTTP (400 ``{"error": ...}``) and a bad call in a test fail alike.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar, overload

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError

from airflow_provider_odc.emulator.state import EmulatorState
from airflow_provider_odc.emulator.web import CONTROL_PREFIX

P = ParamSpec("P")
R = TypeVar("R")


class RequestLogQuery(BaseModel):
    """``GET /_emulator/requests?limit=``."""

    limit: int = Field(50, ge=1, le=1000)


def _as_is(state: EmulatorState, result: Any) -> Any:
    return result


@dataclass(frozen=True)
class Control:
    """``verb /_emulator<path>`` calls ``target`` (a method of the state, or of a part: ``"release.inventory"``)
    with the JSON body's fields (or the ``query`` model's), and answers ``answer(state, result)``."""

    verb: str
    path: str
    target: str
    answer: Callable[[EmulatorState, Any], Any] = _as_is
    query: type[BaseModel] | None = None


CONTROLS = (
    Control("GET", "/stats", "stats"),
    Control("POST", "/reset", "reset", lambda state, _: {"reset": True}),
    Control("GET", "/faults", "pending_faults", lambda state, pending: {"pending": pending}),
    Control(
        "POST",
        "/faults",
        "add_fault",
        lambda state, fault: {"fault": fault.as_dict(), "pending": state.pending_faults()},
    ),
    Control("DELETE", "/faults", "clear_faults", lambda state, _: {"pending": []}),
    Control("POST", "/revoke", "revoke_tokens", lambda state, revoked: {"revoked": revoked}),
    Control("GET", "/config", "config_view"),
    Control("POST", "/config", "configure"),
    Control("GET", "/requests", "recent_requests", lambda state, log: {"requests": log}, RequestLogQuery),
    Control("POST", "/advance", "advance", lambda state, offset: {"clock_offset": offset, "now": state.now()}),
    Control("GET", "/fail-next", "release.pending_failures", lambda state, pending: {"pending": pending}),
    Control(
        "POST",
        "/fail-next",
        "release.fail_next",
        lambda state, failure: {"failure": failure, "pending": state.release.pending_failures()},
    ),
    Control("DELETE", "/fail-next", "release.clear_failures", lambda state, _: {"pending": []}),
    Control("GET", "/inventory", "release.inventory"),
)


def _arguments(function: Callable[..., Any], body: Any) -> dict[str, Any]:
    """The body's fields as keyword arguments of ``function``; ``ValueError`` for unknown or missing ones."""
    if not isinstance(body, dict):
        raise ValueError("The body must be a JSON object.")
    parameters = inspect.signature(function).parameters
    unknown = set(body) - set(parameters)
    if unknown:
        raise ValueError(f"Unknown field(s): {', '.join(sorted(unknown))}. Allowed: {', '.join(sorted(parameters))}")
    missing = [name for name, p in parameters.items() if p.default is inspect.Parameter.empty and name not in body]
    if missing:
        raise ValueError(f"{', '.join(missing)} is required")
    return body


def register_controls(app: FastAPI, state: EmulatorState) -> None:
    """Serve every control of ``CONTROLS`` under ``/_emulator``."""
    for control in CONTROLS:
        app.add_api_route(
            f"{CONTROL_PREFIX}{control.path}",
            _route(state, control),
            methods=[control.verb],
            name=f"control {control.verb} {control.path}",
        )


def _route(state: EmulatorState, control: Control) -> Callable[[Request], Any]:
    function = attrgetter(control.target)(state)

    async def route(request: Request) -> Response:
        try:
            if control.query is not None:
                arguments = control.query.model_validate(dict(request.query_params)).model_dump()
            elif control.verb == "POST":
                raw = await request.body()
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    raise ValueError("The body must be a JSON object.") from None
                arguments = _arguments(function, body)
            else:
                arguments = {}
            result = function(**arguments)
        except ValidationError as error:  # a model (Fault, RequestLogQuery) refused a field
            problems = (f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in error.errors())
            return JSONResponse({"error": "; ".join(problems)}, status_code=400)
        except ValueError as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        return JSONResponse(control.answer(state, result))

    return route


class HasState(Protocol):
    """What ``in_process`` needs of its owner (``OdcEmulator``): the state the controls act on."""

    state: EmulatorState


class in_process(Generic[P, R]):
    """``OdcEmulator.<control>``: the state's method (``part`` names a part of the state), called on its state.

    ``method`` gives the signature and docs; the call goes to the running emulator's own state object.
    """

    def __init__(self, method: Callable[Concatenate[Any, P], R], part: str | None = None) -> None:
        self.method = method
        self.target = method.__name__ if part is None else f"{part}.{method.__name__}"
        self.__doc__ = method.__doc__

    @overload
    def __get__(self, emulator: None, owner: type[Any] | None = None) -> Callable[Concatenate[Any, P], R]: ...

    @overload
    def __get__(self, emulator: HasState, owner: type[Any] | None = None) -> Callable[P, R]: ...

    def __get__(self, emulator: HasState | None, owner: type[Any] | None = None) -> Any:
        if emulator is None:  # on the class itself (help(), autodoc): the state's method, with its signature
            return self.method
        return attrgetter(self.target)(emulator.state)
