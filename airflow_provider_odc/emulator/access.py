"""The emulator's users, groups, application and organization roles (User and Access Management API).

``AccessDirectory`` is one part of ``EmulatorState``: it shares the lock and clock (``Runtime``), reads the
release lifecycle's assets and stages (application roles belong to a deployable asset on a stage), and
takes in the users that ``POST /users/bulk`` operations (``LongRunningJobs``) inserted once they finish.
Bodies follow the spec's response schemas (no field the schema does not declare). Where ODC documents no
outcome it is the stingiest: granting a role the user holds, or creating a group whose name its stage
already has, is a 400; revoking one the user does not hold is a 404. Nothing here knows about HTTP.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_odc.emulator.long_running import render_bulk
from airflow_provider_odc.emulator.seed import DEPLOYABLE_TYPES, format_timestamp
from airflow_provider_odc.emulator.validation import ApiError

if TYPE_CHECKING:
    from airflow_provider_odc.emulator.long_running import LongRunningJobs
    from airflow_provider_odc.emulator.release import ReleaseLifecycle
    from airflow_provider_odc.emulator.runtime import Runtime

NOT_FOUND = "OS-IDENTITY-40401"
BAD_REQUEST = "OS-IDENTITY-40001"
ORGANIZATION_ROLES = (("Administrator", True), ("Developer", False), ("Tech lead", False), ("Release manager", False))
APPLICATION_ROLES = ("User", "Manager")
#: (email, name, status, organization roles); the first app's roles are granted below.
SEED_USERS = (
    ("ana.silva@example.com", "Ana Silva", "Active", ("Developer",)),
    ("ben.okafor@example.com", "Ben Okafor", "Active", ()),
    ("carla.mendes@example.com", "Carla Mendes", "Inactive", ()),
    ("dev.lead@example.com", "Dev Lead", "Active", ("Tech lead",)),
    ("eve.novak@example.com", "Eve Novak", "Invited", ()),
    ("ops@partner.example.org", "Partner Ops", "Active", ("Developer",)),
)


def _key(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "odc-emulator-access:" + ":".join(parts)))


def canonical(key: str) -> str | None:
    try:
        return str(uuid.UUID(key))
    except (ValueError, AttributeError, TypeError):
        return None


@dataclass
class AccessData:
    """Everything ``reset()`` replaces."""

    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> internal record
    organization_roles: dict[str, dict[str, Any]] = field(default_factory=dict)
    application_roles: dict[str, dict[str, Any]] = field(default_factory=dict)
    organization_grants: set[tuple[str, str]] = field(default_factory=set)  # (user, role), organization-wide
    application_grants: set[tuple[str, str]] = field(default_factory=set)  # (user, role), direct
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    group_members: dict[str, set[str]] = field(default_factory=dict)
    group_roles: dict[str, set[str]] = field(default_factory=dict)
    absorbed_bulk: set[str] = field(default_factory=set)  # bulk job keys whose users were taken in


class AccessDirectory:
    """Users, groups and roles of one emulator (see the module docstring)."""

    def __init__(self, runtime: Runtime, release: ReleaseLifecycle, jobs: LongRunningJobs) -> None:
        self._runtime = runtime
        self._lock = runtime.lock
        self._release = release
        self._jobs = jobs
        self._data = self._seed()

    def reset(self) -> None:
        fresh = self._seed()
        with self._lock:
            self._data = fresh

    def _seed(self) -> AccessData:
        data = AccessData()
        portfolio = self._release.portfolio_key
        for name, read_only in ORGANIZATION_ROLES:
            key = _key("org-role", name)
            data.organization_roles[key] = {"key": key, "name": name, "permissions": [], "isReadOnly": read_only}
        apps = [a for a in self._release.current_assets() if a["assetType"] in DEPLOYABLE_TYPES]
        for asset in apps:
            for environment in self._release.environments:
                for role in APPLICATION_ROLES:
                    key = _key("app-role", asset["assetKey"], environment["key"], role)
                    data.application_roles[key] = {
                        "key": key,
                        "name": role,
                        "environmentKey": environment["key"],
                        "assetKey": asset["assetKey"],
                        "externalKey": _key("app-role", asset["assetKey"], role),
                        "claim": role,
                        "portfolioKey": portfolio,
                    }
        by_name = {role["name"]: key for key, role in data.organization_roles.items()}
        for email, name, status, roles in SEED_USERS:
            key = _key("user", email)
            data.users[key] = _user_record(key, email, name, status)
            data.organization_grants |= {(key, by_name[role]) for role in roles}
        if apps:  # Ben uses the first app in Production
            production = next(e for e in self._release.environments if e["purpose"] == "Production")
            role = _key("app-role", apps[0]["assetKey"], production["key"], "User")
            data.application_grants.add((_key("user", "ben.okafor@example.com"), role))
        return data

    # Helpers (lock held) -----------------------------------------------------------------------------

    def _absorb_bulk_locked(self) -> None:
        """Take in the users of bulk operations that finished since the last look (as ODC would have)."""
        now = self._runtime.now_locked()
        # LongRunningJobs keeps its jobs private; the directory only reads the finished bulk ones (lock held).
        for job in list(self._jobs._jobs.jobs.values()):
            if job.kind != "bulk_users" or job.key in self._data.absorbed_bulk or not job.finished(now):
                continue
            self._data.absorbed_bulk.add(job.key)
            for operation, record in zip(render_bulk(job, now)["operations"], job.details["records"], strict=True):
                key = operation["record"]["key"]
                if operation["status"] != "Inserted" or key in self._data.users:
                    continue
                email = record.get("email")
                if email and self._by_email_locked(email) is not None:
                    continue
                status = "Active" if record.get("isActive", True) else "Inactive"
                self._data.users[key] = _user_record(
                    key, email, record.get("name"), "Invited" if status == "Active" else status
                )

    def _by_email_locked(self, email: str) -> str | None:
        return next((k for k, u in self._data.users.items() if (u["email"] or "").casefold() == email.casefold()), None)

    def _user_locked(self, key: str) -> dict[str, Any]:
        self._absorb_bulk_locked()
        user = self._data.users.get(canonical(key) or "")
        if user is None:
            raise ApiError(404, f"User '{key}' was not found.", NOT_FOUND)
        return user

    def _group_locked(self, key: str) -> dict[str, Any]:
        group = self._data.groups.get(canonical(key) or "")
        if group is None:
            raise ApiError(404, f"Group '{key}' was not found.", NOT_FOUND)
        return group

    def _organization_role_locked(self, key: str) -> dict[str, Any]:
        role = self._data.organization_roles.get(canonical(key) or "")
        if role is None:
            raise ApiError(404, f"Organization role '{key}' was not found.", NOT_FOUND)
        return role

    def _application_role_locked(self, key: str) -> dict[str, Any]:
        role = self._data.application_roles.get(canonical(key) or "")
        if role is None:
            raise ApiError(404, f"Application role '{key}' was not found.", NOT_FOUND)
        return role

    def _render_user_locked(self, user: dict[str, Any]) -> dict[str, Any]:
        key = user["key"]
        via_groups = any(
            key in members and self._data.group_roles.get(g) for g, members in self._data.group_members.items()
        )
        return {
            **{name: value for name, value in user.items() if not name.startswith("_")},
            "access": {
                "hasOrganizationRoles": any(u == key for u, _ in self._data.organization_grants),
                "hasApplicationRoles": via_groups or any(u == key for u, _ in self._data.application_grants),
            },
        }

    def _render_group_locked(self, group: dict[str, Any]) -> dict[str, Any]:
        return dict(group)

    # Users -------------------------------------------------------------------------------------------

    def users(
        self,
        *,
        domains: list[str] | None = None,
        status: str | None = None,
        user_keys: list[str] | None = None,
        name_or_email_contains: str | None = None,
    ) -> list[dict[str, Any]]:
        """``GET /users``, by name (the default sort)."""
        with self._lock:
            self._absorb_bulk_locked()
            found = []
            for user in self._data.users.values():
                email = (user["email"] or "").casefold()
                if domains and email.rpartition("@")[2] not in {d.casefold() for d in domains}:
                    continue
                if status and user["status"] != status:
                    continue
                if user_keys and user["key"] not in user_keys:
                    continue
                needle = (name_or_email_contains or "").casefold()
                if needle and needle not in email and needle not in (user["name"] or "").casefold():
                    continue
                found.append(self._render_user_locked(user))
            return sorted(found, key=lambda u: ((u["name"] or "").casefold(), u["key"]))

    def user(self, key: str) -> dict[str, Any]:
        with self._lock:
            return self._render_user_locked(self._user_locked(key))

    def create_user(self, values: dict[str, Any]) -> dict[str, Any]:
        """``POST /users``: 201 ``{key}``; an email that a user has already is a 400."""
        email = values.get("email")
        if not email and not values.get("username"):
            raise ApiError(400, "The user needs an email or a username.", BAD_REQUEST)
        if email and "@" not in email:
            raise ApiError(400, f"The email '{email}' is not a valid email address.", BAD_REQUEST)
        with self._lock:
            self._absorb_bulk_locked()
            if email and self._by_email_locked(email) is not None:
                raise ApiError(400, f"A user with the email '{email}' already exists.", BAD_REQUEST)
            key = str(uuid.uuid4())
            status = "Invited" if values.get("isActive", True) else "Inactive"
            self._data.users[key] = _user_record(key, email, values.get("name"), status, values.get("photoUrl"))
            return {"key": key}

    def patch_user(self, key: str, values: dict[str, Any]) -> None:
        """``PATCH /users/{key}``: only the fields sent change (null clears name and photo)."""
        with self._lock:
            user = self._user_locked(key)
            if "name" in values:
                user["name"] = values["name"]
            if "photoUrl" in values:
                user["photoUrl"] = values["photoUrl"]
            if values.get("isActive") is not None:
                user["isActive"] = values["isActive"]
                if not values["isActive"]:
                    user["status"] = "Inactive"
                elif user["status"] == "Inactive":
                    user["status"] = "Active"

    def delete_user(self, key: str) -> None:
        """``DELETE /users/{key}``: the user, and every role and group membership with them."""
        with self._lock:
            user = self._user_locked(key)
            del self._data.users[user["key"]]
            data = self._data
            data.organization_grants = {g for g in data.organization_grants if g[0] != user["key"]}
            data.application_grants = {g for g in data.application_grants if g[0] != user["key"]}
            for members in data.group_members.values():
                members.discard(user["key"])

    # Organization roles ------------------------------------------------------------------------------

    def organization_roles(self, *, name_contains: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            roles = [dict(r) for r in self._data.organization_roles.values()]
        needle = (name_contains or "").casefold()
        return sorted((r for r in roles if needle in r["name"].casefold()), key=lambda r: r["name"].casefold())

    def organization_role_users(self, role_key: str) -> list[dict[str, Any]]:
        """``GET /organization-roles/{key}/users``: ``RoleUserResponse`` of each holder."""
        with self._lock:
            role = self._organization_role_locked(role_key)
            self._absorb_bulk_locked()
            holders = [self._data.users[u] for u, r in self._data.organization_grants if r == role["key"]]
            return sorted((_role_user(u) for u in holders), key=lambda u: ((u["name"] or "").casefold(), u["key"]))

    def user_organization_roles(self, user_key: str, scopes: list[str]) -> list[dict[str, Any]]:
        """``GET /users/{key}/organization-roles``: every grant is organization-wide here."""
        with self._lock:
            user = self._user_locked(user_key)
            if scopes and "Organization" not in scopes:
                return []
            roles = [self._data.organization_roles[r] for u, r in self._data.organization_grants if u == user["key"]]
            rendered = [
                {"key": r["key"], "name": r["name"], "grantPeriod": None, "assetKey": None, "portfolioKey": None}
                for r in roles
            ]
            return sorted(rendered, key=lambda r: r["name"].casefold())

    def grant_organization_role(self, user_key: str, role_key: str, asset_keys: list[str] | None) -> None:
        with self._lock:
            user, role = self._user_locked(user_key), self._organization_role_locked(role_key)
            if asset_keys:
                raise ApiError(400, "The ODC emulator grants organization roles organization-wide only.", BAD_REQUEST)
            grant = (user["key"], role["key"])
            if grant in self._data.organization_grants:
                raise ApiError(400, f"The user already has the organization role '{role['name']}'.", BAD_REQUEST)
            self._data.organization_grants.add(grant)

    def revoke_organization_role(self, user_key: str, role_key: str) -> None:
        with self._lock:
            user, role = self._user_locked(user_key), self._organization_role_locked(role_key)
            grant = (user["key"], role["key"])
            if grant not in self._data.organization_grants:
                raise ApiError(404, f"The user does not have the organization role '{role['name']}'.", NOT_FOUND)
            self._data.organization_grants.discard(grant)

    # Application roles -------------------------------------------------------------------------------

    def application_roles(
        self,
        *,
        key: str | None = None,
        asset_key: str | None = None,
        environment_keys: list[str] | None = None,
        name_contains: str | None = None,
    ) -> list[dict[str, Any]]:
        with self._lock:
            roles = [dict(r) for r in self._data.application_roles.values()]
        needle = (name_contains or "").casefold()
        found = [
            r
            for r in roles
            if (key is None or r["key"] == key)
            and (asset_key is None or r["assetKey"] == asset_key)
            and (not environment_keys or r["environmentKey"] in environment_keys)
            and needle in r["name"].casefold()
        ]
        return sorted(found, key=lambda r: (r["name"].casefold(), r["key"]))

    def application_role_users(self, role_key: str) -> list[dict[str, Any]]:
        """``GET /application-roles/{key}/users``: the users who hold the role directly."""
        with self._lock:
            role = self._application_role_locked(role_key)
            self._absorb_bulk_locked()
            holders = [self._data.users[u] for u, r in self._data.application_grants if r == role["key"]]
            return sorted((_role_user(u) for u in holders), key=lambda u: ((u["name"] or "").casefold(), u["key"]))

    def user_application_roles(
        self, user_key: str, *, environment_keys: list[str], sources: list[str]
    ) -> list[dict[str, Any]]:
        """``GET /users/{key}/application-roles``: by ``assignmentSources`` (default ``Direct``)."""
        sources = sources or ["Direct"]
        with self._lock:
            user = self._user_locked(user_key)
            direct = {r for u, r in self._data.application_grants if u == user["key"]}
            groups: dict[str, list[dict[str, Any]]] = {}
            if "GroupAssigned" in sources:
                for group_key, members in self._data.group_members.items():
                    if user["key"] in members:
                        group = self._data.groups[group_key]
                        for role in self._data.group_roles.get(group_key, set()):
                            groups.setdefault(role, []).append(
                                {"key": group_key, "name": group["name"], "membershipType": "Assigned"}
                            )
            keys = (direct if "Direct" in sources else set()) | set(groups)
            found = []
            for key in keys:
                held = self._data.application_roles[key]
                if environment_keys and held["environmentKey"] not in environment_keys:
                    continue
                found.append({**held, "isDirectlyAssigned": key in direct, "assignedGroups": groups.get(key, [])})
            return sorted(found, key=lambda r: (r["name"].casefold(), r["key"]))

    def grant_application_role(self, user_key: str, role_key: str) -> None:
        with self._lock:
            user, role = self._user_locked(user_key), self._application_role_locked(role_key)
            grant = (user["key"], role["key"])
            if grant in self._data.application_grants:
                raise ApiError(400, f"The user already has the application role '{role['name']}'.", BAD_REQUEST)
            self._data.application_grants.add(grant)

    def revoke_application_role(self, user_key: str, role_key: str) -> None:
        with self._lock:
            user, role = self._user_locked(user_key), self._application_role_locked(role_key)
            grant = (user["key"], role["key"])
            if grant not in self._data.application_grants:
                raise ApiError(404, f"The user does not have the application role '{role['name']}'.", NOT_FOUND)
            self._data.application_grants.discard(grant)

    # Groups ------------------------------------------------------------------------------------------

    def groups(
        self, *, name_contains: str | None = None, environment_keys: list[str] | None = None
    ) -> list[dict[str, Any]]:
        needle = (name_contains or "").casefold()
        with self._lock:
            found = [
                self._render_group_locked(g)
                for g in self._data.groups.values()
                if needle in (g["name"] or "").casefold()
                and (not environment_keys or g["environmentKey"] in environment_keys)
            ]
        return sorted(found, key=lambda g: ((g["name"] or "").casefold(), g["key"]))

    def group(self, key: str) -> dict[str, Any]:
        with self._lock:
            return self._render_group_locked(self._group_locked(key))

    def create_group(self, values: dict[str, Any]) -> dict[str, Any]:
        """``POST /groups``: 400 for an unknown stage, a name its stage has, or a role of another stage;
        404 for an unknown user."""
        name, environment = values.get("name"), values.get("environmentKey")
        if not name:
            raise ApiError(
                400, "The name field is required.", BAD_REQUEST, errors={"name": ["The name field is required."]}
            )
        stages = {e["key"] for e in self._release.environments}
        if environment not in stages:
            raise ApiError(400, f"The environment '{environment}' was not found.", BAD_REQUEST)
        with self._lock:
            if any(
                g["environmentKey"] == environment and (g["name"] or "").casefold() == name.casefold()
                for g in self._data.groups.values()
            ):
                raise ApiError(400, f"A group named '{name}' already exists in this stage.", BAD_REQUEST)
            users = [self._user_locked(k)["key"] for k in values.get("userKeys") or []]
            roles = [self._application_role_locked(k) for k in values.get("applicationRoleKeys") or []]
            self._check_stage_locked(roles, str(environment))
            key = str(uuid.uuid4())
            self._data.groups[key] = {
                "key": key,
                "name": name,
                "description": values.get("description"),
                "environmentKey": environment,
                "portfolioKey": self._release.portfolio_key,
                "updatedAt": format_timestamp(self._runtime.now_locked()),
                "groupIdpClaimMappings": [],
            }
            self._data.group_members[key] = set(users)
            self._data.group_roles[key] = {r["key"] for r in roles}
            return {"key": key}

    @staticmethod
    def _check_stage_locked(roles: list[dict[str, Any]], environment: str) -> None:
        other = [r["key"] for r in roles if r["environmentKey"] != environment]
        if other:
            raise ApiError(400, f"The application role(s) {', '.join(other)} belong to another stage.", BAD_REQUEST)

    def patch_group(self, key: str, values: dict[str, Any]) -> None:
        with self._lock:
            group = self._group_locked(key)
            group.update({k: v for k, v in values.items() if k in ("name", "description")})
            group["updatedAt"] = format_timestamp(self._runtime.now_locked())

    def delete_group(self, key: str) -> None:
        with self._lock:
            group = self._group_locked(key)
            for table in (self._data.groups, self._data.group_members, self._data.group_roles):
                table.pop(group["key"], None)

    def group_users(self, key: str, membership_type: str | None) -> list[dict[str, Any]]:
        """``GET /groups/{key}/users``: every member is ``Assigned`` here (no IdP claim mappings)."""
        with self._lock:
            group = self._group_locked(key)
            if membership_type == "Mapped":
                return []
            members = [self._data.users[u] for u in self._data.group_members[group["key"]] if u in self._data.users]
            rendered = [{"membershipTypes": ["Assigned"], "user": _member(u)} for u in members]
            return sorted(rendered, key=lambda m: ((m["user"]["name"] or "").casefold(), m["user"]["key"]))

    def patch_group_users(self, key: str, add: list[str], remove: list[str]) -> None:
        """``PATCH /groups/{key}/users``: 404 for an unknown user (nothing changes then)."""
        with self._lock:
            group = self._group_locked(key)
            adding = [self._user_locked(k)["key"] for k in add]
            removing = [self._user_locked(k)["key"] for k in remove]
            members = self._data.group_members[group["key"]]
            members.update(adding)
            members.difference_update(removing)

    def group_application_roles(self, key: str) -> list[dict[str, Any]]:
        with self._lock:
            group = self._group_locked(key)
            roles = [dict(self._data.application_roles[r]) for r in self._data.group_roles[group["key"]]]
        return sorted(roles, key=lambda r: (r["name"].casefold(), r["key"]))

    def patch_group_application_roles(self, key: str, add: list[str], remove: list[str]) -> None:
        with self._lock:
            group = self._group_locked(key)
            adding = [self._application_role_locked(k) for k in add]
            removing = [self._application_role_locked(k)["key"] for k in remove]
            self._check_stage_locked(adding, group["environmentKey"])
            roles = self._data.group_roles[group["key"]]
            roles.update(r["key"] for r in adding)
            roles.difference_update(removing)

    # Facts for tests ---------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Who has what: users by email (status, organization role names, application role keys) and groups."""
        with self._lock:
            self._absorb_bulk_locked()
            data = self._data
            users = {}
            for key, user in data.users.items():
                users[(user["email"] or key).casefold()] = {
                    "key": key,
                    "name": user["name"],
                    "status": user["status"],
                    "organization_roles": sorted(
                        data.organization_roles[r]["name"] for u, r in data.organization_grants if u == key
                    ),
                    "application_roles": sorted(r for u, r in data.application_grants if u == key),
                }
            groups = {
                f"{g['name']}@{g['environmentKey']}": {
                    "key": k,
                    "members": sorted((data.users[u]["email"] or u) for u in data.group_members[k] if u in data.users),
                    "roles": sorted(data.group_roles[k]),
                }
                for k, g in data.groups.items()
            }
            return {"users": users, "groups": groups}


def _user_record(
    key: str, email: str | None, name: str | None, status: str, photo: str | None = None
) -> dict[str, Any]:
    return {
        "key": key,
        "name": name,
        "email": email,
        "status": status,
        "lastLoginAt": None,
        "isActive": status != "Inactive",
        "photoUrl": photo,
        "isEmailVerified": status == "Active",
        "isTermsAndConditionsAccepted": status == "Active",
    }


def _role_user(user: dict[str, Any]) -> dict[str, Any]:
    """``RoleUserResponse``."""
    return {name: user[name] for name in ("key", "name", "email", "status", "photoUrl", "lastLoginAt")}


def _member(user: dict[str, Any]) -> dict[str, Any]:
    """``GroupUserProfileResponse`` (its ``lastLoginAt`` is not nullable: left out when unknown)."""
    member = {name: user[name] for name in ("key", "name", "email", "status", "photoUrl")}
    if user["lastLoginAt"]:
        member["lastLoginAt"] = user["lastLoginAt"]
    return member
