"""HTTP routes of the long-running operations outside the release lifecycle (state in ``long_running``).

Generated-code packaging, deployment and deletion analyses, code analyses, external library generation,
native mobile builds and bulk user creation: the start POST (its body a pydantic model named and declared
like the official request schema, ``validation.OdcBody``), the status GET and, where the spec has one, the
messages GET. Every route goes through the app's guard (call counting, faults, rate limits, bearer auth) first.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, StrictBool, StrictStr

from airflow_provider_odc.emulator.long_running import MAX_BULK_RECORDS
from airflow_provider_odc.emulator.state import EmulatorState
from airflow_provider_odc.emulator.storage import package_problems
from airflow_provider_odc.emulator.storage_routes import presign_native_links
from airflow_provider_odc.emulator.validation import INT32_MAX, NOT_NULL, ApiError, Guid, Int32, OdcBody, require
from airflow_provider_odc.emulator.web import Guard, GuidFilter, QueryError, bounded_int, make_endpoint

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


class PublicLaunchDeploymentAnalysisRequest(OdcBody):
    revision: Annotated[Int32 | None, NOT_NULL] = None
    environmentKey: Guid | None = None
    assetKey: Guid | None = None


class PublicLaunchDeletionAnalysisRequest(OdcBody):
    assetKey: Guid | None = None


class AdhocAnalysisRequestV1(OdcBody):
    assetKey: StrictStr
    assetRevision: Int32


class GenerationOperationCreationRequest(OdcBody):
    fileName: StrictStr
    highCodeBinaryUri: StrictStr


class BuildOperationRequest(OdcBody):
    buildKey: Guid
    revision: Int32
    mobileVersionNumber: StrictStr | None = None
    mobileVersionCode: Int32 | None = None
    mobilePlatform: Literal["Android", "iOS"]
    environmentKey: Guid
    applicationKey: Guid


class UserProfileCreateApiRequest(OdcBody):
    name: StrictStr | None = None
    email: StrictStr | None = None
    isActive: Annotated[StrictBool | None, NOT_NULL] = None
    photoUrl: StrictStr | None = None
    addToBuiltInIdentityProvider: Annotated[StrictBool | None, NOT_NULL] = None
    identityProviderKey: Guid | None = None
    subject: StrictStr | None = None
    username: StrictStr | None = None


class UserProfileCreateApiRequestBulkApiRequest(OdcBody):
    records: list[UserProfileCreateApiRequest]


MESSAGES_DEFAULT_LIMIT = 50


def _bounded_int(request: Request, name: str, default: int, minimum: int, maximum: int) -> int:
    """A query parameter by case-insensitive name (ASP.NET binds ``Limit`` and ``limit`` alike; FastAPI's
    binding is case-sensitive, so these few are read by hand)."""
    wanted = name.casefold()
    raw = next((value for key, value in request.query_params.items() if key.casefold() == wanted), "")
    try:
        return default if raw == "" else bounded_int(name, minimum, maximum)(raw)
    except ValueError as error:
        raise QueryError(name, str(error)) from None


class NativeBuildScope(BaseModel):
    """``environmentKey`` and ``applicationKey``: optional in the spec, but the status and messages of a
    native build are scoped by them (the documented calls always pass both); without them: 400."""

    environmentKey: GuidFilter = None
    applicationKey: GuidFilter = None

    def required(self) -> tuple[str, str]:
        if self.environmentKey is None or self.applicationKey is None:
            missing = "environmentKey" if self.environmentKey is None else "applicationKey"
            raise QueryError(missing, f"The {missing} query parameter is required.")
        return self.environmentKey, self.applicationKey


def register_long_running_routes(app: FastAPI, state: EmulatorState, guard: Guard) -> None:
    """Add the routes (before the app's catch-all ``/api`` route)."""

    endpoint = make_endpoint(app, guard)

    # Generated code of a build ------------------------------------------------------------------------

    @endpoint("POST", GENERATED_CODE_ROUTE, "OS-BLD-40001")
    async def start_generated_code(operationKey: str) -> Response:
        return JSONResponse(state.jobs.start_generated_code(operationKey), status_code=201)

    @endpoint("GET", GENERATED_CODE_ROUTE, "OS-BLD-40001")
    async def get_generated_code(operationKey: str) -> Response:
        return JSONResponse(state.jobs.generated_code(operationKey))

    # Dependency management ----------------------------------------------------------------------------

    @endpoint("POST", DEPLOYMENT_ANALYSES_ROUTE, "OS-DEPM-40001")
    async def start_deployment_analysis(body: PublicLaunchDeploymentAnalysisRequest) -> Response:
        values = body.present()
        require(values, ("assetKey", "revision", "environmentKey"), "a deployment analysis", "OS-DEPM-40001")
        key = state.jobs.start_analysis(
            "deployment_analysis", values["assetKey"], values["revision"], values["environmentKey"]
        )
        return JSONResponse({"analysisKey": key}, status_code=201)

    @endpoint("GET", DEPLOYMENT_ANALYSIS_ROUTE, "OS-DEPM-40001")
    async def get_deployment_analysis(analysisKey: str) -> Response:
        return JSONResponse(state.jobs.analysis("deployment_analysis", analysisKey))

    @endpoint("POST", DELETION_ANALYSES_ROUTE, "OS-DEPM-40001")
    async def start_deletion_analysis(body: PublicLaunchDeletionAnalysisRequest) -> Response:
        values = body.present()
        require(values, ("assetKey",), "a deletion analysis", "OS-DEPM-40001")
        key = state.jobs.start_analysis("deletion_analysis", values["assetKey"], None, None)
        return JSONResponse({"analysisKey": key}, status_code=201)

    @endpoint("GET", DELETION_ANALYSIS_ROUTE, "OS-DEPM-40001")
    async def get_deletion_analysis(analysisKey: str) -> Response:
        return JSONResponse(state.jobs.analysis("deletion_analysis", analysisKey))

    # Code quality -------------------------------------------------------------------------------------

    @endpoint("POST", CODE_ANALYSES_ROUTE, "OS-CQ-40001")
    async def start_code_analysis(body: AdhocAnalysisRequestV1) -> Response:
        if not body.assetKey or body.assetRevision < 1:
            field = "assetKey" if not body.assetKey else "assetRevision"
            raise ApiError(400, f"The field {field} is not valid.", "OS-CQ-40001", errors={field: ["Invalid."]})
        return JSONResponse(state.jobs.start_code_analysis(body.assetKey, body.assetRevision))

    @endpoint("GET", CODE_ANALYSIS_ROUTE, "OS-CQ-40001")
    async def get_code_analysis(request: Request, analysisKey: str) -> Response:
        limit = _bounded_int(request, "Limit", 100, 1, INT32_MAX)
        offset = _bounded_int(request, "Offset", 0, 0, INT32_MAX)
        return JSONResponse(state.jobs.code_analysis(analysisKey, limit, offset))

    # External libraries -------------------------------------------------------------------------------

    @endpoint("POST", LIBRARIES, "OS-ELG-40001")
    async def start_library_generation(body: GenerationOperationCreationRequest) -> Response:
        ours, package = state.storage.object_behind(body.highCodeBinaryUri)
        if not body.fileName.strip() or not (ours or body.highCodeBinaryUri.startswith("https://")):
            detail = "fileName must be a file name and highCodeBinaryUri the https downloadUrl of GET /uploads."
            raise ApiError(400, detail, "OS-ELG-40002")
        problems = package_problems(package) if ours else ()  # another host's package cannot be read here
        key = state.jobs.start_library_generation(body.fileName, body.highCodeBinaryUri, problems)
        return JSONResponse({"operationKey": key}, status_code=201)

    @endpoint("GET", LIBRARY_ROUTE, "OS-ELG-40001")
    async def get_library_generation(operationKey: str) -> Response:
        return JSONResponse(state.jobs.library_generation(operationKey))

    @endpoint("GET", LIBRARY_LOG_ROUTE, "OS-ELG-40001")
    async def get_library_generation_log(operationKey: str) -> Response:
        return JSONResponse(state.jobs.library_generation_log(operationKey))

    # Native mobile builds -----------------------------------------------------------------------------

    @endpoint("POST", NATIVE_BUILDS_ROUTE, "OS-NABS-40001")
    async def start_native_build(body: BuildOperationRequest) -> Response:
        problems = state.mobile.build_problems(str(body.environmentKey), str(body.applicationKey), body.mobilePlatform)
        return JSONResponse(state.jobs.start_native_build(body.present(), problems), status_code=201)

    @endpoint("GET", NATIVE_BUILD_ROUTE, "OS-NABS-40001")
    async def get_native_build(
        request: Request, operationKey: str, scope: Annotated[NativeBuildScope, Query()]
    ) -> Response:
        body = state.jobs.native_build(operationKey, *scope.required())
        return JSONResponse(presign_native_links(state, request, body))

    @endpoint("GET", NATIVE_BUILD_LOG_ROUTE, "OS-NABS-40001")
    async def get_native_build_log(
        request: Request, operationKey: str, scope: Annotated[NativeBuildScope, Query()]
    ) -> Response:
        keys = scope.required()
        limit = _bounded_int(request, "limit", MESSAGES_DEFAULT_LIMIT, 1, 1000)
        offset = _bounded_int(request, "offset", 0, 0, INT32_MAX)
        messages = state.jobs.native_build_log(operationKey, *keys)
        results = messages[offset : offset + limit]
        page: dict[str, Any] = {"count": len(results), "limit": limit, "offset": offset}
        if offset + limit < len(messages):  # Int32PageInfo: nextPageOffset is not nullable, so absent at the end
            page["nextPageOffset"] = offset + limit
        return JSONResponse({"page": page, "results": results})

    # Identity: bulk user creation ---------------------------------------------------------------------

    @endpoint("POST", BULK_USERS_ROUTE, "OS-IDENTITY-40001")
    async def start_bulk_users(body: UserProfileCreateApiRequestBulkApiRequest) -> Response:
        if not 1 <= len(body.records) <= MAX_BULK_RECORDS:
            detail = f"Send between 1 and {MAX_BULK_RECORDS} records, not {len(body.records)}."
            raise ApiError(400, detail, "OS-IDENTITY-40002", errors={"records": [detail]})
        return JSONResponse(state.jobs.start_bulk_users([record.present() for record in body.records]), status_code=202)

    @endpoint("GET", BULK_USER_ROUTE, "OS-IDENTITY-40001")
    async def get_bulk_users(key: str) -> Response:
        return JSONResponse(state.jobs.bulk_users(key))
