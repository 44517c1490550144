"""Asset Configurations API (``/api/asset-configurations/v1``): an app's or agent's settings, timers,
integrations and system configurations in one stage, and a stage's default system configurations.

A PATCH only makes values *pending*: they take effect on the next Deploy or an ``ApplyConfigs`` deployment
operation (``deployments``). Every value travels as a string. Secrets are settings (or integration
properties) with ``isSecret: true``; how ODC returns their values is not documented, so a secret value in an
answer is treated as a credential (``secret_values``) and never kept in a summary (``AssetConfiguration.summary``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from airflow_provider_odc.api._parse import as_object, integer, objects, same_key, text
from airflow_provider_odc.exceptions import OdcError

BASE = "/api/asset-configurations/v1/environments"
#: ``fields`` of the GETs: which parts of a configuration to return.
FIELDS = ("systemConfigurations", "settings", "timers", "integrations", "libraries")
#: The path segment of an asset kind: agents have their own endpoints, every other asset is an application.
AssetScope = Literal["applications", "agents"]
REDACTED = "***"


def scope_of(asset_type: str | None) -> AssetScope:
    """``agents`` for an Agent asset, ``applications`` for anything else (apps, workflows)."""
    return "agents" if asset_type == "Agent" else "applications"


def configuration_path(scope: AssetScope, stage_key: str, asset_key: str, revision: int | None) -> str:
    """The GET of an asset's configuration in a stage: for its deployed revision (``None``) or one revision."""
    which = "deployed" if revision is None else str(revision)
    return f"{BASE}/{stage_key}/{scope}/{asset_key}/revisions/{which}/configurations"


def patch_path(scope: AssetScope, stage_key: str, asset_key: str) -> str:
    return f"{BASE}/{stage_key}/{scope}/{asset_key}/configurations"


def default_system_configurations_path(stage_key: str) -> str:
    return f"{BASE}/{stage_key}/default-system-configurations"


def read_params(fields: Iterable[str] | None = None) -> dict[str, Any]:
    """The ``fields`` filter (comma-separated); an unknown part is a ValueError naming the known ones."""
    if fields is None:
        return {}
    wanted = list(fields)
    unknown = [name for name in wanted if name not in FIELDS]
    if unknown:
        raise ValueError(f"Unknown configuration fields {unknown}; use some of {', '.join(FIELDS)}.")
    return {"fields": ",".join(wanted)} if wanted else {}


@dataclass(frozen=True)
class ConfigValue:
    """``GenericConfigResult``: one setting, timer or integration property, or system configuration."""

    key: str
    name: str | None
    data_type: str | None
    value: str | None
    deployed_value: str | None
    default_value: str | None
    is_secret: bool
    value_origin: str | None
    value_set_after_deploy: bool | None

    @classmethod
    def from_json(cls, body: Any) -> ConfigValue:
        item = as_object(body, "a configuration value")
        after = item.get("valueSetAfterDeploy")
        return cls(
            key=text(item, "key") or "",
            name=text(item, "name"),
            data_type=text(item, "dataType"),
            value=text(item, "value"),
            deployed_value=text(item, "deployedValue"),
            default_value=text(item, "defaultValue"),
            is_secret=item.get("isSecret") is True,
            value_origin=text(item, "valueOrigin"),
            value_set_after_deploy=after if isinstance(after, bool) else None,
        )

    def matches(self, wanted: str) -> bool:
        """Named by its key (a GUID, any case) or its name (case-insensitive)."""
        return same_key(self.key, wanted) or (self.name or "").casefold() == wanted.casefold()

    @property
    def pending(self) -> bool:
        """A value set since the last deployment (for a secret ODC says so; otherwise the values differ)."""
        if self.is_secret:
            return bool(self.value_set_after_deploy)
        return self.value is not None and self.value != self.deployed_value

    def summary(self) -> dict[str, Any]:
        """JSON for a log or XCom: a secret's values never appear, only whether one is pending."""
        hidden = self.is_secret
        return {
            "key": self.key,
            "name": self.name,
            "dataType": self.data_type,
            "isSecret": self.is_secret,
            "value": REDACTED if hidden and self.value else self.value,
            "deployedValue": REDACTED if hidden and self.deployed_value else self.deployed_value,
            "pending": self.pending,
        }


