"""The emulator's stage configurations (Asset Configurations API), as the spec and the use cases describe them.

Every deployable asset has the same small configuration schema (settings, one timer, one REST integration;
apps also a system configuration), with keys derived from the asset key, and every stage has default system
configurations. A PATCH sets values, which stay *pending* until a Deploy or an ``ApplyConfigs`` of that
asset in that stage finishes after it (``ReleaseLifecycle.deployment_locked``); then they are the deployed
values. Unknown keys and values of the wrong type are refused (``revisionBaseline`` "validates whether the
configuration key and value type exist"). How ODC answers a secret's value is not documented, so the
emulator never returns one: ``value`` and ``deployedValue`` of a secret are null, ``valueSetAfterDeploy``
says whether one is pending. Nothing here knows about FastAPI or HTTP.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_odc.emulator.release import ReleaseLifecycle
from airflow_provider_odc.emulator.runtime import Runtime
from airflow_provider_odc.emulator.seed import DEPLOYABLE_TYPES, format_timestamp
from airflow_provider_odc.emulator.validation import ApiError, validation_error

CODE = "OS-ASCFG-40001"
NOT_FOUND = "OS-ASCFG-40401"


@dataclass(frozen=True)
class Definition:
    """One configurable value: ``(name, dataType, default, isSecret, description)``."""

    name: str
    data_type: str
    default: str | None
    secret: bool = False
    description: str | None = None


SETTINGS = (
    Definition("ApiUrl", "Text", "https://api.example.test", description="Base URL of the partner API"),
    Definition("MaxItems", "Integer", "50"),
    Definition("FeatureEnabled", "Boolean", "False"),
    Definition("ApiKey", "Text", None, secret=True, description="Partner API key"),
    Definition("LicenseCode", "Text", None, secret=True, description="A secret whose name Airflow would not mask"),
)
TIMERS: dict[str, tuple[Definition, ...]] = {
    "NightlySync": (Definition("IsActive", "Boolean", "True"), Definition("Schedule", "Text", "0 2 * * *"))
}
INTEGRATIONS: dict[str, tuple[Definition, ...]] = {
    "PaymentsApi": (
        Definition("BaseUrl", "Text", "https://payments.example.test"),
        Definition("Username", "Text", "svc-payments"),
        Definition("Password", "Text", None, secret=True),
    )
}
APP_SYSTEM = (Definition("DefaultTimeZone", "Text", "UTC"),)
STAGE_SYSTEM = (
    Definition("DefaultTimeZone", "Text", "UTC"),
    Definition("SmtpServer", "Text", "smtp.example.test"),
    Definition("SmtpPassword", "Text", None, secret=True),
)


def config_key(owner: str, *path: str) -> str:
    """A value's stable key: derived from its owner (asset or stage key) and its place."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"odc-config:{owner}:{'/'.join(path)}"))


@dataclass
class SetValue:
    value: str | None
    at: float


@dataclass
class ConfigurationData:
    """Values set by PATCH, by (owner, key); ``reset()`` replaces it."""

    values: dict[tuple[str, str], SetValue] = field(default_factory=dict)


def _check_type(definition: Definition, value: str | None, name: str) -> str | None:
    """Why ``value`` does not fit the definition's data type, or None."""
    if value is None:
        return None
    if definition.data_type == "Integer":
        try:
            int(value)
        except ValueError:
            return f"The value for {name} is not a valid Integer."
    if definition.data_type == "Boolean" and value.casefold() not in ("true", "false"):
        return f"The value for {name} is not a valid Boolean (True or False)."
    return None


