"""HTTP routes of users, groups, application and organization roles (state in ``access``).

Bodies are pydantic models named and declared like the official request schemas (``validation.OdcBody``);
lists page with totals, ``limit`` 1 to 100 as the identity spec says; array filters are comma-separated.
Bulk user creation is in ``long_running_routes``. Every route goes through the app's guard first.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, StrictBool, StrictStr

from airflow_provider_odc.emulator.long_running_routes import UserProfileCreateApiRequest
from airflow_provider_odc.emulator.state import EmulatorState
from airflow_provider_odc.emulator.validation import NOT_NULL, ApiError, Guid, OdcBody
from airflow_provider_odc.emulator.web import (
    Guard,
    GuidFilter,
    GuidList,
    StringList,
    bounded_int,
    guid,
    listed,
    make_endpoint,
    one_of,
    page_with_totals,
    parsed,
)

IDENTITY = "/api/identity/v1"
USERS_ROUTE = f"{IDENTITY}/users"
USER_ROUTE = f"{USERS_ROUTE}/{{key}}"
USER_COUNT_ROUTE = f"{USERS_ROUTE}/count"  # registered before USER_ROUTE, which would take "count" for a key
USER_ORG_ROLES_ROUTE = f"{USER_ROUTE}/organization-roles"
USER_ORG_ROLE_ROUTE = f"{USER_ROUTE}/organization-roles/{{roleKey}}"
USER_APP_ROLES_ROUTE = f"{USER_ROUTE}/application-roles"
USER_APP_ROLE_ROUTE = f"{USER_ROUTE}/application-roles/{{roleKey}}"
ORG_ROLES_ROUTE = f"{IDENTITY}/organization-roles"
ORG_ROLE_USERS_ROUTE = f"{ORG_ROLES_ROUTE}/{{key}}/users"
APP_ROLES_ROUTE = f"{IDENTITY}/application-roles"
APP_ROLE_USERS_ROUTE = f"{APP_ROLES_ROUTE}/{{key}}/users"
GROUPS_ROUTE = f"{IDENTITY}/groups"
GROUP_ROUTE = f"{GROUPS_ROUTE}/{{key}}"
GROUP_USERS_ROUTE = f"{GROUP_ROUTE}/users"
GROUP_APP_ROLES_ROUTE = f"{GROUP_ROUTE}/application-roles"
CODE = "OS-IDENTITY-40001"
STATUSES = ("Active", "Invited", "Inactive", "PendingRegistration")
MAX_USER_KEYS = 20

IdentityLimit = Annotated[int, parsed(bounded_int("limit", 1, 100), 100)]
Offset = Annotated[int, parsed(bounded_int("offset", 0), 0)]


class IdentityPaging(BaseModel):
    """``limit`` ("Allowed values: 1 to 100. Default value: 100") and ``offset``."""

    limit: IdentityLimit = 100
    offset: Offset = 0


class UserQuery(IdentityPaging):
    nameOrEmailContains: str | None = None
    userKeys: GuidList = ()
    status: Annotated[str | None, parsed(one_of("status", STATUSES))] = None
    domains: StringList = ()


class UserCountQuery(BaseModel):
    status: Annotated[str | None, parsed(one_of("status", STATUSES))] = None
    domains: StringList = ()


class OrganizationRoleQuery(IdentityPaging):
    nameContains: str | None = None


class UserOrganizationRoleQuery(IdentityPaging):
    scopes: Annotated[tuple[str, ...], listed(one_of("scopes", ("Organization", "Asset")))] = ()


class ApplicationRoleQuery(IdentityPaging):
    key: GuidFilter = None
    assetKey: GuidFilter = None
    environmentKey: GuidFilter = None
    environmentKeys: GuidList = ()
    nameContains: str | None = None


class UserApplicationRoleQuery(IdentityPaging):
    environmentKey: GuidFilter = None
    environmentKeys: GuidList = ()
    assignmentSources: Annotated[
        tuple[str, ...], listed(one_of("assignmentSources", ("Direct", "GroupAssigned", "GroupMapped")))
    ] = ()


class GroupQuery(IdentityPaging):
    nameContains: str | None = None
    environmentKey: GuidFilter = None
    environmentKeys: GuidList = ()


class GroupUserQuery(IdentityPaging):
    membershipType: Annotated[str | None, parsed(one_of("membershipType", ("Assigned", "Mapped")))] = None


class UserProfilePatchRequest(OdcBody):
    name: StrictStr | None = None
    isActive: StrictBool | None = None
    photoUrl: StrictStr | None = None


class GrantPeriodApiModel(OdcBody):
    startTime: StrictStr | None = None
    endTime: StrictStr | None = None


class GrantDetailsRequest(OdcBody):
    grantPeriod: GrantPeriodApiModel | None = None
    assetKeys: list[Guid] | None = None
    portfolioKey: Guid | None = None


class GroupCreateRequest(OdcBody):
    name: StrictStr | None = None
    description: StrictStr | None = None
    environmentKey: Annotated[Guid | None, NOT_NULL] = None
    applicationRoleKeys: list[Guid] | None = None
    userKeys: list[Guid] | None = None


class PatchGroupRequest(OdcBody):
    name: StrictStr | None = None
    description: StrictStr | None = None


class PatchUsersByGroupRequest(OdcBody):
    userKeysToAdd: list[Guid] | None = None
    userKeysToRemove: list[Guid] | None = None


class PatchGroupApplicationRolesRequest(OdcBody):
    applicationRoleKeysToAdd: list[Guid] | None = None
    applicationRoleKeysToRemove: list[Guid] | None = None


def _stages(one: str | None, many: tuple[str, ...]) -> list[str]:
    """``environmentKey`` and ``environmentKeys`` are mutually exclusive (the spec says so)."""
    if one is not None and many:
        detail = "Use either environmentKey or environmentKeys, not both."
        raise ApiError(400, detail, CODE, errors={"environmentKeys": [detail]})
    return [one] if one is not None else list(many)


def _key(raw: str) -> str:
    """A path key: not a GUID is a 400, as ASP.NET's route binding answers."""
    try:
        return guid(raw)
    except ValueError as error:
        raise ApiError(400, str(error), CODE, errors={"key": [str(error)]}) from None


