"""The emulator's HTTP surface: ODC discovery, token and API endpoints, plus the ``/_emulator`` test controls.

Handlers are ``async`` so an injected latency (``asyncio.sleep``) never blocks other clients; they touch the
shared ``EmulatorState`` only through its short, locked methods. Paths, status codes and bodies follow the
official ODC OpenAPI specs and the documented Keycloak-style authentication; where ODC documents nothing
(token error bodies, error codes) the emulator does what Keycloak / ASP.NET Core usually do.

The release lifecycle (revisions and tags, builds, deploy and publish operations, deployed assets) and its
``/_emulator`` controls are registered from ``release_routes``; shared HTTP helpers live in ``web``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Annotated, Any
from urllib.parse import parse_qsl, unquote_plus

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from airflow_provider_odc.emulator.access_routes import register_access_routes
from airflow_provider_odc.emulator.code_scan_routes import register_code_scan_routes
from airflow_provider_odc.emulator.configuration_routes import register_configuration_routes
from airflow_provider_odc.emulator.controls import register_controls
from airflow_provider_odc.emulator.long_running_routes import register_long_running_routes
from airflow_provider_odc.emulator.mobile_builds_routes import register_mobile_build_routes
from airflow_provider_odc.emulator.release_routes import register_release_routes
from airflow_provider_odc.emulator.seed import parse_sort, query_assets
from airflow_provider_odc.emulator.state import TOKEN_SCOPE, EmulatorState, Fault
from airflow_provider_odc.emulator.storage_routes import register_storage_routes
from airflow_provider_odc.emulator.web import (
    CONTROL_PREFIX,
    GuidFilter,
    Paging,
    Sort,
    StringList,
    add_problem_handlers,
    boolean,
    make_endpoint,
    page_with_totals,
    parsed,
    problem_response,
)

DISCOVERY_PATH = "/identity/.well-known/openid-configuration"
TOKEN_ROUTE = "/auth/realms/{realm}/protocol/openid-connect/token"
ASSETS_ROUTE = "/api/asset-repository/v1/assets"
ASSET_ROUTE = "/api/asset-repository/v1/assets/{assetKey}"
ENVIRONMENTS_ROUTE = "/api/portfolios/v2/environments"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
DROP_RESPONSE = "odc_drop_response"  # request state: a drop_response fault hit this request

NOT_JSON_PAGE = (
    "<!DOCTYPE html><html><head><title>Sign in</title></head>"
    "<body><p>This is not the OpenID configuration you are looking for.</p></body></html>"
)


# Responses ---------------------------------------------------------------------------------------------


def oauth_error(status: int, error: str, description: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """RFC 6749 section 5.2 error body, as Keycloak sends it."""
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={**NO_STORE, **(headers or {})},
    )


def _fault_headers(fault: Fault) -> dict[str, str]:
    return {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}


def discovery_document(base_url: str, realm_path: str) -> dict[str, Any]:
    """The documented sample (Keycloak layout) completed with the usual Keycloak fields."""
    issuer = f"{base_url}{realm_path}"
    oidc = f"{issuer}/protocol/openid-connect"
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{oidc}/auth",
        "token_endpoint": f"{oidc}/token",
        "introspection_endpoint": f"{oidc}/token/introspect",
        "userinfo_endpoint": f"{oidc}/userinfo",
        "end_session_endpoint": f"{oidc}/logout",
        "frontchannel_logout_session_supported": True,
        "frontchannel_logout_supported": True,
        "jwks_uri": f"{oidc}/certs",
        "check_session_iframe": f"{oidc}/login-status-iframe.html",
        "grant_types_supported": [
            "authorization_code",
            "implicit",
            "refresh_token",
            "password",
            "client_credentials",
            "urn:openid:params:grant-type:ciba",
            "urn:ietf:params:oauth:grant-type:device_code",
        ],
        "acr_values_supported": ["0", "1"],
        "response_types_supported": [
            "code",
            "none",
            "id_token",
            "token",
            "id_token token",
            "code id_token",
            "code token",
            "code id_token token",
        ],
        "subject_types_supported": ["public", "pairwise"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "scopes_supported": ["openid", "profile", "email"],
    }


# Request log middleware --------------------------------------------------------------------------------


class AssetQuery(Paging):
    """``GET /assets``."""

    nameContains: str | None = None
    nameOrDescriptionContains: str | None = None
    assetTypes: StringList = ()
    assetKeys: StringList = ()
    portfolioKeys: StringList = ()
    isExternal: Annotated[bool | None, parsed(boolean("isExternal"))] = None
    sort: Annotated[Sort, parsed(parse_sort)] = None


class RecordingMiddleware:
    """Logs every non-control request (without secrets) and the TCP connection it arrived on."""

    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"").decode("latin-1")
        if scope["path"].endswith("/protocol/openid-connect/token"):
            query = "&".join(name for name, _ in parse_qsl(query, keep_blank_values=True))
        record = self.state.record_request(
            method=scope["method"],
            path=scope["path"],
            query=query,
            authorization=any(name.lower() == b"authorization" for name, _ in scope.get("headers", [])),
            client=scope.get("client"),
        )
        scope.setdefault("state", {})["odc_request_record"] = record

        async def send_and_note(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.state.note_response(record, message["status"])
            elif scope["state"].get(DROP_RESPONSE):
                return  # a drop_response fault: the body never leaves; returning unfinished closes the connection
            await send(message)

        await self.app(scope, receive, send_and_note)


# Application -------------------------------------------------------------------------------------------


def create_app(state: EmulatorState) -> FastAPI:
    """Build the ASGI app serving one emulator ``state``."""
    app = FastAPI(title="ODC emulator", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.emulator = state
    app.add_middleware(RecordingMiddleware, state=state)
    add_problem_handlers(app)

    async def serve_fault(request: Request, kind: str) -> Fault | None:
        fault = state.take_fault(kind, request.url.path, request.method)
        if fault is not None and fault.latency > 0:
            await asyncio.sleep(fault.latency)
        if fault is not None and fault.drop_response:
            request.scope.setdefault("state", {})[DROP_RESPONSE] = True
        return fault

    async def guard_api(request: Request, template: str) -> Response | None:
        """Count the call, apply faults and ODC's rate limits (``rate_limits``), then demand a valid bearer token.

        A returned Response means 'stop here'. Faults and rate limits act before authentication, as at a gateway.
        """
        route = f"{request.method} {template}"
        state.count_api_call(route)
        fault = await serve_fault(request, "api")
        if fault is not None and fault.status is not None:
            headers = _fault_headers(fault)
            if fault.status == 401:
                state.count_unauthorized()
                headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
            return problem_response(
                request,
                fault.status,
                f"Fault injected by the ODC emulator (target {fault.target!r}).",
                f"OS-GATEWAY-{fault.status}01",
                headers=headers,
            )
        limited, retry_after = state.release.check_rate(request.method, template)
        if limited:
            detail = "Rate limit exceeded: too many requests to this API. Try again later."
            headers = {} if retry_after is None else {"Retry-After": retry_after}
            return problem_response(request, 429, detail, "OS-GATEWAY-42901", headers=headers)
        reason = state.token_problem(request.headers.get("authorization"))
        if reason is None:
            return None
        state.count_unauthorized()
        return problem_response(
            request,
            401,
            reason,
            "OS-IDENTITY-40101",
            headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{reason}"'},
        )

    # Authentication ----------------------------------------------------------------------------------

    @app.get(DISCOVERY_PATH)
    async def openid_configuration(request: Request) -> Response:
        state.count_discovery_request()
        fault = await serve_fault(request, "discovery")
        if fault is not None and fault.status is not None:
            return problem_response(
                request,
                fault.status,
                "Fault injected by the ODC emulator (target 'discovery').",
                f"OS-IDENTITY-{fault.status}01",
                headers=_fault_headers(fault),
            )
        config = state.config()
        if config.discovery_mode == "not_json":
            return HTMLResponse(NOT_JSON_PAGE)
        if config.discovery_mode == "override":
            return JSONResponse(config.discovery_document)
        document = discovery_document(str(request.base_url).rstrip("/"), state.realm_path)
        if config.discovery_mode == "missing_token_endpoint":
            del document["token_endpoint"]
        return JSONResponse(document)

    @app.post(TOKEN_ROUTE)
    async def token(request: Request, realm: str) -> Response:
        state.count_token_request()
        fault = await serve_fault(request, "token")
        if fault is not None and fault.status is not None:
            error = {400: "invalid_request", 401: "invalid_client"}.get(fault.status, "temporarily_unavailable")
            description = f"Fault injected by the ODC emulator (HTTP {fault.status})."
            return oauth_error(fault.status, error, description, _fault_headers(fault))
        redirect_to = state.config().token_redirect_to
        if redirect_to:
            return Response(status_code=307, headers={"Location": redirect_to})
        if realm != state.realm:
            return JSONResponse({"error": "Realm does not exist"}, status_code=404)

        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            return oauth_error(400, "invalid_request", "The request body must be application/x-www-form-urlencoded.")
        try:
            raw = await request.body()
        except ClientDisconnect:  # the client gave up (e.g. a latency fault outlasted its timeout)
            return Response(status_code=499)
        pairs = parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
        state.note_form_fields(getattr(request.state, "odc_request_record", None), [name for name, _ in pairs])
        form: dict[str, str] = {}
        for name, value in pairs:
            if name in form:
                return oauth_error(400, "invalid_request", f"Duplicate form parameter: {name}")
            form[name] = value

        # client_secret_basic: RFC 6749 section 2.3.1 form-encodes id and secret before base64.
        basic_used = False
        authorization = request.headers.get("authorization", "")
        if authorization[:6].lower() == "basic ":
            if "client_secret" in form:
                return oauth_error(400, "invalid_request", "Use only one client authentication method.")
            try:
                decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return oauth_error(401, "invalid_client", "Invalid client or Invalid client credentials")
            basic_id, _, basic_secret = decoded.partition(":")
            form.setdefault("client_id", unquote_plus(basic_id))
            form["client_secret"] = unquote_plus(basic_secret)
            basic_used = True

        for required in ("grant_type", "client_id", "client_secret"):
            if not form.get(required):
                return oauth_error(400, "invalid_request", f"Missing form parameter: {required}")
        if not state.check_client(form["client_id"], form["client_secret"]):
            challenge = {"WWW-Authenticate": f'Basic realm="{state.realm}"'} if basic_used else None
            return oauth_error(401, "invalid_client", "Invalid client or Invalid client credentials", challenge)
        if form["grant_type"] != "client_credentials":
            return oauth_error(400, "unsupported_grant_type", f"Unsupported grant_type: {form['grant_type']}")

        issuer = f"{str(request.base_url).rstrip('/')}{state.realm_path}"
        access_token, lifetime = state.issue_token(issuer)
        body = {
            "access_token": access_token,
            "expires_in": lifetime,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "scope": TOKEN_SCOPE,
        }
        return JSONResponse(body, headers=NO_STORE)

    # Asset repository --------------------------------------------------------------------------------

    endpoint = make_endpoint(app, guard_api)

    @endpoint("GET", ASSETS_ROUTE, "OS-APPS-40001")
    async def list_assets(query: Annotated[AssetQuery, Query()]) -> Response:
        selected = query_assets(
            state.current_assets(),
            name_contains=query.nameContains,
            name_or_description_contains=query.nameOrDescriptionContains,
            asset_types=list(query.assetTypes),
            asset_keys=list(query.assetKeys),
            portfolio_keys=list(query.portfolioKeys),
            is_external=query.isExternal,
            sort=query.sort,
        )
        return JSONResponse(page_with_totals(selected, query.limit, query.offset))

    @endpoint("GET", ASSET_ROUTE, "OS-APPS-40001")
    async def get_asset(request: Request, assetKey: str) -> Response:
        return JSONResponse(state.release.latest_revision(assetKey))

    # Portfolio ---------------------------------------------------------------------------------------

    @endpoint("GET", ENVIRONMENTS_ROUTE, "OS-PORTFOLIO-40001")
    async def list_environments(portfolioKey: Annotated[GuidFilter, Query()] = None) -> Response:
        environments = sorted(state.environments, key=lambda environment: environment["order"])
        if portfolioKey is not None:
            environments = [e for e in environments if e["portfolioKey"].casefold() == portfolioKey]
        return JSONResponse({"results": environments})

    register_release_routes(app, state, guard_api)
    register_long_running_routes(app, state, guard_api)
    register_access_routes(app, state, guard_api)
    register_configuration_routes(app, state, guard_api)
    register_code_scan_routes(app, state, guard_api)
    register_mobile_build_routes(app, state, guard_api)
    register_storage_routes(app, state, guard_api)

    @app.api_route("/api/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
    async def not_emulated(request: Request, rest: str) -> Response:
        denied = await guard_api(request, request.url.path)
        if denied is not None:
            return denied
        detail = f"The ODC emulator does not implement {request.method} {request.url.path}."
        return problem_response(request, 404, detail, "OS-GATEWAY-40401")

    register_controls(app, state)
    return app
