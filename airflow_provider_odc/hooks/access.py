"""People and access on OdcHook: typed reads and writes of users, groups, application and organization roles,
and the sync's two halves: ``read_access`` (resolve the desired state's names, read what the sync owns) and
``apply_access_plan`` (bulk creation, then per-item writes, removals last).

Calls per sync: one page of 100 per list (users in scope, organization roles, the application roles of each
named asset, groups), one or two reads per user in scope that ODC says has roles, and two per existing
group the sync names or manages; writes one per change. The identity API allows 100 calls a minute
(``POST /users/bulk``: 5); the client waits a 429 out, so a large sync is slow, not failed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from airflow_provider_odc.access_sync import (
    AccessPlan,
    Change,
    CurrentAccess,
    DesiredAccess,
    GroupState,
    Resolved,
    RoleRef,
    email_domain,
)
from airflow_provider_odc.api import access
from airflow_provider_odc.api._parse import is_key, same_key
from airflow_provider_odc.api.access import ApplicationRole, Group, OrganizationRole, User
from airflow_provider_odc.api.identity import BULK_USERS
from airflow_provider_odc.api.portfolios import pick_stage
from airflow_provider_odc.exceptions import OdcApiError, OdcError, OdcOperationFailed

if TYPE_CHECKING:
    from airflow_provider_odc.hooks.odc import OdcHook


def _csv(values: list[str] | None) -> str | None:
    """ODC's identity lists take arrays comma-separated."""
    return ",".join(values) if values else None


def _params(**values: Any) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


