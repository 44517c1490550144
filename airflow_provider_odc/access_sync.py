"""People and access sync, without I/O: the desired state a DAG computes, the current state ODC reports, and
the typed plan between them.

The desired state (from an HR or IdP feed) is plain JSON, so a ``@task`` can return it::

    {"users": [{"email": "ana@example.com", "name": "Ana", "active": true,
                "organization_roles": ["Developer"],
                "application_roles": [{"asset": "<asset key or name>", "stage": "Production", "role": "Manager"}]}],
     "groups": [{"name": "Claims agents", "stage": "Production", "members": ["ana@example.com"],
                 "application_roles": [{"asset": "<asset key or name>", "role": "User"}]}],
     "managed_organization_roles": ["Tech lead"],
     "managed_application_roles": [{"asset": "...", "stage": "QA", "role": "Manager"}],
     "managed_groups": [{"name": "Claims interns", "stage": "Production"}]}

What the sync owns, and so may take away: the users whose email domain is one of ``domains`` (all users
when none are given), the organization and application roles the desired state names (plus the
``managed_*`` ones: a role nobody should hold any more), and the groups it names (their directly
assigned members and their roles) or lists in ``managed_groups``. Everything else is left alone. An active
user the feed no longer lists is deactivated (or deleted), losing the sync's roles; that share of the active
users in scope is the blast radius the operator bounds. One already inactive only loses the sync's roles.
A managed group that ``groups`` does not list is deleted (``DELETE /groups/{key}``); the share of the
existing groups the sync owns that a plan deletes is bounded the same way.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from airflow_provider_odc.api.access import User
from airflow_provider_odc.exceptions import OdcError

RemovalMode = Literal["deactivate", "delete"]
REMOVALS = ("deactivate_user", "delete_user")
GROUP_REMOVALS = ("delete_group",)


def _fail(what: str) -> OdcError:
    return OdcError(f"Desired access state: {what}")


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(f"{where} must be a non-empty string, not {value!r}.")
    return value.strip()


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _fail(f"{where} must be a list, not {type(value).__name__}.")
    return value


def _object(value: Any, where: str, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(f"{where} must be an object, not {type(value).__name__}.")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise _fail(f"{where} has unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}.")
    return value


def email_domain(email: str) -> str:
    return email.rpartition("@")[2].casefold()


@dataclass(frozen=True, order=True)
class RoleRef:
    """An application role: an asset (key or exact name), a stage (key or name) and the role's name (or key)."""

    asset: str
    stage: str
    role: str

    @classmethod
    def from_json(cls, value: Any, where: str, stage: str | None = None) -> RoleRef:
        item = _object(value, where, {"asset", "stage", "role"} if stage is None else {"asset", "role"})
        return cls(
            asset=_text(item.get("asset"), f"{where}.asset"),
            stage=stage if stage is not None else _text(item.get("stage"), f"{where}.stage"),
            role=_text(item.get("role"), f"{where}.role"),
        )


@dataclass(frozen=True)
class DesiredUser:
    email: str
    name: str | None
    active: bool
    organization_roles: tuple[str, ...]
    application_roles: tuple[RoleRef, ...]


@dataclass(frozen=True, order=True)
class GroupRef:
    """A group the sync owns: its name and stage (key or name) as the desired state gives them."""

    name: str
    stage: str

    @classmethod
    def from_json(cls, value: Any, where: str) -> GroupRef:
        item = _object(value, where, {"name", "stage"})
        return cls(name=_text(item.get("name"), f"{where}.name"), stage=_text(item.get("stage"), f"{where}.stage"))


@dataclass(frozen=True)
class DesiredGroup:
    name: str
    stage: str
    members: tuple[str, ...]  # emails
    application_roles: tuple[RoleRef, ...]