def register_access_routes(app: FastAPI, state: EmulatorState, guard: Guard) -> None:
    """Add the users, groups and roles routes (before the app's catch-all ``/api`` route)."""

    endpoint = make_endpoint(app, guard)
    directory = state.access

    def page(items: list[object], query: IdentityPaging) -> Response:
        return JSONResponse(page_with_totals(items, query.limit, query.offset))

    # Users --------------------------------------------------------------------------------------------

    @endpoint("GET", USERS_ROUTE, CODE)
    async def list_users(query: Annotated[UserQuery, Query()]) -> Response:
        if len(query.userKeys) > MAX_USER_KEYS:
            detail = f"Allows up to {MAX_USER_KEYS} user keys, not {len(query.userKeys)}."
            raise ApiError(400, detail, CODE, errors={"userKeys": [detail]})
        users = directory.users(
            domains=list(query.domains),
            status=query.status,
            user_keys=list(query.userKeys),
            name_or_email_contains=query.nameOrEmailContains,
        )
        return page(list(users), query)

    @endpoint("POST", USERS_ROUTE, CODE)
    async def create_user(body: UserProfileCreateApiRequest) -> Response:
        return JSONResponse(directory.create_user(body.present()), status_code=201)

    @endpoint("GET", USER_COUNT_ROUTE, CODE)
    async def count_users(query: Annotated[UserCountQuery, Query()]) -> Response:
        return JSONResponse({"userCount": len(directory.users(domains=list(query.domains), status=query.status))})

    @endpoint("GET", USER_ROUTE, CODE)
    async def get_user(key: str) -> Response:
        return JSONResponse(directory.user(_key(key)))

    @endpoint("PATCH", USER_ROUTE, CODE)
    async def patch_user(key: str, body: UserProfilePatchRequest | None = None) -> Response:
        directory.patch_user(_key(key), {} if body is None else body.present())
        return Response(status_code=204)

    @endpoint("DELETE", USER_ROUTE, CODE)
    async def delete_user(key: str) -> Response:
        directory.delete_user(_key(key))
        return Response(status_code=204)

    # Organization roles -------------------------------------------------------------------------------

    @endpoint("GET", ORG_ROLES_ROUTE, CODE)
    async def list_organization_roles(query: Annotated[OrganizationRoleQuery, Query()]) -> Response:
        return page(list(directory.organization_roles(name_contains=query.nameContains)), query)

    @endpoint("GET", ORG_ROLE_USERS_ROUTE, CODE)
    async def organization_role_users(key: str, query: Annotated[IdentityPaging, Query()]) -> Response:
        return page(list(directory.organization_role_users(_key(key))), query)

    @endpoint("GET", USER_ORG_ROLES_ROUTE, CODE)
    async def user_organization_roles(key: str, query: Annotated[UserOrganizationRoleQuery, Query()]) -> Response:
        return page(list(directory.user_organization_roles(_key(key), list(query.scopes))), query)

    @endpoint("POST", USER_ORG_ROLE_ROUTE, CODE)
    async def grant_organization_role(key: str, roleKey: str, body: GrantDetailsRequest | None = None) -> Response:
        assets = None if body is None or body.assetKeys is None else [str(a) for a in body.assetKeys]
        directory.grant_organization_role(_key(key), _key(roleKey), assets)
        return Response(status_code=201)

    @endpoint("DELETE", USER_ORG_ROLE_ROUTE, CODE)
    async def revoke_organization_role(key: str, roleKey: str) -> Response:
        directory.revoke_organization_role(_key(key), _key(roleKey))
        return Response(status_code=204)

    # Application roles --------------------------------------------------------------------------------

    @endpoint("GET", APP_ROLES_ROUTE, CODE)
    async def list_application_roles(query: Annotated[ApplicationRoleQuery, Query()]) -> Response:
        roles = directory.application_roles(
            key=query.key,
            asset_key=query.assetKey,
            environment_keys=_stages(query.environmentKey, query.environmentKeys),
            name_contains=query.nameContains,
        )
        return page(list(roles), query)

    @endpoint("GET", APP_ROLE_USERS_ROUTE, CODE)
    async def application_role_users(key: str, query: Annotated[IdentityPaging, Query()]) -> Response:
        return page(list(directory.application_role_users(_key(key))), query)

    @endpoint("GET", USER_APP_ROLES_ROUTE, CODE)
    async def user_application_roles(key: str, query: Annotated[UserApplicationRoleQuery, Query()]) -> Response:
        roles = directory.user_application_roles(
            _key(key),
            environment_keys=_stages(query.environmentKey, query.environmentKeys),
            sources=list(query.assignmentSources),
        )
        return page(list(roles), query)

    @endpoint("POST", USER_APP_ROLE_ROUTE, CODE)
    async def grant_application_role(key: str, roleKey: str) -> Response:
        directory.grant_application_role(_key(key), _key(roleKey))
        return Response(status_code=201)

    @endpoint("DELETE", USER_APP_ROLE_ROUTE, CODE)
    async def revoke_application_role(key: str, roleKey: str) -> Response:
        directory.revoke_application_role(_key(key), _key(roleKey))
        return Response(status_code=204)

    # Groups -------------------------------------------------------------------------------------------

    @endpoint("GET", GROUPS_ROUTE, CODE)
    async def list_groups(query: Annotated[GroupQuery, Query()]) -> Response:
        groups = directory.groups(
            name_contains=query.nameContains, environment_keys=_stages(query.environmentKey, query.environmentKeys)
        )
        return page(list(groups), query)

    @endpoint("POST", GROUPS_ROUTE, CODE)
    async def create_group(body: GroupCreateRequest) -> Response:
        return JSONResponse(directory.create_group(body.present()), status_code=201)

    @endpoint("GET", GROUP_ROUTE, CODE)
    async def get_group(key: str) -> Response:
        return JSONResponse(directory.group(_key(key)))

    @endpoint("PATCH", GROUP_ROUTE, CODE)
    async def patch_group(key: str, body: PatchGroupRequest | None = None) -> Response:
        directory.patch_group(_key(key), {} if body is None else body.present())
        return Response(status_code=204)

    @endpoint("DELETE", GROUP_ROUTE, CODE)
    async def delete_group(key: str) -> Response:
        directory.delete_group(_key(key))
        return Response(status_code=204)

    @endpoint("GET", GROUP_USERS_ROUTE, CODE)
    async def group_users(key: str, query: Annotated[GroupUserQuery, Query()]) -> Response:
        return page(list(directory.group_users(_key(key), query.membershipType)), query)

    @endpoint("PATCH", GROUP_USERS_ROUTE, CODE)
    async def patch_group_users(key: str, body: PatchUsersByGroupRequest | None = None) -> Response:
        add = [str(k) for k in (body.userKeysToAdd or [])] if body else []
        remove = [str(k) for k in (body.userKeysToRemove or [])] if body else []
        directory.patch_group_users(_key(key), add, remove)
        return Response(status_code=200)

    @endpoint("GET", GROUP_APP_ROLES_ROUTE, CODE)
    async def group_application_roles(key: str, query: Annotated[IdentityPaging, Query()]) -> Response:
        return page(list(directory.group_application_roles(_key(key))), query)

    @endpoint("PATCH", GROUP_APP_ROLES_ROUTE, CODE)
    async def patch_group_application_roles(
        key: str, body: PatchGroupApplicationRolesRequest | None = None
    ) -> Response:
        add = [str(k) for k in (body.applicationRoleKeysToAdd or [])] if body else []
        remove = [str(k) for k in (body.applicationRoleKeysToRemove or [])] if body else []
        directory.patch_group_application_roles(_key(key), add, remove)
        return Response(status_code=200)
