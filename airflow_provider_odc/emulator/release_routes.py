"""HTTP routes of the release lifecycle: revisions and tags, builds, deploy/publish operations, deployed assets.

Each handler is thin: the shared guard (call counting, faults, ODC's rate limits, bearer auth), then query
and body parsing, then one call into ``EmulatorState``. ``QueryError`` and ``ApiError`` become ProblemDetails.
Request bodies are pydantic models named and declared like the official schemas (``validation.OdcBody``).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, BeforeValidator, StrictStr, ValidationError

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
    DateFilter,
    Guard,
    GuidFilter,
    GuidList,
    Paging,
    Sort,
    boolean,
    bounded_int,
    guid,
    listed,
    make_endpoint,
    one_of,
    page_with_totals,
    page_without_totals,
    parsed,
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


def _revision_number(raw: Any) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= INT32_MAX:
        raise ValueError(f"The value '{raw}' is not valid for revisionNumber.")
    return value


RevisionNumber = Annotated[int, BeforeValidator(_revision_number)]


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


class RevisionQuery(Paging):
    modelDigest: str | None = None
    revisionDateTimeSince: DateFilter = None
    revisionDateTimeTo: DateFilter = None
    isTagged: Annotated[bool | None, parsed(boolean("isTagged"))] = None
    tag: str | None = None
    commitMessage: str | None = None
    sort: Annotated[Sort, parsed(parse_revision_sort)] = None


class BuildQuery(BaseModel):
    assetKey: str | None = None  # a bad GUID is a 404 here (the spec's "Couldn't find asset key or revision")
    assetRevision: Annotated[int | None, parsed(bounded_int("assetRevision"))] = None
    byBuildType: Annotated[str | None, parsed(one_of("byBuildType", BUILD_TYPES))] = None


class OperationQuery(Paging):
    """The filters of both operation lists (deployment and publish)."""

    environmentKey: GuidFilter = None
    status: Annotated[str | None, parsed(one_of("status", OPERATION_STATUSES))] = None
    assetKey: GuidFilter = None
    revision: Annotated[int | None, parsed(bounded_int("revision"))] = None
    portfolioKey: GuidFilter = None
    createdDateSince: DateFilter = None
    createdDateTo: DateFilter = None
    sort: Annotated[Sort, parsed(parse_operation_sort)] = None


class DeploymentQuery(OperationQuery):
    operations: Annotated[tuple[str, ...], listed(one_of("operations", DEPLOYMENT_OPERATIONS))] = ()


class MessagesQuery(BaseModel):
    limit: Annotated[int, parsed(bounded_int("limit", 1, 1000), MESSAGES_DEFAULT_LIMIT)] = MESSAGES_DEFAULT_LIMIT
    offset: str | None = None  # the opaque continuation token of StringPageInfo


class DeployedAssetQuery(Paging):
    type: Annotated[tuple[str, ...], listed(one_of("type", DEPLOYABLE_TYPES))] = ()
    environmentKey: GuidList = ()
    key: GuidList = ()
    nameContains: str | None = None
    portfolioKey: GuidFilter = None
    sort: Annotated[Sort, parsed(_deployed_sort)] = None


def register_release_routes(app: FastAPI, state: EmulatorState, guard: Guard) -> None:
    """Add the release-lifecycle API routes (before the app's catch-all ``/api`` route)."""

    endpoint = make_endpoint(app, guard)

    # Asset revisions and tags -------------------------------------------------------------------------

    @endpoint("GET", REVISIONS_ROUTE, "OS-APPS-40001")
    async def list_revisions(assetKey: str, query: Annotated[RevisionQuery, Query()]) -> Response:
        selected = filter_revisions(
            state.release.revisions(assetKey),
            model_digest=query.modelDigest,
            since=query.revisionDateTimeSince,
            until=query.revisionDateTimeTo,
            is_tagged=query.isTagged,
            tag=query.tag,
            commit_message=query.commitMessage,
            sort=query.sort,
        )
        return JSONResponse(page_with_totals(selected, query.limit, query.offset))

    @endpoint("GET", REVISION_ROUTE, "OS-APPS-40001")
    async def get_revision(assetKey: str, revisionNumber: RevisionNumber) -> Response:
        return JSONResponse(state.release.revision(assetKey, revisionNumber))

    @endpoint("PATCH", REVISION_ROUTE, "OS-APPS-40001")
    async def patch_revision(
        assetKey: str, revisionNumber: RevisionNumber, body: AssetVersionPatchRequest | None = None
    ) -> Response:
        state.release.patch_revision(assetKey, revisionNumber, {} if body is None else body.present())
        return Response(status_code=204)

    @endpoint("GET", RELEASE_NOTES_ROUTE, "OS-APPS-40001")
    async def get_release_notes(assetKey: str, revisionNumber: RevisionNumber) -> Response:
        return JSONResponse(state.release.release_notes(assetKey, revisionNumber))

    @endpoint("GET", LATEST_REVISION_ROUTE, "OS-APPS-40001")
    async def get_latest_revision(assetKey: str) -> Response:
        return JSONResponse(state.release.latest_revision(assetKey))

    @endpoint("GET", HIGHEST_TAG_ROUTE, "OS-APPS-40001")
    async def get_highest_tag_revision(assetKey: str) -> Response:
        return JSONResponse(state.release.highest_tag_revision(assetKey))

    # Builds -------------------------------------------------------------------------------------------

    @endpoint("POST", BUILDS_ROUTE, "OS-BLD-40001")
    async def start_build(body: BuildOperationDetails) -> Response:
        values = body.present()
        started = state.release.start_build(values["assetKey"], body.assetRevision, body.buildType)
        return JSONResponse(started, status_code=201)

    @endpoint("GET", BUILDS_ROUTE, "OS-BLD-40001")
    async def list_builds(query: Annotated[BuildQuery, Query()]) -> Response:
        asset_key = None
        if query.assetKey:
            try:
                asset_key = guid(query.assetKey)
            except ValueError:
                raise ApiError(404, "Couldn't find asset key or revision.", "OS-BLD-40401") from None
        builds = state.release.list_builds(asset_key, query.assetRevision, query.byBuildType)
        return JSONResponse({"builds": builds})

    @endpoint("GET", BUILD_ROUTE, "OS-BLD-40001")
    async def get_build(operationKey: str) -> Response:
        return JSONResponse(state.release.get_build(operationKey))

    @endpoint("GET", BUILD_LOG_ROUTE, "OS-BLD-40001")
    async def get_build_log(operationKey: str) -> Response:
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
    async def start_publish(body: PublishOperationRequest | None = None) -> Response:
        if body is None:  # the spec makes the body optional: an empty one is checked as {}, field by field
            try:
                PublishOperationRequest.model_validate({})
            except ValidationError as error:
                raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in error.errors()]) from None
        assert body is not None
        values = body.present()
        started = state.release.start_publish(values["assetKey"], body.revision, values.get("environmentKey"))
        return JSONResponse(started, status_code=201)

    def list_operations(family: str, query: OperationQuery, operations: tuple[str, ...] = ()) -> Response:
        selected = state.release.list_operations(
            family,
            environment_key=query.environmentKey,
            status=query.status,
            asset_key=query.assetKey,
            revision=query.revision,
            portfolio_key=query.portfolioKey,
            operations=operations,
            since=query.createdDateSince,
            until=query.createdDateTo,
            sort=query.sort,
        )
        return JSONResponse(page_without_totals(selected, query.limit, query.offset))

    def operation_messages(family: str, operation_key: str, query: MessagesQuery) -> Response:
        key, messages = state.release.operation_messages(family, operation_key)
        token, limit = query.offset or None, query.limit
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
    async def list_deployments(query: Annotated[DeploymentQuery, Query()]) -> Response:
        return list_operations("deployment", query, query.operations)

    @endpoint("GET", DEPLOYMENT_ROUTE, "OS-DPL-40001")
    async def get_deployment(operationKey: str) -> Response:
        return JSONResponse(state.release.get_operation("deployment", operationKey))

    @endpoint("GET", DEPLOYMENT_MESSAGES_ROUTE, "OS-DPL-40001")
    async def get_deployment_messages(operationKey: str, query: Annotated[MessagesQuery, Query()]) -> Response:
        return operation_messages("deployment", operationKey, query)

    @endpoint("GET", PUBLISHES_ROUTE, "OS-PUB-40001")
    async def list_publishes(query: Annotated[OperationQuery, Query()]) -> Response:
        return list_operations("publish", query)

    @endpoint("GET", PUBLISH_ROUTE, "OS-PUB-40001")
    async def get_publish(operationKey: str) -> Response:
        return JSONResponse(state.release.get_operation("publish", operationKey))

    @endpoint("GET", PUBLISH_MESSAGES_ROUTE, "OS-PUB-40001")
    async def get_publish_messages(operationKey: str, query: Annotated[MessagesQuery, Query()]) -> Response:
        return operation_messages("publish", operationKey, query)

    # Portfolio: deployed assets -----------------------------------------------------------------------

    @endpoint("GET", DEPLOYED_ASSETS_ROUTE, "OS-PORTFOLIO-40001")
    async def list_deployed_assets(query: Annotated[DeployedAssetQuery, Query()]) -> Response:
        selected = state.release.deployed_assets(
            environment_keys=list(query.environmentKey),
            asset_keys=list(query.key),
            types=list(query.type),
            name_contains=query.nameContains,
            portfolio_key=query.portfolioKey,
            sort=query.sort,
        )
        return JSONResponse(page_with_totals(selected, query.limit, query.offset))