@dataclass(frozen=True)
class DesiredAccess:
    """The validated desired state; bad input is an ``OdcError`` naming the field."""

    users: tuple[DesiredUser, ...]
    groups: tuple[DesiredGroup, ...] = ()
    managed_organization_roles: tuple[str, ...] = ()
    managed_application_roles: tuple[RoleRef, ...] = ()
    managed_groups: tuple[GroupRef, ...] = ()  # owned; deleted unless ``groups`` lists them

    @classmethod
    def from_json(cls, value: Any) -> DesiredAccess:
        top = _object(
            value,
            "the desired state",
            {"users", "groups", "managed_organization_roles", "managed_application_roles", "managed_groups"},
        )
        users: dict[str, DesiredUser] = {}
        for n, raw in enumerate(_list(top.get("users"), "users")):
            where = f"users[{n}]"
            item = _object(raw, where, {"email", "name", "active", "organization_roles", "application_roles"})
            email = _text(item.get("email"), f"{where}.email")
            if "@" not in email:
                raise _fail(f"{where}.email {email!r} is not an email address.")
            if email.casefold() in users:
                raise _fail(f"{where}.email {email!r} is listed twice.")
            active = item.get("active", True)
            if not isinstance(active, bool):
                raise _fail(f"{where}.active must be true or false, not {active!r}.")
            name = item.get("name")
            users[email.casefold()] = DesiredUser(
                email=email,
                name=None if name is None else _text(name, f"{where}.name"),
                active=active,
                organization_roles=tuple(
                    _text(r, f"{where}.organization_roles[{i}]")
                    for i, r in enumerate(_list(item.get("organization_roles"), f"{where}.organization_roles"))
                ),
                application_roles=tuple(
                    RoleRef.from_json(r, f"{where}.application_roles[{i}]")
                    for i, r in enumerate(_list(item.get("application_roles"), f"{where}.application_roles"))
                ),
            )
        groups: dict[tuple[str, str], DesiredGroup] = {}
        for n, raw in enumerate(_list(top.get("groups"), "groups")):
            where = f"groups[{n}]"
            item = _object(raw, where, {"name", "stage", "members", "application_roles"})
            name, stage = _text(item.get("name"), f"{where}.name"), _text(item.get("stage"), f"{where}.stage")
            if (name.casefold(), stage.casefold()) in groups:
                raise _fail(f"{where}: group {name!r} on stage {stage!r} is listed twice.")
            groups[(name.casefold(), stage.casefold())] = DesiredGroup(
                name=name,
                stage=stage,
                members=tuple(
                    _text(m, f"{where}.members[{i}]")
                    for i, m in enumerate(_list(item.get("members"), f"{where}.members"))
                ),
                application_roles=tuple(
                    RoleRef.from_json(r, f"{where}.application_roles[{i}]", stage=stage)
                    for i, r in enumerate(_list(item.get("application_roles"), f"{where}.application_roles"))
                ),
            )
        return cls(
            users=tuple(users.values()),
            groups=tuple(groups.values()),
            managed_organization_roles=tuple(
                _text(r, f"managed_organization_roles[{i}]")
                for i, r in enumerate(_list(top.get("managed_organization_roles"), "managed_organization_roles"))
            ),
            managed_application_roles=tuple(
                RoleRef.from_json(r, f"managed_application_roles[{i}]")
                for i, r in enumerate(_list(top.get("managed_application_roles"), "managed_application_roles"))
            ),
            managed_groups=tuple(
                GroupRef.from_json(g, f"managed_groups[{i}]")
                for i, g in enumerate(_list(top.get("managed_groups"), "managed_groups"))
            ),
        )

    def organization_role_names(self) -> set[str]:
        return {*self.managed_organization_roles, *(r for u in self.users for r in u.organization_roles)}

    def application_role_refs(self) -> set[RoleRef]:
        refs = {*self.managed_application_roles, *(r for u in self.users for r in u.application_roles)}
        return refs | {r for g in self.groups for r in g.application_roles}

    def stage_names(self) -> set[str]:
        groups = {g.stage for g in self.groups} | {g.stage for g in self.managed_groups}
        return {r.stage for r in self.application_role_refs()} | groups


@dataclass(frozen=True)
class GroupState:
    key: str
    members: frozenset[str]  # directly assigned user keys
    roles: frozenset[str]  # application role keys


@dataclass(frozen=True)
class Resolved:
    """The desired state's names as ODC keys: stages, organization and application roles."""

    stages: Mapping[str, str]  # stage as given -> key
    organization_roles: Mapping[str, str]  # role as given -> key
    application_roles: Mapping[RoleRef, str]  # reference as given -> key
    role_names: Mapping[str, str] = field(default_factory=dict)  # any role key -> a readable name