@dataclass(frozen=True)
class ConfigGroup:
    """``TimerResult`` or ``IntegrationResult``: a named group of properties."""

    key: str
    name: str | None
    configs: tuple[ConfigValue, ...]

    @classmethod
    def from_json(cls, body: Any) -> ConfigGroup:
        item = as_object(body, "a timer or integration configuration")
        configs = tuple(ConfigValue.from_json(value) for value in objects(item.get("configs")))
        return cls(key=text(item, "key") or "", name=text(item, "name"), configs=configs)

    def matches(self, wanted: str) -> bool:
        return same_key(self.key, wanted) or (self.name or "").casefold() == wanted.casefold()

    def summary(self) -> dict[str, Any]:
        return {"key": self.key, "name": self.name, "configs": [config.summary() for config in self.configs]}


@dataclass(frozen=True)
class AssetConfiguration:
    """``ApplicationConfigResult`` / ``AgentConfigResult``: the parts the provider reads and patches."""

    key: str | None
    name: str | None
    revision_baseline: int | None
    revision_deployed: int | None
    deployed_at: str | None
    settings: tuple[ConfigValue, ...]
    timers: tuple[ConfigGroup, ...]
    integrations: tuple[ConfigGroup, ...]
    system_configurations: tuple[ConfigValue, ...]

    @classmethod
    def from_json(cls, body: Any) -> AssetConfiguration:
        item = as_object(body, "an asset configuration")
        return cls(
            key=text(item, "key"),
            name=text(item, "name"),
            revision_baseline=integer(item, "revisionBaseline"),
            revision_deployed=integer(item, "revisionDeployed"),
            deployed_at=text(item, "deployedAt"),
            settings=values_of(item.get("settings")),
            timers=tuple(ConfigGroup.from_json(group) for group in objects(item.get("timers"))),
            integrations=tuple(ConfigGroup.from_json(group) for group in objects(item.get("integrations"))),
            system_configurations=values_of(item.get("systemConfigurations")),
        )

    def all_values(self) -> Iterator[ConfigValue]:
        yield from self.settings
        yield from self.system_configurations
        for group in (*self.timers, *self.integrations):
            yield from group.configs

    @property
    def pending(self) -> list[str]:
        """The names of the values set since the last deployment (an ApplyConfigs would apply them)."""
        return [value.name or value.key for value in self.all_values() if value.pending]

    def summary(self) -> dict[str, Any]:
        """JSON for XCom and logs, with every secret value replaced by ``***``."""
        return {
            "key": self.key,
            "name": self.name,
            "revisionBaseline": self.revision_baseline,
            "revisionDeployed": self.revision_deployed,
            "deployedAt": self.deployed_at,
            "settings": [value.summary() for value in self.settings],
            "timers": [group.summary() for group in self.timers],
            "integrations": [group.summary() for group in self.integrations],
            "systemConfigurations": [value.summary() for value in self.system_configurations],
            "pending": self.pending,
        }


def values_of(value: Any) -> tuple[ConfigValue, ...]:
    """The ``GenericConfigResult`` items of a nullable list."""
    return tuple(ConfigValue.from_json(item) for item in objects(value))


def secret_values(values: Iterable[ConfigValue]) -> list[str]:
    """Every non-empty value ODC returned for a secret (to mask before anything is logged)."""
    found = []
    for value in values:
        if value.is_secret:
            found += [v for v in (value.value, value.deployed_value, value.default_value) if v]
    return found


