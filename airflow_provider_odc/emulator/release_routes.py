"""HTTP routes of the release lifecycle: revisions and tags, builds, deploy/publish operations, deployed assets.

Each handler is thin: the shared guard (call counting, faults, ODC's rate limits, bearer auth), then query
and body parsing, then one call into ``EmulatorState``. ``QueryError`` and ``ApiError`` become ProblemDetails.
Request bodies are pydantic models named and declared like the official schemas (``validation.OdcBody``).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import StrictStr

from airflow_provider_odc.emulator.release import (
    BUILD_TYPES,
    DEPLOYED_SORT,
    DEPLOYMENT_OPERATIONS,
    OPERATION_STATUSES,
    decode_message_offset,
    encode_message_offset,
    filter_revisions,
    parse_operation_sort,
    parse_revision_sort,
)
from airflow_provider_odc.emulator.seed import DEPLOYABLE_TYPES
from airflow_provider_odc.emulator.state import EmulatorState
from airflow_provider_odc.emulator.validation import INT32_MAX, NOT_NULL, ApiError, Guid, Int32, OdcBody
from airflow_provider_odc.emulator.web import (
    Guard,
    QueryError,
    _bool_param,
    _date_param,
    _enum_param,
    _guid_list_param,
    _guid_param,
    _int_param,
    _int_param_or_none,
    _list_param,
    _paging,
    _sort,
    make_endpoint,
    page_with_totals,
    page_without_totals,
)

ASSET_REPOSITORY = "/api/asset-repository/v1"
REVISIONS_ROUTE = f"{ASSET_REPOSITORY}/assets/{{assetKey}}/revisions"
REVISION_ROUTE = f"{ASSET_REPOSITORY}/assets/{{assetKey}}/revisions/{{revisionNumber}}"
RELEASE_NOTES_ROUTE = f"{ASSET_REPOSITORY}/assets/{{assetKey}}/revisions/{{revisionNumber}}/release-notes"
LATEST_REVISION_ROUTE = f"{ASSET_REPOSITORY}/assets/{{assetKey}}/latest-revision"
HIGHEST_TAG_ROUTE = f"{ASSET_REPOSITORY}/assets/{{assetKey}}/highest-tag-revision"
BUILDS_ROUTE = "/api/builds/v1/build-operations"
BUILD_ROUTE = f"{BUILDS_ROUTE}/{{operationKey}}"
BUILD_LOG_ROUTE = f"{BUILDS_ROUTE}/{{operationKey}}/log-messages"
DEPLOYMENTS_ROUTE = "/api/deployments/v1/deployment-operations"
DEPLOYMENT_ROUTE = f"{DEPLOYMENTS_ROUTE}/{{operationKey}}"
DEPLOYMENT_MESSAGES_ROUTE = f"{DEPLOYMENTS_ROUTE}/{{operationKey}}/messages"
PUBLISHES_ROUTE = "/api/deployments/v1/publish-operations"
PUBLISH_ROUTE = f"{PUBLISHES_ROUTE}/{{operationKey}}"
PUBLISH_MESSAGES_ROUTE = f"{PUBLISHES_ROUTE}/{{operationKey}}/messages"
DEPLOYED_ASSETS_ROUTE = "/api/portfolios/v2/deployed-assets"


class AssetVersionPatchRequest(OdcBody):
    tag: StrictStr | None = None
    releaseNotes: StrictStr | None = None
    commitMessage: StrictStr | None = None


class BuildOperationDetails(OdcBody):
    assetKey: Guid
    assetRevision: Int32
    buildType: Literal["Debug", "Release"] = "Debug"


class DeploymentOperationRequest(OdcBody):
    operation: Literal["Deploy", "Undeploy", "ApplyConfigs"]
    assetKey: Annotated[Guid | None, NOT_NULL] = None
    buildKey: Guid | None = None
    revision: Int32 | None = None
    environmentKey: Guid


class PublishOperationRequest(OdcBody):
    operation: Literal["Publish"]
    assetKey: Guid
    revision: Int32
    environmentKey: Annotated[Guid | None, NOT_NULL] = None


MESSAGES_DEFAULT_LIMIT = 50


def _revision_number(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise QueryError("revisionNumber", f"The value '{raw}' is not valid for revisionNumber.") from None
    if not 0 <= value <= INT32_MAX:
        raise QueryError("revisionNumber", f"The value '{raw}' is not valid for revisionNumber.")
    return value


def _deployed_sort(raw: str) -> list[tuple[str, bool]]:
    parsed = []
    for part in raw.split(","):
        match = DEPLOYED_SORT.fullmatch(part.strip())
        try:
            environment = str(uuid.UUID(match.group(2))) if match else ""
        except ValueError:
            environment = ""
        if not environment or match is None:
            raise ValueError(
                f"Invalid sort {part.strip()!r}. Allowed: deployments[<environmentKey>].deploymentDateTime"
                " (prefix '-' to descend)."
            )
        parsed.append((environment, match.group(1) == "-"))
    return parsed


def register_release_routes(app: FastAPI, state: EmulatorState, guard: Guard) -> None:
    """Add the release-lifecycle API routes (before the app's catch-all ``/api`` route)."""

    endpoint = make_endpoint(app, guard)

    # Asset revisions and tags -------------------------------------------------------------------------

    @endpoint("GET", REVISIONS_ROUTE, "OS-APPS-40001")
    async def list_revisions(request: Request, assetKey: str) -> Response:
        limit, offset = _paging(request)
        params = request.query_params
        is_tagged = _bool_param(request, "isTagged")
        since = _date_param(request, "revisionDateTimeSince")
        until = _date_param(request, "revisionDateTimeTo")
        sort = _sort(request, parse_revision_sort)
        selected = filter_revisions(
            state.release.revisions(assetKey),
            model_digest=params.get("modelDigest"),
            since=since,
            until=until,
            is_tagged=is_tagged,
            tag=params.get("tag"),
            commit_message=params.get("commitMessage"),
            sort=sort,
        )
        return JSONResponse(page_with_totals(selected, limit, offset))

    @endpoint("GET", REVISION_ROUTE, "OS-APPS-40001")
    async def get_revision(request: Request, assetKey: str, revisionNumber: str) -> Response:
        return JSONResponse(state.release.revision(assetKey, _revision_number(revisionNumber)))

    @endpoint("PATCH", REVISION_ROUTE, "OS-APPS-40001")
    async def patch_revision(
        assetKey: str, revisionNumber: str, body: AssetVersionPatchRequest | None = None
    ) -> Response:
        changes = {} if body is None else body.present()
        state.release.patch_revision(assetKey, _revision_number(revisionNumber), changes)
        return Response(status_code=204)

    @endpoint("GET", RELEASE_NOTES_ROUTE, "OS-APPS-40001")
    async def get_release_notes(request: Request, assetKey: str, revisionNumber: str) -> Response:
        return JSONResponse(state.release.release_notes(assetKey, _revision_number(revisionNumber)))

    @endpoint("GET", LATEST_REVISION_ROUTE, "OS-APPS-40001")
    async def get_latest_revision(request: Request, assetKey: str) -> Response:
        return JSONResponse(state.release.latest_revision(assetKey))

    @endpoint("GET", HIGHEST_TAG_ROUTE, "OS-APPS-40001")
    async def get_highest_tag_revision(request: Request, assetKey: str) -> Response:
        return JSONResponse(state.release.highest_tag_revision(assetKey))

    # Builds -------------------------------------------------------------------------------------------

    @endpoint("POST", BUILDS_ROUTE, "OS-BLD-40001")
    async def start_build(body: BuildOperationDetails) -> Response:
        values = body.present()
        started = state.release.start_build(values["assetKey"], body.assetRevision, body.buildType)
        return JSONResponse(started, status_code=201)

    @endpoint("GET", BUILDS_ROUTE, "OS-BLD-40001")
    async def list_builds(request: Request) -> Response:
        revision = _int_param_or_none(request, "assetRevision")
        build_type = _enum_param(request, "byBuildType", BUILD_TYPES)
        asset_key = request.query_params.get("assetKey") or None
        if asset_key is not None:
            try:
                asset_key = _guid_param(request, "assetKey")
            except QueryError:  # the spec answers 404 "Couldn't find asset key or revision"
                raise ApiError(404, "Couldn't find asset key or revision.", "OS-BLD-40401") from None
        return JSONResponse({"builds": state.release.list_builds(asset_key, revision, build_type)})

    @endpoint("GET", BUILD_ROUTE, "OS-BLD-40001")
    async def get_build(request: Request, operationKey: str) -> Response:
        return JSONResponse(state.release.get_build(operationKey))

    @endpoint("GET", BUILD_LOG_ROUTE, "OS-BLD-40001")
    async def get_build_log(request: Request, operationKey: str) -> Response:
        return JSONResponse({"results": state.release.build_log(operationKey)})

    # Deployment and publish operations ----------------------------------------------------------------

    @endpoint("POST", DEPLOYMENTS_ROUTE, "OS-DPL-40001")
    async def start_deployment(body: DeploymentOperationRequest) -> Response:
        values = body.present()
        started = state.release.start_deployment_operation(
            body.operation,
            values["environmentKey"],
            asset_key=values.get("assetKey"),
            build_key=values.get("buildKey"),
            revision=body.revision,
        )
        return JSONResponse(started, status_code=201)

    @endpoint("POST", PUBLISHES_ROUTE, "OS-PUB-40001")
    async def start_publish(body: PublishOperationRequest) -> Response:
        values = body.present()
        started = state.release.start_publish(values["assetKey"], body.revision, values.get("environmentKey"))
        return JSONResponse(started, status_code=201)

    def list_operations(request: Request, family: str) -> Response:
        limit, offset = _paging(request)
        operations = _list_param(request, "operations") if family == "deployment" else []
        for operation in operations:
            if operation not in DEPLOYMENT_OPERATIONS:
                allowed = ", ".join(DEPLOYMENT_OPERATIONS)
                raise QueryError(
                    "operations", f"The value '{operation}' is not valid for operations. Allowed: {allowed}."
                )
        selected = state.release.list_operations(
            family,
            environment_key=_guid_param(request, "environmentKey"),
            status=_enum_param(request, "status", OPERATION_STATUSES),
            asset_key=_guid_param(request, "assetKey"),
            revision=_int_param_or_none(request, "revision"),
            portfolio_key=_guid_param(request, "portfolioKey"),
            operations=operations,
            since=_date_param(request, "createdDateSince"),
            until=_date_param(request, "createdDateTo"),
            sort=_sort(request, parse_operation_sort),
        )
        return JSONResponse(page_without_totals(selected, limit, offset))

    def operation_messages(request: Request, family: str, operation_key: str) -> Response:
        limit = _int_param(request, "limit", MESSAGES_DEFAULT_LIMIT, 1, 1000)
        key, messages = state.release.operation_messages(family, operation_key)
        token = request.query_params.get("offset") or None
        start = 0 if token is None else decode_message_offset(key, token)
        results = messages[start : start + limit]
        more = start + limit < len(messages)
        page = {
            "count": len(results),
            "limit": limit,
            "offset": token,
            "nextPageOffset": encode_message_offset(key, start + limit) if more else None,
        }
        return JSONResponse({"page": page, "results": results})

    @endpoint("GET", DEPLOYMENTS_ROUTE, "OS-DPL-40001")
    async def list_deployments(request: Request) -> Response:
        return list_operations(request, "deployment")

    @endpoint("GET", DEPLOYMENT_ROUTE, "OS-DPL-40001")
    async def get_deployment(request: Request, operationKey: str) -> Response:
        return JSONResponse(state.release.get_operation("deployment", operationKey))

    @endpoint("GET", DEPLOYMENT_MESSAGES_ROUTE, "OS-DPL-40001")
    async def get_deployment_messages(request: Request, operationKey: str) -> Response:
        return operation_messages(request, "deployment", operationKey)

    @endpoint("GET", PUBLISHES_ROUTE, "OS-PUB-40001")
    async def list_publishes(request: Request) -> Response:
        return list_operations(request, "publish")

    @endpoint("GET", PUBLISH_ROUTE, "OS-PUB-40001")
    async def get_publish(request: Request, operationKey: str) -> Response:
        return JSONResponse(state.release.get_operation("publish", operationKey))

    @endpoint("GET", PUBLISH_MESSAGES_ROUTE, "OS-PUB-40001")
    async def get_publish_messages(request: Request, operationKey: str) -> Response:
        return operation_messages(request, "publish", operationKey)

    # Portfolio: deployed assets -----------------------------------------------------------------------

    @endpoint("GET", DEPLOYED_ASSETS_ROUTE, "OS-PORTFOLIO-40001")
    async def list_deployed_assets(request: Request) -> Response:
        limit, offset = _paging(request)
        types = _list_param(request, "type")
        for asset_type in types:
            if asset_type not in DEPLOYABLE_TYPES:
                allowed = ", ".join(DEPLOYABLE_TYPES)
                raise QueryError("type", f"The value '{asset_type}' is not valid for type. Allowed: {allowed}.")
        selected = state.release.deployed_assets(
            environment_keys=_guid_list_param(request, "environmentKey"),
            asset_keys=_guid_list_param(request, "key"),
            types=types,
            name_contains=request.query_params.get("nameContains"),
            portfolio_key=_guid_param(request, "portfolioKey"),
            sort=_sort(request, _deployed_sort),
        )
        return JSONResponse(page_with_totals(selected, limit, offset))