@dataclass(frozen=True)
class CurrentAccess:
    """What ODC reports for what the sync owns."""

    users: Mapping[str, User]  # email (casefolded) -> user, every user in scope
    organization_roles: Mapping[str, frozenset[str]]  # user key -> managed organization role keys held
    application_roles: Mapping[str, frozenset[str]]  # user key -> managed application role keys held directly
    groups: Mapping[tuple[str, str], GroupState]  # (name casefolded, stage key) -> group

    def email_of(self, user_key: str) -> str | None:
        return next((u.email for u in self.users.values() if u.key == user_key), None)


@dataclass(frozen=True)
class Change:
    """One write: ``action``, the user (email) or group (``name@stage``) it acts on, the key when it exists
    already, and what it adds or removes (role keys, or member emails/keys)."""

    action: str
    subject: str
    key: str | None = None
    items: tuple[str, ...] = ()
    name: str | None = None  # a user's name to set, a group's stage key
    labels: tuple[str, ...] = ()  # readable names of ``items``

    def describe(self) -> str:
        what = ", ".join(self.labels or self.items)
        return f"{self.action} {self.subject}" + (f": {what}" if what else "")

    def as_json(self) -> dict[str, Any]:
        return {"action": self.action, "subject": self.subject, "key": self.key, "items": list(self.items)}