class AccessHookMixin:
    """``OdcHook`` methods of the User and Access Management API (``/api/identity/v1``)."""

    @property
    def _odc(self) -> OdcHook:
        """This object as the ``OdcHook`` it is mixed into (its requests, paging and stages)."""
        return cast("OdcHook", self)

    # -- reads -------------------------------------------------------------------------------------

    def list_users(self, *, domains: list[str] | None = None) -> list[User]:
        """Every user, or those whose email domain is one of ``domains`` (View end users / members, or Manage users)."""
        items = self._odc.paginate(access.USERS, _params(domains=_csv(domains)), page_size=access.PAGE_LIMIT)
        users = [User.from_json(item) for item in items]
        if domains:  # ODC filters by domain; keep only exact email domains (no look-alike suffixes)
            allowed = {d.casefold().lstrip("@") for d in domains}
            users = [u for u in users if u.email and email_domain(u.email) in allowed]
        return users

    def list_organization_roles(self) -> list[OrganizationRole]:
        items = self._odc.paginate(access.ORGANIZATION_ROLES, page_size=access.PAGE_LIMIT)
        return [OrganizationRole.from_json(item) for item in items]

    def list_application_roles(
        self, *, asset_key: str | None = None, stage_keys: list[str] | None = None
    ) -> list[ApplicationRole]:
        """End-user roles, of one asset and/or of some stages (View end users)."""
        params = _params(assetKey=asset_key, environmentKeys=_csv(stage_keys))
        items = self._odc.paginate(access.APPLICATION_ROLES, params, page_size=access.PAGE_LIMIT)
        return [ApplicationRole.from_json(item) for item in items]

    def user_organization_roles(self, user_key: str) -> list[OrganizationRole]:
        """A user's organization-wide roles (asset-scoped assignments are left out)."""
        items = self._odc.paginate(
            access.user_organization_roles_path(user_key), {"scopes": "Organization"}, page_size=access.PAGE_LIMIT
        )
        return [role for role in map(OrganizationRole.from_json, items) if role.asset_key is None]

    def user_application_roles(self, user_key: str, *, stage_keys: list[str] | None = None) -> list[ApplicationRole]:
        """A user's directly assigned application roles (not those a group gives)."""
        params = _params(environmentKeys=_csv(stage_keys), assignmentSources="Direct")
        items = self._odc.paginate(access.user_application_roles_path(user_key), params, page_size=access.PAGE_LIMIT)
        return [ApplicationRole.from_json(item) for item in items]

    def list_groups(self, *, stage_keys: list[str] | None = None) -> list[Group]:
        items = self._odc.paginate(
            access.GROUPS, _params(environmentKeys=_csv(stage_keys)), page_size=access.PAGE_LIMIT
        )
        return [Group.from_json(item) for item in items]

    def group_member_keys(self, group_key: str) -> set[str]:
        """The users assigned to a group directly (members an IdP claim mapping adds are not the sync's)."""
        items = self._odc.paginate(
            access.group_users_path(group_key), {"membershipType": "Assigned"}, page_size=access.PAGE_LIMIT
        )
        return {key for key in map(access.member_key, items) if key}

    def group_application_role_keys(self, group_key: str) -> set[str]:
        items = self._odc.paginate(access.group_application_roles_path(group_key), page_size=access.PAGE_LIMIT)
        return {ApplicationRole.from_json(item).key for item in items}

    # -- writes ------------------------------------------------------------------------------------

    def create_users(
        self, records: list[dict[str, Any]], *, poll_interval: float = 5.0, timeout: float = 600.0
    ) -> dict[str, str]:
        """Create users with ``POST /users/bulk`` (100 a request; 5 requests a minute), wait for each bulk
        operation, and return email (casefolded) -> new user key. A bulk operation that ends with errors
        raises ``OdcOperationFailed`` with ODC's per-record messages. Each POST is sent once."""
        created: dict[str, str] = {}
        for start in range(0, len(records), access.BULK_LIMIT):
            key = self.start_bulk_users(records[start : start + access.BULK_LIMIT])
            deadline = time.monotonic() + timeout
            status, status_body = self._odc.operation_status(BULK_USERS, key)
            while not BULK_USERS.is_terminal(status):
                if time.monotonic() > deadline:
                    raise OdcError(
                        f"ODC bulk user operation {key} did not end within {timeout:.0f} s (status {status}).",
                        conn_id=self._odc.odc_conn_id,
                    )
                time.sleep(poll_interval)
                status, status_body = self._odc.operation_status(BULK_USERS, key)
            if status in BULK_USERS.failure:
                errors = self._odc.operation_errors(BULK_USERS, key, body=status_body)
                raise OdcOperationFailed(BULK_USERS.name, key, status, errors)
            created.update(access.bulk_created_keys(status_body))
        return created

    def start_bulk_users(self, records: list[dict[str, Any]]) -> str:
        """``POST /users/bulk`` (1 to 100 records; sent once) and return the operation's key, to poll as
        kind ``bulk_users`` (``OdcOperationSensor``, ``OdcOperationTrigger``)."""
        body = self._odc.request_json("POST", access.BULK_USERS, json=access.bulk_create_body(records))
        key = body.get("key") if isinstance(body, dict) else None
        if not isinstance(key, str) or not key:
            raise OdcError(
                "ODC answered POST /users/bulk without the operation's 'key'.", conn_id=self._odc.odc_conn_id
            )
        return key

    def grant_organization_role(self, user_key: str, role_key: str) -> None:
        """Organization-wide (Manage member access)."""
        self._odc.request("POST", access.user_organization_role_path(user_key, role_key), json={})

    def revoke_organization_role(self, user_key: str, role_key: str) -> None:
        self._odc.request("DELETE", access.user_organization_role_path(user_key, role_key))

    def grant_application_role(self, user_key: str, role_key: str) -> None:
        """Manage end-user access."""
        self._odc.request("POST", access.user_application_role_path(user_key, role_key))

    def revoke_application_role(self, user_key: str, role_key: str) -> None:
        self._odc.request("DELETE", access.user_application_role_path(user_key, role_key))

    def patch_user(self, user_key: str, *, name: str | None, is_active: bool, photo_url: str | None) -> None:
        """Manage users; every field is sent (ODC's advice for PATCH)."""
        self._odc.request("PATCH", access.user_path(user_key), json=access.patch_user_body(name, is_active, photo_url))

    def delete_user(self, user_key: str) -> None:
        self._odc.request("DELETE", access.user_path(user_key))

    def delete_group(self, group_key: str) -> None:
        """Manage end-user groups; the group's members lose the roles it gave them."""
        self._odc.request("DELETE", access.group_path(group_key))

    def create_group(self, name: str, stage_key: str, user_keys: list[str], role_keys: list[str]) -> str:
        """Manage end-user groups; returns the new group's key."""
        body = self._odc.request_json(
            "POST", access.GROUPS, json=access.create_group_body(name, stage_key, user_keys, role_keys)
        )
        key = body.get("key") if isinstance(body, dict) else None
        if not isinstance(key, str) or not key:
            raise OdcError("ODC answered POST /groups without the group's 'key'.", conn_id=self._odc.odc_conn_id)
        return key

    def patch_group_users(self, group_key: str, *, add: list[str], remove: list[str]) -> None:
        self._odc.request("PATCH", access.group_users_path(group_key), json=access.group_users_patch(add, remove))

    def patch_group_roles(self, group_key: str, *, add: list[str], remove: list[str]) -> None:
        self._odc.request(
            "PATCH", access.group_application_roles_path(group_key), json=access.group_roles_patch(add, remove)
        )

    # -- the sync ----------------------------------------------------------------------------------

    def read_access(
        self, desired: DesiredAccess, *, domains: list[str] | None = None
    ) -> tuple[Resolved, CurrentAccess]:
        """Resolve the desired state's stage, role and asset names to keys, and read what the sync owns."""
        stages = self._odc.list_stages()
        stage_keys = {name: pick_stage(stages, name).key for name in sorted(desired.stage_names())}
        org_roles = self.list_organization_roles()
        org_keys = {name: _organization_role(org_roles, name) for name in sorted(desired.organization_role_names())}
        refs = sorted(desired.application_role_refs())
        assets: dict[str, str] = {}
        for ref in refs:
            if ref.asset not in assets:
                assets[ref.asset] = ref.asset if is_key(ref.asset) else self._odc.find_asset(ref.asset).asset_key
        app_roles: list[ApplicationRole] = []
        for asset_key in sorted(set(assets.values())):  # the named assets' roles, not every role of the tenant
            on_stages = sorted({stage_keys[r.stage] for r in refs if assets[r.asset] == asset_key})
            app_roles += self.list_application_roles(asset_key=asset_key, stage_keys=on_stages)
        app_keys = {ref: _application_role(app_roles, ref, assets[ref.asset], stage_keys[ref.stage]) for ref in refs}
        names = {role.key: role.name for role in org_roles}
        names |= {role.key: f"{role.name} ({_asset_label(refs, assets, role)})" for role in app_roles}
        resolved = Resolved(stage_keys, org_keys, app_keys, names)

        managed_org, managed_app = set(org_keys.values()), set(app_keys.values())
        users = {u.email.casefold(): u for u in self.list_users(domains=domains) if u.email}
        org_held: dict[str, frozenset[str]] = {}
        app_held: dict[str, frozenset[str]] = {}
        for user in users.values():
            if managed_org and user.has_organization_roles:
                held = {r.key for r in self.user_organization_roles(user.key)}
                org_held[user.key] = frozenset(held & managed_org)
            if managed_app and user.has_application_roles:
                roles = self.user_application_roles(user.key, stage_keys=sorted(set(stage_keys.values())))
                app_held[user.key] = frozenset({r.key for r in roles} & managed_app)
        groups: dict[tuple[str, str], GroupState] = {}
        wanted_groups = {(g.name.casefold(), stage_keys[g.stage]) for g in desired.groups}
        wanted_groups |= {(g.name.casefold(), stage_keys[g.stage]) for g in desired.managed_groups}
        if wanted_groups:
            for group in self.list_groups(stage_keys=sorted({stage for _, stage in wanted_groups})):
                ident = (group.name.casefold(), group.stage_key or "")
                if ident in wanted_groups and ident not in groups:
                    members = frozenset(self.group_member_keys(group.key))
                    groups[ident] = GroupState(
                        group.key, members, frozenset(self.group_application_role_keys(group.key))
                    )
        return resolved, CurrentAccess(users, org_held, app_held, groups)

    def apply_access_plan(
        self,
        plan: AccessPlan,
        current: CurrentAccess,
        *,
        poll_interval: float = 5.0,
        bulk_timeout: float = 600.0,
    ) -> int:
        """Apply ``plan`` in its order: new users in bulk, then one write per change. Returns the writes
        made. A failed write stops the sync with what ODC said and how far it got; running the sync again
        plans only what is still missing."""
        keys = {email: user.key for email, user in current.users.items()}
        creates = [c for c in plan.changes if c.action == "create_user"]
        if creates:
            created = self.create_users(
                [access.create_record(c.subject, c.name) for c in creates],
                poll_interval=poll_interval,
                timeout=bulk_timeout,
            )
            missing = [c.subject for c in creates if c.subject.casefold() not in created]
            if missing:
                raise OdcError(
                    f"ODC's bulk user operation did not report a key for {', '.join(missing[:5])}.",
                    conn_id=self._odc.odc_conn_id,
                )
            keys |= created
        done = len(creates)
        groups: dict[str, str] = {}
        for change in plan.changes:
            if change.action == "create_user":
                continue
            try:
                self._apply_one(change, keys, current, groups)
            except OdcApiError as exc:
                said = exc.detail or exc.title or exc.what
                raise OdcError(
                    f"Applying '{change.describe()}' failed after {done} of {len(plan.changes)} changes. "
                    f"ODC answered {exc.method} {exc.path} with HTTP {exc.status}: {said}",
                    conn_id=self._odc.odc_conn_id,
                    hint="Run the sync again once the cause is fixed: it plans only what is still missing.",
                ) from None
            done += 1
        return done

    def _apply_one(self, change: Change, keys: dict[str, str], current: CurrentAccess, groups: dict[str, str]) -> None:
        """One write of the plan (``keys``: email -> user key, ``groups``: created group -> key)."""
        hook = self._odc
        action, subject = change.action, change.subject

        def user_key() -> str:
            key = change.key or keys.get(subject.casefold())
            if key is None:
                raise OdcError(f"No ODC user key for {subject}.", conn_id=self._odc.odc_conn_id)
            return key

        def member_keys(emails: tuple[str, ...]) -> list[str]:
            unknown = [e for e in emails if e.casefold() not in keys]
            if unknown:
                raise OdcError(
                    f"Group {subject} lists member(s) that are not ODC users in scope: {', '.join(unknown[:5])}.",
                    conn_id=self._odc.odc_conn_id,
                )
            return [keys[e.casefold()] for e in emails]

        existing = current.users.get(subject.casefold())
        photo = existing.photo_url if existing else None
        if action == "update_user":
            hook.patch_user(user_key(), name=change.name, is_active=True, photo_url=photo)
        elif action == "deactivate_user":
            hook.patch_user(user_key(), name=existing.name if existing else None, is_active=False, photo_url=photo)
        elif action == "delete_user":
            hook.delete_user(user_key())
        elif action in ("grant_organization_roles", "revoke_organization_roles"):
            write = hook.grant_organization_role if action.startswith("grant") else hook.revoke_organization_role
            for role in change.items:
                write(user_key(), role)
        elif action in ("grant_application_roles", "revoke_application_roles"):
            write = hook.grant_application_role if action.startswith("grant") else hook.revoke_application_role
            for role in change.items:
                write(user_key(), role)
        elif action == "create_group":
            groups[subject] = hook.create_group(change.labels[0], str(change.name), member_keys(change.items), [])
        elif action == "add_group_members":
            hook.patch_group_users(change.key or groups[subject], add=member_keys(change.items), remove=[])
        elif action == "remove_group_members":
            hook.patch_group_users(change.key or groups[subject], add=[], remove=list(change.items))
        elif action in ("add_group_roles", "remove_group_roles"):
            add = list(change.items) if action == "add_group_roles" else []
            remove = list(change.items) if action == "remove_group_roles" else []
            hook.patch_group_roles(change.key or groups[subject], add=add, remove=remove)
        elif action == "delete_group" and change.key:
            hook.delete_group(change.key)
        else:  # pragma: no cover - plan_access makes only the actions above
            raise OdcError(f"Unknown access change {action!r}.")