# Patches ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigChanges:
    """What to change, by name or key: ``settings`` and ``system_configurations`` map a value's name to its new
    value; ``timers`` and ``integrations`` map a timer's (integration's) name to ``{property: value}``."""

    settings: Mapping[str, str]
    timers: Mapping[str, Mapping[str, str]]
    integrations: Mapping[str, Mapping[str, str]]
    system_configurations: Mapping[str, str]

    def __bool__(self) -> bool:
        return bool(self.settings or self.timers or self.integrations or self.system_configurations)


def _pick(values: Iterable[ConfigValue], wanted: str, where: str) -> ConfigValue:
    values = list(values)
    found = [value for value in values if value.matches(wanted)]
    if len(found) == 1:
        return found[0]
    known = ", ".join(sorted(value.name or value.key for value in values)) or "none"
    how = "several" if found else "no"
    raise OdcError(f"{where} has {how} configuration value named {wanted!r} (known: {known}).")


def _pick_group(groups: Iterable[ConfigGroup], wanted: str, where: str) -> ConfigGroup:
    groups = list(groups)
    found = [group for group in groups if group.matches(wanted)]
    if len(found) == 1:
        return found[0]
    known = ", ".join(sorted(group.name or group.key for group in groups)) or "none"
    how = "several" if found else "no"
    raise OdcError(f"{where} has {how} entries named {wanted!r} (known: {known}).")


@dataclass(frozen=True)
class ResolvedPatch:
    """A patch body with the keys ODC knows, and which of its values are secrets (by ODC's ``isSecret``)."""

    body: dict[str, Any]
    changed: dict[str, list[str]]  # part -> names changed (never values)
    secret_names: tuple[str, ...]


def resolve_patch(
    configuration: AssetConfiguration, changes: ConfigChanges, *, what: str, revision_baseline: int | None
) -> ResolvedPatch:
    """``ApplicationConfigPatch`` / ``AgentConfigPatch`` for ``changes``, each name resolved to ODC's key in
    ``configuration`` (an unknown name is an OdcError listing the known ones)."""
    body: dict[str, Any] = {}
    changed: dict[str, list[str]] = {}
    secrets: list[str] = []

    def entry(value: ConfigValue, new: str) -> dict[str, Any]:
        if value.is_secret:
            secrets.append(value.name or value.key)
        return {"key": value.key, "value": new}

    if revision_baseline is not None:
        body["revisionBaseline"] = revision_baseline
    for part, values, given in (
        ("settings", configuration.settings, changes.settings),
        ("systemConfigurations", configuration.system_configurations, changes.system_configurations),
    ):
        if given:
            picked = [(_pick(values, name, f"{what} ({part})"), new) for name, new in given.items()]
            body[part] = [entry(value, new) for value, new in picked]
            changed[part] = [value.name or value.key for value, _ in picked]
    for part, groups, given_groups in (
        ("timers", configuration.timers, changes.timers),
        ("integrations", configuration.integrations, changes.integrations),
    ):
        if not given_groups:
            continue
        items, names = [], []
        for group_name, properties in given_groups.items():
            group = _pick_group(groups, group_name, f"{what} ({part})")
            where = f"{what} {part[:-1]} {group.name or group.key}"
            picked = [(_pick(group.configs, name, where), new) for name, new in properties.items()]
            items.append({"key": group.key, "configs": [entry(value, new) for value, new in picked]})
            names += [f"{group.name or group.key}.{value.name or value.key}" for value, _ in picked]
        body[part] = items
        changed[part] = names
    return ResolvedPatch(body=body, changed=changed, secret_names=tuple(secrets))


def system_patch_body(current: Iterable[ConfigValue], changes: Mapping[str, str], *, what: str) -> ResolvedPatch:
    """``EnvironmentConfigPatch`` for a stage's default system configurations, by name or key."""
    current = list(current)
    picked = [(_pick(current, name, what), new) for name, new in changes.items()]
    return ResolvedPatch(
        body={"systemConfigurations": [{"key": value.key, "value": new} for value, new in picked]},
        changed={"systemConfigurations": [value.name or value.key for value, _ in picked]},
        secret_names=tuple(value.name or value.key for value, _ in picked if value.is_secret),
    )
