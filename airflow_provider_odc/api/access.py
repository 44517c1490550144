"""User and Access Management API (``/api/identity/v1``): users, groups, application and organization roles.

Paths, request bodies and typed results of the reads and per-item writes the people-and-access sync uses
(bulk user creation is ``identity.BULK_USERS``). Lists page 100 at most (``limit`` 1..100). An application
role (ODC Portal: end-user role) belongs to one asset on one stage; an organization role is tenant-wide.
No I/O here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_odc.api._parse import as_object, objects, required_str, text
from airflow_provider_odc.api.identity import BULK_USERS_PATH

BASE = "/api/identity/v1"
USERS = f"{BASE}/users"
GROUPS = f"{BASE}/groups"
APPLICATION_ROLES = f"{BASE}/application-roles"
ORGANIZATION_ROLES = f"{BASE}/organization-roles"
BULK_USERS = BULK_USERS_PATH
#: The most a list page holds, and the most records ``POST /users/bulk`` takes.
PAGE_LIMIT = 100
BULK_LIMIT = 100


def user_path(user_key: str) -> str:
    return f"{USERS}/{user_key}"


def user_organization_roles_path(user_key: str) -> str:
    return f"{USERS}/{user_key}/organization-roles"


def user_organization_role_path(user_key: str, role_key: str) -> str:
    return f"{USERS}/{user_key}/organization-roles/{role_key}"


def user_application_roles_path(user_key: str) -> str:
    return f"{USERS}/{user_key}/application-roles"


def user_application_role_path(user_key: str, role_key: str) -> str:
    return f"{USERS}/{user_key}/application-roles/{role_key}"


def group_path(group_key: str) -> str:
    return f"{GROUPS}/{group_key}"


def group_users_path(group_key: str) -> str:
    return f"{GROUPS}/{group_key}/users"


def group_application_roles_path(group_key: str) -> str:
    return f"{GROUPS}/{group_key}/application-roles"


@dataclass(frozen=True)
class User:
    """``UserProfileApiResponse``: the fields the sync reads."""

    key: str
    email: str | None
    name: str | None
    is_active: bool
    status: str | None
    photo_url: str | None
    has_organization_roles: bool
    has_application_roles: bool

    @classmethod
    def from_json(cls, body: Any) -> User:
        item = as_object(body, "a user")
        found = item.get("access")
        access: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        return cls(
            key=required_str(item, "key", "a user"),
            email=text(item, "email"),
            name=text(item, "name"),
            is_active=item.get("isActive") is not False,
            status=text(item, "status"),
            photo_url=text(item, "photoUrl"),
            # Unknown (absent) counts as "may have": the sync then reads the roles instead of assuming none.
            has_organization_roles=access.get("hasOrganizationRoles") is not False,
            has_application_roles=access.get("hasApplicationRoles") is not False,
        )


@dataclass(frozen=True)
class Group:
    """``GroupApiResponse``: a group of end users on one stage."""

    key: str
    name: str
    stage_key: str | None

    @classmethod
    def from_json(cls, body: Any) -> Group:
        item = as_object(body, "a group")
        return cls(required_str(item, "key", "a group"), text(item, "name") or "", text(item, "environmentKey"))


@dataclass(frozen=True)
class ApplicationRole:
    """``ApplicationRoleApiResponse``: an end-user role of one asset on one stage."""

    key: str
    name: str
    stage_key: str | None
    asset_key: str | None

    @classmethod
    def from_json(cls, body: Any) -> ApplicationRole:
        item = as_object(body, "an application role")
        return cls(
            key=required_str(item, "key", "an application role"),
            name=text(item, "name") or "",
            stage_key=text(item, "environmentKey"),
            asset_key=text(item, "assetKey"),
        )


@dataclass(frozen=True)
class OrganizationRole:
    """``OrganizationRoleApiResponse`` (or one of a user's, ``OrganizationRoleByUserApiResponse``)."""

    key: str
    name: str
    asset_key: str | None = None  # set on a user's asset-scoped assignment

    @classmethod
    def from_json(cls, body: Any) -> OrganizationRole:
        item = as_object(body, "an organization role")
        return cls(required_str(item, "key", "an organization role"), text(item, "name") or "", text(item, "assetKey"))


def member_key(body: Any) -> str | None:
    """The user key of a ``GroupUserResponse`` (``{membershipTypes, user}``)."""
    user = as_object(body, "a group member").get("user")
    return text(user, "key") if isinstance(user, dict) else None


def bulk_create_body(records: list[dict[str, Any]]) -> dict[str, Any]:
    """``UserProfileCreateApiRequestBulkApiRequest``: 1 to 100 ``UserProfileCreateApiRequest`` records."""
    return {"records": records}


def create_record(email: str, name: str | None) -> dict[str, Any]:
    """``UserProfileCreateApiRequest`` of an active user (``isActive`` defaults to true)."""
    record: dict[str, Any] = {"email": email, "isActive": True}
    if name:
        record["name"] = name
    return record


def patch_user_body(name: str | None, is_active: bool, photo_url: str | None) -> dict[str, Any]:
    """``UserProfilePatchRequest`` with every field (ODC's advice: send full objects)."""
    return {"name": name, "isActive": is_active, "photoUrl": photo_url}


def bulk_created_keys(body: Any) -> dict[str, str]:
    """Email (casefolded) -> user key of the records a finished bulk operation inserted or updated."""
    created: dict[str, str] = {}
    for operation in objects(as_object(body, "a bulk operation").get("operations")):
        record = operation.get("record")
        if operation.get("status") in ("Inserted", "Updated") and isinstance(record, dict):
            email, key = text(record, "email"), text(record, "key")
            if email and key:
                created[email.casefold()] = key
    return created


def create_group_body(name: str, stage_key: str, user_keys: list[str], role_keys: list[str]) -> dict[str, Any]:
    """``GroupCreateRequest``."""
    return {"name": name, "environmentKey": stage_key, "userKeys": user_keys, "applicationRoleKeys": role_keys}


def group_users_patch(add: list[str], remove: list[str]) -> dict[str, Any]:
    """``PatchUsersByGroupRequest``."""
    return {"userKeysToAdd": add, "userKeysToRemove": remove}


def group_roles_patch(add: list[str], remove: list[str]) -> dict[str, Any]:
    """``PatchGroupApplicationRolesRequest``."""
    return {"applicationRoleKeysToAdd": add, "applicationRoleKeysToRemove": remove}