def _organization_role(roles: list[OrganizationRole], wanted: str) -> str:
    found = [r for r in roles if same_key(r.key, wanted) or r.name.casefold() == wanted.casefold()]
    if len(found) == 1:
        return found[0].key
    names = ", ".join(sorted(r.name for r in roles)) or "none"
    raise OdcError(f"ODC organization role {wanted!r} not found; the API client can see: {names}.")


def _application_role(roles: list[ApplicationRole], ref: RoleRef, asset_key: str, stage_key: str) -> str:
    here = [r for r in roles if same_key(r.asset_key, asset_key) and same_key(r.stage_key, stage_key)]
    found = [r for r in here if same_key(r.key, ref.role) or r.name.casefold() == ref.role.casefold()]
    if len(found) == 1:
        return found[0].key
    names = ", ".join(sorted(r.name for r in here)) or "none"
    raise OdcError(
        f"ODC application role {ref.role!r} of asset {ref.asset!r} on stage {ref.stage!r} not found; "
        f"that asset has on that stage: {names}."
    )


def _asset_label(refs: list[RoleRef], assets: Mapping[str, str], role: ApplicationRole) -> str:
    """How the desired state named a role's asset and stage, for readable plan lines."""
    ref = next((r for r in refs if same_key(assets.get(r.asset), role.asset_key)), None)
    return f"{ref.asset}" if ref else str(role.asset_key)
