"""HTTP routes of the long-running operations outside the release lifecycle (state in ``long_running``).

Generated-code packaging, deployment and deletion analyses, code analyses, external library generation,
native mobile builds and bulk user creation: the start POST (body checked like the official request schema,
``validation.validate_body``), the status GET and, where the spec has one, the messages GET. Every route
goes through the app's guard (call counting, faults, rate limits, bearer auth) first.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from airflow_provider_odc.emulator.long_running import MAX_BULK_RECORDS, MOBILE_PLATFORMS
from airflow_provider_odc.emulator.state import EmulatorState
from airflow_provider_odc.emulator.validation import INT32_MAX, ApiError, Field, require, validate_body
from airflow_provider_odc.emulator.web import Guard, QueryError, _guid_param, json_body, make_endpoint

GENERATED_CODE_ROUTE = "/api/builds/v1/build-operations/{operationKey}/generated-code"
DEPENDENCIES = "/api/dependency-management/v1"
DEPLOYMENT_ANALYSES_ROUTE = f"{DEPENDENCIES}/deployment-analyses"
DEPLOYMENT_ANALYSIS_ROUTE = f"{DEPENDENCIES}/deployment-analyses/{{analysisKey}}"
DELETION_ANALYSES_ROUTE = f"{DEPENDENCIES}/deletion-analyses"
DELETION_ANALYSIS_ROUTE = f"{DEPENDENCIES}/deletion-analyses/{{analysisKey}}"
CODE_ANALYSES_ROUTE = "/api/code-quality/v1/code-analyses"
CODE_ANALYSIS_ROUTE = f"{CODE_ANALYSES_ROUTE}/{{analysisKey}}"
LIBRARIES = "/api/external-libraries/v1/generation-operations"
LIBRARY_ROUTE = f"{LIBRARIES}/{{operationKey}}"
LIBRARY_LOG_ROUTE = f"{LIBRARIES}/{{operationKey}}/log-messages"
NATIVE_BUILDS_ROUTE = "/api/native-mobile-builds/v1/build-operations"
NATIVE_BUILD_ROUTE = f"{NATIVE_BUILDS_ROUTE}/{{operationKey}}"
NATIVE_BUILD_LOG_ROUTE = f"{NATIVE_BUILDS_ROUTE}/{{operationKey}}/log-messages"
BULK_USERS_ROUTE = "/api/identity/v1/users/bulk"
BULK_USER_ROUTE = f"{BULK_USERS_ROUTE}/{{key}}"

DEPLOYMENT_ANALYSIS_FIELDS = {
    "revision": Field("int32"),
    "environmentKey": Field("uuid", nullable=True),
    "assetKey": Field("uuid", nullable=True),
}
DELETION_ANALYSIS_FIELDS = {"assetKey": Field("uuid", nullable=True)}
CODE_ANALYSIS_FIELDS = {"assetKey": Field("string"), "assetRevision": Field("int32")}
LIBRARY_FIELDS = {"fileName": Field("string"), "highCodeBinaryUri": Field("string")}
NATIVE_BUILD_FIELDS = {
    "buildKey": Field("uuid"),
    "revision": Field("int32"),
    "mobileVersionNumber": Field("string", nullable=True),
    "mobileVersionCode": Field("int32", nullable=True),
    "mobilePlatform": Field("enum", enum=MOBILE_PLATFORMS),
    "environmentKey": Field("uuid"),
    "applicationKey": Field("uuid"),
}
USER_FIELDS = {
    "name": Field("string", nullable=True),
    "email": Field("string", nullable=True),
    "isActive": Field("boolean"),
    "photoUrl": Field("string", nullable=True),
    "addToBuiltInIdentityProvider": Field("boolean"),
    "identityProviderKey": Field("uuid", nullable=True),
    "subject": Field("string", nullable=True),
    "username": Field("string", nullable=True),
}
MESSAGES_DEFAULT_LIMIT = 50


def _query(request: Request, name: str) -> str | None:
    """A query parameter by case-insensitive name (ASP.NET binds ``Limit`` and ``limit`` alike)."""
    wanted = name.casefold()
    return next((value for key, value in request.query_params.items() if key.casefold() == wanted), None)


def _bounded_int(request: Request, name: str, default: int, minimum: int, maximum: int) -> int:
    raw = _query(request, name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise QueryError(name, f"The value '{raw}' is not valid for {name}.") from None
    if not minimum <= value <= maximum:
        raise QueryError(name, f"The field {name} must be between {minimum} and {maximum}.")
    return value


def _native_scope(request: Request) -> tuple[str, str]:
    """``environmentKey`` and ``applicationKey``: optional in the spec, but the status and messages of a
    native build are scoped by them (the documented calls always pass both); without them: 400."""
    environment_key = _guid_param(request, "environmentKey")
    application_key = _guid_param(request, "applicationKey")
    if environment_key is None or application_key is None:
        missing = "environmentKey" if environment_key is None else "applicationKey"
        raise QueryError(missing, f"The {missing} query parameter is required.")
    return environment_key, application_key


def register_long_running_routes(app: FastAPI, state: EmulatorState, guard: Guard) -> None:
    """Add the routes (before the app's catch-all ``/api`` route)."""

    endpoint = make_endpoint(app, guard)

    # Generated code of a build ------------------------------------------------------------------------

    @endpoint("POST", GENERATED_CODE_ROUTE, "OS-BLD-40001")
    async def start_generated_code(request: Request, operationKey: str) -> Response:
        return JSONResponse(state.jobs.start_generated_code(operationKey), status_code=201)

    @endpoint("GET", GENERATED_CODE_ROUTE, "OS-BLD-40001")
    async def get_generated_code(request: Request, operationKey: str) -> Response:
        return JSONResponse(state.jobs.generated_code(operationKey))

    # Dependency management ----------------------------------------------------------------------------

    @endpoint("POST", DEPLOYMENT_ANALYSES_ROUTE, "OS-DEPM-40001")
    async def start_deployment_analysis(request: Request) -> Response:
        body = await json_body(request, "OS-DEPM-40001", required=True)
        values = validate_body(
            body, DEPLOYMENT_ANALYSIS_FIELDS, "OS-DEPM-40001", schema_name="PublicLaunchDeploymentAnalysisRequest"
        )
        require(values, ("assetKey", "revision", "environmentKey"), "a deployment analysis", "OS-DEPM-40001")
        key = state.jobs.start_analysis(
            "deployment_analysis", values["assetKey"], values["revision"], values["environmentKey"]
        )
        return JSONResponse({"analysisKey": key}, status_code=201)

    @endpoint("GET", DEPLOYMENT_ANALYSIS_ROUTE, "OS-DEPM-40001")
    async def get_deployment_analysis(request: Request, analysisKey: str) -> Response:
        return JSONResponse(state.jobs.analysis("deployment_analysis", analysisKey))

    @endpoint("POST", DELETION_ANALYSES_ROUTE, "OS-DEPM-40001")
    async def start_deletion_analysis(request: Request) -> Response:
        body = await json_body(request, "OS-DEPM-40001", required=True)
        values = validate_body(
            body, DELETION_ANALYSIS_FIELDS, "OS-DEPM-40001", schema_name="PublicLaunchDeletionAnalysisRequest"
        )
        require(values, ("assetKey",), "a deletion analysis", "OS-DEPM-40001")
        key = state.jobs.start_analysis("deletion_analysis", values["assetKey"], None, None)
        return JSONResponse({"analysisKey": key}, status_code=201)

    @endpoint("GET", DELETION_ANALYSIS_ROUTE, "OS-DEPM-40001")
    async def get_deletion_analysis(request: Request, analysisKey: str) -> Response:
        return JSONResponse(state.jobs.analysis("deletion_analysis", analysisKey))

    # Code quality -------------------------------------------------------------------------------------

    @endpoint("POST", CODE_ANALYSES_ROUTE, "OS-CQ-40001")
    async def start_code_analysis(request: Request) -> Response:
        body = await json_body(request, "OS-CQ-40001", required=True)
        values = validate_body(
            body,
            CODE_ANALYSIS_FIELDS,
            "OS-CQ-40001",
            schema_name="AdhocAnalysisRequestV1",
            required=("assetKey", "assetRevision"),
        )
        if not values["assetKey"] or values["assetRevision"] < 1:
            field = "assetKey" if not values["assetKey"] else "assetRevision"
            raise ApiError(400, f"The field {field} is not valid.", "OS-CQ-40001", errors={field: ["Invalid."]})
        return JSONResponse(state.jobs.start_code_analysis(values["assetKey"], values["assetRevision"]))

    @endpoint("GET", CODE_ANALYSIS_ROUTE, "OS-CQ-40001")
    async def get_code_analysis(request: Request, analysisKey: str) -> Response:
        _bounded_int(request, "Limit", 100, 1, INT32_MAX)
        _bounded_int(request, "Offset", 0, 0, INT32_MAX)
        return JSONResponse(state.jobs.code_analysis(analysisKey))

    # External libraries -------------------------------------------------------------------------------

    @endpoint("POST", LIBRARIES, "OS-ELG-40001")
    async def start_library_generation(request: Request) -> Response:
        body = await json_body(request, "OS-ELG-40001", required=True)
        values = validate_body(
            body,
            LIBRARY_FIELDS,
            "OS-ELG-40001",
            schema_name="GenerationOperationCreationRequest",
            required=("fileName", "highCodeBinaryUri"),
        )
        if not values["fileName"].strip() or not values["highCodeBinaryUri"].startswith("https://"):
            detail = "fileName must be a file name and highCodeBinaryUri the https downloadUrl of GET /uploads."
            raise ApiError(400, detail, "OS-ELG-40002")
        key = state.jobs.start_library_generation(values["fileName"], values["highCodeBinaryUri"])
        return JSONResponse({"operationKey": key}, status_code=201)

    @endpoint("GET", LIBRARY_ROUTE, "OS-ELG-40001")
    async def get_library_generation(request: Request, operationKey: str) -> Response:
        return JSONResponse(state.jobs.library_generation(operationKey))

    @endpoint("GET", LIBRARY_LOG_ROUTE, "OS-ELG-40001")
    async def get_library_generation_log(request: Request, operationKey: str) -> Response:
        return JSONResponse(state.jobs.library_generation_log(operationKey))

    # Native mobile builds -----------------------------------------------------------------------------

    @endpoint("POST", NATIVE_BUILDS_ROUTE, "OS-NABS-40001")
    async def start_native_build(request: Request) -> Response:
        body = await json_body(request, "OS-NABS-40001", required=True)
        values = validate_body(
            body,
            NATIVE_BUILD_FIELDS,
            "OS-NABS-40001",
            schema_name="BuildOperationRequest",
            required=("buildKey", "revision", "mobilePlatform", "environmentKey", "applicationKey"),
        )
        return JSONResponse(state.jobs.start_native_build(values), status_code=201)

    @endpoint("GET", NATIVE_BUILD_ROUTE, "OS-NABS-40001")
    async def get_native_build(request: Request, operationKey: str) -> Response:
        return JSONResponse(state.jobs.native_build(operationKey, *_native_scope(request)))

    @endpoint("GET", NATIVE_BUILD_LOG_ROUTE, "OS-NABS-40001")
    async def get_native_build_log(request: Request, operationKey: str) -> Response:
        scope = _native_scope(request)
        limit = _bounded_int(request, "limit", MESSAGES_DEFAULT_LIMIT, 1, 1000)
        offset = _bounded_int(request, "offset", 0, 0, INT32_MAX)
        messages = state.jobs.native_build_log(operationKey, *scope)
        results = messages[offset : offset + limit]
        page: dict[str, Any] = {"count": len(results), "limit": limit, "offset": offset}
        if offset + limit < len(messages):  # Int32PageInfo: nextPageOffset is not nullable, so absent at the end
            page["nextPageOffset"] = offset + limit
        return JSONResponse({"page": page, "results": results})

    # Identity: bulk user creation ---------------------------------------------------------------------

    @endpoint("POST", BULK_USERS_ROUTE, "OS-IDENTITY-40001")
    async def start_bulk_users(request: Request) -> Response:
        body = await json_body(request, "OS-IDENTITY-40001", required=True)
        if not isinstance(body, dict) or set(body) != {"records"} or not isinstance(body["records"], list):
            detail = 'The body must be {"records": [...]} (UserProfileCreateApiRequestBulkApiRequest).'
            raise ApiError(400, detail, "OS-IDENTITY-40001", errors={"records": [detail]})
        records = body["records"]
        if not 1 <= len(records) <= MAX_BULK_RECORDS:
            detail = f"Send between 1 and {MAX_BULK_RECORDS} records, not {len(records)}."
            raise ApiError(400, detail, "OS-IDENTITY-40002", errors={"records": [detail]})
        checked = [
            validate_body(r, USER_FIELDS, "OS-IDENTITY-40001", schema_name="UserProfileCreateApiRequest")
            for r in records
        ]
        return JSONResponse(state.jobs.start_bulk_users(checked), status_code=202)

    @endpoint("GET", BULK_USER_ROUTE, "OS-IDENTITY-40001")
    async def get_bulk_users(request: Request, key: str) -> Response:
        return JSONResponse(state.jobs.bulk_users(key))