@dataclass(frozen=True)
class AccessPlan:
    """The writes that bring ODC to the desired state, in the order they are applied."""

    changes: tuple[Change, ...]
    users_in_scope: int  # active users the sync owns now
    groups_in_scope: int = 0  # existing groups the sync owns now (named in groups or managed_groups)

    @property
    def removals(self) -> int:
        return sum(1 for change in self.changes if change.action in REMOVALS)

    @property
    def removal_share(self) -> float:
        return self.removals / self.users_in_scope if self.users_in_scope else 0.0

    @property
    def group_removals(self) -> int:
        return sum(1 for change in self.changes if change.action in GROUP_REMOVALS)

    @property
    def group_removal_share(self) -> float:
        return self.group_removals / self.groups_in_scope if self.groups_in_scope else 0.0

    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(change.action for change in self.changes).items()))

    def digest(self) -> str:
        """A short fingerprint of the plan: a reviewed dry run can be required to match the applied plan."""
        canonical = json.dumps([c.as_json() for c in self.changes], sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def refusal(self, max_removal_share: float, allow_mass_removal: bool) -> str | None:
        """Why the blast-radius guard refuses the plan, or None: too many users or too many groups removed."""
        if allow_mass_removal:
            return None
        over = [
            f"{n} of {total} {what} in scope ({share:.0%})"
            for n, total, share, what in (
                (self.removals, self.users_in_scope, self.removal_share, "users"),
                (self.group_removals, self.groups_in_scope, self.group_removal_share, "groups"),
            )
            if n and share > max_removal_share
        ]
        if not over:
            return None
        return (
            f"the plan removes {' and '.join(over)}, more than max_removal_share={max_removal_share:.0%}. "
            "Check the feed; if this is intended, set allow_mass_removal=True."
        )

    def summary(self, *, dry_run: bool, refused: str | None, sample: int = 20) -> dict[str, Any]:
        """What goes to XCom: counts, the digest and a few readable lines; never a full user list."""
        return {
            "dry_run": dry_run,
            "digest": self.digest(),
            "changes": len(self.changes),
            "counts": self.counts(),
            "users_in_scope": self.users_in_scope,
            "removals": self.removals,
            "removal_share": round(self.removal_share, 4),
            "groups_in_scope": self.groups_in_scope,
            "group_removals": self.group_removals,
            "group_removal_share": round(self.group_removal_share, 4),
            "refused": refused,
            "sample": [change.describe() for change in self.changes[:sample]],
        }


def plan_access(
    desired: DesiredAccess,
    resolved: Resolved,
    current: CurrentAccess,
    *,
    removal: RemovalMode = "deactivate",
) -> AccessPlan:
    """The typed difference between ``desired`` and ``current`` (empty when they agree)."""
    names = resolved.role_names
    managed_org = {resolved.organization_roles[r] for r in desired.organization_role_names()}
    managed_app = {resolved.application_roles[r] for r in desired.application_role_refs()}
    creates: list[Change] = []
    updates: list[Change] = []
    grants: list[Change] = []
    removals: list[Change] = []
    wanted = {user.email.casefold(): user for user in desired.users}

    def role_changes(subject: str, key: str | None, want_org: set[str], want_app: set[str]) -> None:
        have_org = set(current.organization_roles.get(key, frozenset())) & managed_org if key else set()
        have_app = set(current.application_roles.get(key, frozenset())) & managed_app if key else set()
        for action, items in (
            ("grant_organization_roles", want_org - have_org),
            ("revoke_organization_roles", have_org - want_org),
            ("grant_application_roles", want_app - have_app),
            ("revoke_application_roles", have_app - want_app),
        ):
            if items:
                ordered = tuple(sorted(items))
                grants.append(Change(action, subject, key, ordered, labels=tuple(names.get(i, i) for i in ordered)))

    for email, user in sorted(wanted.items()):
        existing = current.users.get(email)
        want_org = {resolved.organization_roles[r] for r in user.organization_roles} if user.active else set()
        want_app = {resolved.application_roles[r] for r in user.application_roles} if user.active else set()
        if existing is None:
            if user.active:
                creates.append(Change("create_user", user.email, name=user.name))
                role_changes(user.email, None, want_org, want_app)
            continue
        if user.active and (not existing.is_active or (user.name is not None and user.name != existing.name)):
            updates.append(Change("update_user", user.email, existing.key, name=user.name or existing.name))
        if not user.active and existing.is_active:
            removals.append(Change("deactivate_user", user.email, existing.key))
        role_changes(user.email, existing.key, want_org, want_app)

    for email, existing in sorted(current.users.items()):
        if email in wanted:
            continue
        subject = existing.email or existing.key
        if not existing.is_active:  # already inactive: not a removal, but the sync's roles go
            role_changes(subject, existing.key, set(), set())
        elif removal == "delete":
            removals.append(Change("delete_user", subject, existing.key))
        else:
            removals.append(Change("deactivate_user", subject, existing.key))
            role_changes(subject, existing.key, set(), set())

    group_changes: list[Change] = []
    for group in desired.groups:
        stage_key = resolved.stages[group.stage]
        subject = f"{group.name}@{group.stage}"
        role_keys = {resolved.application_roles[r] for r in group.application_roles}
        members = {m.casefold() for m in group.members}
        state = current.groups.get((group.name.casefold(), stage_key))
        if state is None:
            group_changes.append(
                Change("create_group", subject, None, tuple(sorted(members)), name=stage_key, labels=(group.name,))
            )
            if role_keys:
                ordered = tuple(sorted(role_keys))
                labels = tuple(names.get(i, i) for i in ordered)
                group_changes.append(Change("add_group_roles", subject, None, ordered, labels=labels))
            continue
        member_emails = {k: (current.email_of(k) or "").casefold() for k in state.members}
        add = sorted(members - set(member_emails.values()))
        remove = sorted(k for k, e in member_emails.items() if e not in members)
        if add:
            group_changes.append(Change("add_group_members", subject, state.key, tuple(add)))
        if remove:
            labels = tuple(current.email_of(k) or k for k in remove)
            group_changes.append(Change("remove_group_members", subject, state.key, tuple(remove), labels=labels))
        for action, items in (
            ("add_group_roles", role_keys - state.roles),
            ("remove_group_roles", state.roles - role_keys),
        ):
            if items:
                ordered = tuple(sorted(items))
                labels = tuple(names.get(i, i) for i in ordered)
                group_changes.append(Change(action, subject, state.key, ordered, labels=labels))

    kept = {(g.name.casefold(), resolved.stages[g.stage]) for g in desired.groups}
    for ref in sorted(desired.managed_groups):
        ident = (ref.name.casefold(), resolved.stages[ref.stage])
        state = current.groups.get(ident)
        if ident not in kept and state is not None:
            kept.add(ident)  # listed twice: deleted once
            removals.append(Change("delete_group", f"{ref.name}@{ref.stage}", state.key))

    active_in_scope = sum(1 for user in current.users.values() if user.is_active)
    return AccessPlan((*creates, *updates, *grants, *group_changes, *removals), active_in_scope, len(current.groups))


def check_scope(desired: DesiredAccess, domains: Iterable[str] | None) -> None:
    """Every desired user must be in the scope the sync owns; else it would look new and be created twice."""
    if not domains:
        return
    allowed = {d.casefold().lstrip("@") for d in domains}
    outside = sorted(u.email for u in desired.users if email_domain(u.email) not in allowed)
    if outside:
        raise _fail(
            f"{len(outside)} user(s) outside the managed domains {sorted(allowed)}: {', '.join(outside[:5])}. "
            "Add their domain to domains, or leave them out of the feed."
        )
