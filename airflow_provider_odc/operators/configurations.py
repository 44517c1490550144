"""Stage configurations: read an app's or agent's configuration in a stage, patch its settings, timers,
integrations and secrets, and apply them (an ApplyConfigs deployment, awaited like every deployment).

Values are given by name (or ODC key). Plain values are templated; a name that looks like a secret (Airflow's
masking rule) is refused there, and a value ODC marks ``isSecret`` is refused at run time before anything is
sent. Secrets come only as references to an Airflow Variable or connection (``airflow_provider_odc.secret_refs``):
they are resolved when the task runs, masked at once, and never rendered, logged or pushed to XCom. XComs hold
names and summaries, with every secret value replaced by ``***``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_odc import secret_refs
from airflow_provider_odc.api.asset_configurations import AssetConfiguration, ConfigChanges, resolve_patch, scope_of
from airflow_provider_odc.attach import TryMemory
from airflow_provider_odc.exceptions import OdcError
from airflow_provider_odc.hooks.odc import OdcHook
from airflow_provider_odc.links import PORTAL_URL_XCOM_KEY, OdcPortalLink, portal_url
from airflow_provider_odc.operations import OPERATION_KINDS
from airflow_provider_odc.operators.lifecycle import OdcOperationOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

CHANGES_XCOM_KEY = "configuration_changes"


class OdcGetConfigurationsOperator(BaseOperator):
    """Read an app's (or agent's) configuration in a stage; returns it with every secret value as ``***``.

    :param asset: asset key or exact name. Templated.
    :param stage: stage key or name. Templated.
    :param revision: None (default) for the deployed revision, or a number, ``"latest"`` or ``"highest-tag"``
        for that revision's configuration in the stage. Templated.
    :param fields: which parts to read (``settings``, ``timers``, ``integrations``, ``libraries``,
        ``systemConfigurations``); default all.

    Permission: Configuration management > View configurations on the stage.
    """

    template_fields: Sequence[str] = ("asset", "stage", "revision")
    operator_extra_links = (OdcPortalLink(),)
    ui_color = "#d9f0d3"

    def __init__(
        self,
        *,
        asset: str,
        stage: str,
        revision: int | str | None = None,
        fields: Sequence[str] | None = None,
        odc_conn_id: str = OdcHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.asset = asset
        self.stage = stage
        self.revision = revision
        self.fields = list(fields) if fields is not None else None
        self.odc_conn_id = odc_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        hook = OdcHook(self.odc_conn_id)
        asset = hook.find_asset(self.asset)
        stage = hook.resolve_stage(self.stage)
        revision = None if self.revision is None else hook.resolve_revision(asset.asset_key, self.revision)
        context["ti"].xcom_push(
            key=PORTAL_URL_XCOM_KEY, value=portal_url(hook.settings.origin, asset.asset_key, stage.key)
        )
        configuration = hook.get_asset_configuration(
            asset.asset_key, stage.key, scope=scope_of(asset.asset_type), revision=revision, fields=self.fields
        )
        summary = configuration.summary()
        self.log.info(
            "%s in %s: %d settings, %d timers, %d integrations; pending: %s.",
            asset.name,
            stage.name,
            len(configuration.settings),
            len(configuration.timers),
            len(configuration.integrations),
            ", ".join(configuration.pending) or "none",
        )
        return summary


class OdcPatchConfigurationsOperator(OdcOperationOperator):
    """Change an app's (or agent's) configuration in a stage, then apply it (ApplyConfigs) and wait.

    Returns the ApplyConfigs operation key (None with ``apply=False``); XCom ``configuration_changes`` holds
    the names changed per part (never a value) and the operation key.

    :param asset: asset key or exact name. Templated.
    :param stage: stage key or name. Templated.
    :param settings: ``{setting name: value}`` (values are strings, as ODC stores them). Templated.
    :param timers: ``{timer name: {property: value}}``, e.g. ``{"NightlySync": {"IsActive": "False"}}``. Templated.
    :param integrations: ``{integration name: {property: value}}``. Templated.
    :param system_configurations: ``{name: value}`` of the app's system configurations. Templated.
    :param secret_settings: ``{setting name: reference}``, the reference ``"variable:<key>"`` or
        ``"connection:<conn id>"`` (the connection's password). Not templated, so never rendered.
    :param secret_integrations: ``{integration name: {property: reference}}``. Not templated.
    :param revision_baseline: the revision ODC validates the names and types against (number,
        ``"latest"``, ``"highest-tag"``); default the deployed one. Templated.
    :param apply: start an ApplyConfigs deployment afterwards (default True); False leaves the values
        pending until the next Deploy.

    The wait and its arguments (``deferrable``, ``wait_timeout``, ...) are ``OdcOperationOperator``'s.
    Permissions on the stage: Configuration management > View configurations and Edit configurations;
    Release management > Deploy assets to apply.
    """

    kind = "deployment"
    template_fields: Sequence[str] = (
        "asset",
        "stage",
        "settings",
        "timers",
        "integrations",
        "system_configurations",
        "revision_baseline",
    )

    def __init__(
        self,
        *,
        asset: str,
        stage: str,
        settings: Mapping[str, str] | None = None,
        timers: Mapping[str, Mapping[str, str]] | None = None,
        integrations: Mapping[str, Mapping[str, str]] | None = None,
        system_configurations: Mapping[str, str] | None = None,
        secret_settings: Mapping[str, str] | None = None,
        secret_integrations: Mapping[str, Mapping[str, str]] | None = None,
        revision_baseline: int | str | None = None,
        apply: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.settings = dict(settings or {})
        self.timers = {name: dict(values) for name, values in (timers or {}).items()}
        self.integrations = {name: dict(values) for name, values in (integrations or {}).items()}
        self.system_configurations = dict(system_configurations or {})
        secret_refs.check_plain_values("settings", self.settings)
        secret_refs.check_plain_values("integrations", self.integrations, nested=True)
        secret_refs.check_plain_values("system_configurations", self.system_configurations)
        secret_refs.check_references("secret_settings", dict(secret_settings or {}))
        secret_refs.check_references("secret_integrations", dict(secret_integrations or {}), nested=True)
        self.secret_settings = dict(secret_settings or {})
        self.secret_integrations = {name: dict(refs) for name, refs in (secret_integrations or {}).items()}
        if not (self.settings or self.timers or self.integrations or self.system_configurations) and not (
            self.secret_settings or self.secret_integrations
        ):
            raise ValueError(
                "Give at least one change: settings, timers, integrations, system_configurations or secrets."
            )
        self.asset = asset
        self.stage = stage
        self.revision_baseline = revision_baseline
        self.apply = apply

    def execute(self, context: Context) -> str | None:  # type: ignore[override]  # None: nothing started
        hook = OdcHook(self.odc_conn_id)
        started_at = time.time()
        asset = hook.find_asset(self.asset)
        stage = hook.resolve_stage(self.stage)
        scope = scope_of(asset.asset_type)
        url = portal_url(hook.settings.origin, asset.asset_key, stage.key)
        context["ti"].xcom_push(key=PORTAL_URL_XCOM_KEY, value=url)
        baseline = None
        if self.revision_baseline is not None:
            baseline = hook.resolve_revision(asset.asset_key, self.revision_baseline)
        configuration = hook.get_asset_configuration(asset.asset_key, stage.key, scope=scope, revision=baseline)
        changes = self._changes(configuration, f"{asset.name} in {stage.name}")
        patch = resolve_patch(configuration, changes, what=f"{asset.name} in {stage.name}", revision_baseline=baseline)
        hook.patch_asset_configuration(asset.asset_key, stage.key, patch, scope=scope)
        names = [name for part in patch.changed.values() for name in part]
        self.log.info("Patched %s in %s: %s (values pending until applied).", asset.name, stage.name, ", ".join(names))
        record: dict[str, Any] = {"assetKey": asset.asset_key, "stageKey": stage.key, "changed": patch.changed}
        if not self.apply:
            context["ti"].xcom_push(key=CHANGES_XCOM_KEY, value=record)
            return None
        revision = configuration.revision_deployed
        key = hook.start_deployment(
            asset.asset_key, stage.key, operation="ApplyConfigs", revision=revision, memory=TryMemory(context)
        )
        context["ti"].xcom_push(key=CHANGES_XCOM_KEY, value={**record, "operationKey": key})
        context["ti"].xcom_push(key="operation_key", value=key)
        self.log.info("ODC ApplyConfigs %s started: %s", key, url)
        if not self.wait_for_completion:
            return key
        return self.wait_for(hook, OPERATION_KINDS[self.kind], key, started_at)

    def _changes(self, configuration: AssetConfiguration, what: str) -> ConfigChanges:
        """Plain and secret changes together; a plain value for a setting ODC marks secret is refused (and
        masked) before anything is sent."""
        plain_secrets = [
            name
            for name in self.settings
            if any(value.is_secret and value.matches(name) for value in configuration.settings)
        ]
        for group_name, properties in self.integrations.items():
            for group in configuration.integrations:
                if group.matches(group_name):
                    plain_secrets += [
                        f"{group_name}.{name}"
                        for name in properties
                        if any(v.is_secret and v.matches(name) for v in group.configs)
                    ]
        if plain_secrets:
            secret_refs.mask_all(self._plain_values())
            raise OdcError(
                f"{what}: {', '.join(plain_secrets)} {'is a secret' if len(plain_secrets) == 1 else 'are secrets'} "
                f"in ODC, given as a plain value; {secret_refs.REFERENCE_HELP}. Nothing was changed."
            )
        settings = {**self.settings, **secret_refs.resolve_all(self.secret_settings, used_for=f"{what} setting")}
        integrations: dict[str, dict[str, str]] = {name: dict(values) for name, values in self.integrations.items()}
        for name, refs in self.secret_integrations.items():
            integrations.setdefault(name, {}).update(secret_refs.resolve_all(refs, used_for=f"{what} {name}"))
        return ConfigChanges(
            settings=settings,
            timers=self.timers,
            integrations=integrations,
            system_configurations=self.system_configurations,
        )

    def _plain_values(self) -> list[str]:
        values = list(self.settings.values()) + list(self.system_configurations.values())
        for group in (*self.timers.values(), *self.integrations.values()):
            values += list(group.values())
        return [str(value) for value in values]


class OdcStageSystemConfigurationsOperator(BaseOperator):
    """Read (and with ``changes``, first patch) a stage's default system configurations; returns them, every
    secret value as ``***``.

    :param stage: stage key or name. Templated.
    :param changes: ``{name or key: value}``. Templated (names that look like secrets are refused).
    :param secret_changes: ``{name or key: reference}`` (``"variable:<key>"`` / ``"connection:<conn id>"``). Not
        templated.

    Permissions on the stage: Configuration management > View configurations; Edit configurations to
    change (email settings: Manage Email SMTP configuration). New values apply to the stage's apps on their
    next deployment.
    """

    template_fields: Sequence[str] = ("stage", "changes")
    ui_color = "#d9f0d3"

    def __init__(
        self,
        *,
        stage: str,
        changes: Mapping[str, str] | None = None,
        secret_changes: Mapping[str, str] | None = None,
        odc_conn_id: str = OdcHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.stage = stage
        self.changes = dict(changes or {})
        secret_refs.check_plain_values("changes", self.changes)
        secret_refs.check_references("secret_changes", dict(secret_changes or {}))
        self.secret_changes = dict(secret_changes or {})
        self.odc_conn_id = odc_conn_id

    def execute(self, context: Context) -> list[dict[str, Any]]:
        hook = OdcHook(self.odc_conn_id)
        stage = hook.resolve_stage(self.stage)
        if self.changes or self.secret_changes:
            secrets = secret_refs.resolve_all(self.secret_changes, used_for=f"stage {stage.name} system configuration")
            patch = hook.patch_default_system_configurations(stage.key, {**self.changes, **secrets})
            self.log.info("Changed in %s: %s.", stage.name, ", ".join(patch.changed["systemConfigurations"]))
        values = hook.get_default_system_configurations(stage.key)
        return [value.summary() for value in values]