class StageConfigurations:
    """Asset and stage configurations; shares the emulator's lock and clock, reads deployments from ``release``."""

    def __init__(self, runtime: Runtime, release: ReleaseLifecycle) -> None:
        self._runtime = runtime
        self._lock = runtime.lock
        self._release = release
        self._data = ConfigurationData()

    def reset(self) -> None:
        with self._lock:
            self._data = ConfigurationData()

    # Lookups (lock held) -----------------------------------------------------------------------------

    def _place_locked(self, scope: str, environment_key: str, asset_key: str) -> tuple[dict[str, Any], str]:
        environment = self._release.environment_locked(environment_key)
        if environment is None:
            raise ApiError(404, f"Environment '{environment_key}' was not found.", NOT_FOUND)
        asset = self._release.asset_locked(asset_key)
        wanted_agent = scope == "agents"
        if (
            asset is None
            or asset["assetType"] not in DEPLOYABLE_TYPES
            or (asset["assetType"] == "Agent") != wanted_agent
        ):
            what = "Agent" if wanted_agent else "Application"
            raise ApiError(404, f"{what} '{asset_key}' was not found.", NOT_FOUND)
        return asset, environment["key"]

    def _render_value(
        self, owner: str, path: tuple[str, ...], definition: Definition, applied_at: float | None
    ) -> dict[str, Any]:
        """``GenericConfigResult``: the last set value, the value deployed at ``applied_at`` (None: never)."""
        key = config_key(owner, *path)
        history = self._data.values.get((owner, key))
        value = history.value if history else definition.default
        deployed = None
        if applied_at is not None:
            deployed = history.value if history and history.at <= applied_at else definition.default
        pending = history is not None and (applied_at is None or history.at > applied_at)
        override = "ApplicationLevelOverride" if history else "ApplicationLevelDefault"
        return {
            "key": key,
            "name": definition.name,
            "description": definition.description,
            "dataType": definition.data_type,
            "defaultValue": None if definition.secret else definition.default,
            "deployedValue": None if definition.secret else deployed,
            "value": None if definition.secret else value,
            "valueOrigin": override,
            "deployedValueOrigin": None if applied_at is None else override,
            "isSecret": definition.secret,
            "valueSetAfterDeploy": pending if definition.secret else None,
            "updatedAt": format_timestamp(history.at) if history else None,
            "filename": None,
        }

    def _groups(
        self, owner: str, applied_at: float | None, groups: dict[str, tuple[Definition, ...]], part: str
    ) -> list[dict[str, Any]]:
        rendered = []
        for name, definitions in groups.items():
            item: dict[str, Any] = {"key": config_key(owner, part, name), "name": name}
            if part == "timers":
                item["description"] = f"{name} timer"
            else:
                item["pluginType"] = "RestConsumer"
            item["configs"] = [self._render_value(owner, (part, name, d.name), d, applied_at) for d in definitions]
            rendered.append(item)
        return rendered

    # Asset configurations ----------------------------------------------------------------------------

    def asset_configuration(
        self, scope: str, environment_key: str, asset_key: str, revision: str, fields: set[str] | None
    ) -> dict[str, Any]:
        """``ApplicationConfigResult`` / ``AgentConfigResult`` for the deployed revision or ``revision``."""
        with self._lock:
            asset, stage = self._place_locked(scope, environment_key, asset_key)
            owner = f"{asset['assetKey']}@{stage}"
            deployment = self._release.deployment_locked(asset["assetKey"], stage)
            if revision == "deployed":
                if deployment is None:
                    raise ApiError(404, f"{asset['name']} is not deployed to this stage.", NOT_FOUND)
                baseline = deployment[0]
            else:
                try:
                    baseline = int(revision)
                except ValueError:
                    baseline = 0
                if not 1 <= baseline <= int(asset["revision"]):
                    raise ApiError(404, f"Revision {revision} of '{asset_key}' was not found.", NOT_FOUND)
            applied_at = None if deployment is None else deployment[1]
            parts: dict[str, Any] = {
                "settings": [self._render_value(owner, ("settings", d.name), d, applied_at) for d in SETTINGS],
                "timers": self._groups(owner, applied_at, TIMERS, "timers"),
                "integrations": self._groups(owner, applied_at, INTEGRATIONS, "integrations"),
                "libraries": [],
            }
            if scope == "applications":
                parts["systemConfigurations"] = [
                    self._render_value(owner, ("systemConfigurations", d.name), d, applied_at) for d in APP_SYSTEM
                ]
            body: dict[str, Any] = {
                "key": asset["assetKey"],
                "name": asset["name"],
                "revisionBaseline": baseline,
                "revisionDeployed": None if deployment is None else deployment[0],
                "deployedAt": None if deployment is None else format_timestamp(deployment[1]),
            }
            for part, value in parts.items():
                body[part] = value if fields is None or part in fields else None
            return body

    def patch_asset(self, scope: str, environment_key: str, asset_key: str, patch: dict[str, Any]) -> None:
        """``PATCH .../configurations``: every key must exist (in the baseline revision, else the deployed
        one) and every value fit its type, or nothing changes (400)."""
        with self._lock:
            asset, stage = self._place_locked(scope, environment_key, asset_key)
            owner = f"{asset['assetKey']}@{stage}"
            baseline = patch.get("revisionBaseline")
            if baseline is None and self._release.deployment_locked(asset["assetKey"], stage) is None:
                detail = (
                    f"{asset['name']} is not deployed to this stage: give the revisionBaseline to validate against."
                )
                raise validation_error({"revisionBaseline": [detail]}, CODE)
            if baseline is not None and not 1 <= baseline <= int(asset["revision"]):
                raise validation_error({"revisionBaseline": [f"Revision {baseline} does not exist."]}, CODE)
            flat: dict[str, tuple[tuple[str, ...], Definition]] = {}
            for d in SETTINGS:
                flat[config_key(owner, "settings", d.name)] = (("settings", d.name), d)
            if scope == "applications":
                for d in APP_SYSTEM:
                    flat[config_key(owner, "systemConfigurations", d.name)] = (("systemConfigurations", d.name), d)
            groups: dict[str, dict[str, tuple[Definition, ...]]] = {"timers": TIMERS, "integrations": INTEGRATIONS}
            errors: dict[str, list[str]] = {}
            changes: list[tuple[str, str | None]] = []

            def take(
                part: str, items: list[dict[str, Any]], known: Mapping[str, tuple[tuple[str, ...], Definition]]
            ) -> None:
                for index, item in enumerate(items):
                    where = f"{part}[{index}]"
                    key = str(item.get("key") or "").casefold()
                    if key not in known:
                        errors.setdefault(where, []).append(f"Configuration key '{item.get('key')}' does not exist.")
                        continue
                    problem = _check_type(known[key][1], item.get("value"), known[key][1].name)
                    if problem:
                        errors.setdefault(where, []).append(problem)
                    changes.append((key, item.get("value")))

            for part in ("settings", "systemConfigurations"):
                take(part, patch.get(part) or [], {k: v for k, v in flat.items() if v[0][0] == part})
            for part, definitions in groups.items():
                for index, group in enumerate(patch.get(part) or []):
                    name = next(
                        (
                            n
                            for n in definitions
                            if config_key(owner, part, n) == str(group.get("key") or "").casefold()
                        ),
                        None,
                    )
                    if name is None:
                        errors.setdefault(f"{part}[{index}]", []).append(f"Key '{group.get('key')}' does not exist.")
                        continue
                    known = {
                        config_key(owner, part, name, d.name): ((part, name, d.name), d) for d in definitions[name]
                    }
                    take(f"{part}[{index}].configs", group.get("configs") or [], known)
            for index, library in enumerate(patch.get("libraries") or []):
                errors.setdefault(f"libraries[{index}]", []).append(
                    f"Library '{library.get('key')}' is not a producer."
                )
            if errors:
                raise validation_error(errors, CODE)
            now = self._runtime.now_locked()
            for key, value in changes:
                self._data.values[(owner, key)] = SetValue(value, now)

    # Stage defaults ----------------------------------------------------------------------------------

    def _stage_locked(self, environment_key: str) -> str:
        environment = self._release.environment_locked(environment_key)
        if environment is None:
            raise ApiError(404, f"Environment '{environment_key}' was not found.", NOT_FOUND)
        return str(environment["key"])

    def default_system_configurations(self, environment_key: str) -> dict[str, Any]:
        """``EnvironmentConfigResult``: a stage's values apply when set (no deployment of their own)."""
        with self._lock:
            owner = self._stage_locked(environment_key)
            now = self._runtime.now_locked()
            values = [self._render_value(owner, ("system", d.name), d, now) for d in STAGE_SYSTEM]
            for value in values:
                value["valueOrigin"] = value["valueOrigin"].replace("Application", "Environment")
                value["deployedValueOrigin"] = value["valueOrigin"]
            return {"systemConfigurations": values}

    def patch_default_system_configurations(self, environment_key: str, items: list[dict[str, Any]]) -> None:
        """The spec lists no 400 for this PATCH: an unknown key is a 404, as for an unknown stage."""
        with self._lock:
            owner = self._stage_locked(environment_key)
            known = {config_key(owner, "system", d.name): d for d in STAGE_SYSTEM}
            changes = []
            for item in items:
                key = str(item.get("key") or "").casefold()
                if key not in known:
                    raise ApiError(404, f"System configuration '{item.get('key')}' was not found.", NOT_FOUND)
                problem = _check_type(known[key], item.get("value"), known[key].name)
                if problem:
                    raise validation_error({"systemConfigurations": [problem]}, CODE)
                changes.append((key, item.get("value")))
            now = self._runtime.now_locked()
            for key, value in changes:
                self._data.values[(owner, key)] = SetValue(value, now)
