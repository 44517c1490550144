"""Stage configurations on ``OdcHook``: read and patch an app's or agent's configuration in a stage, and a
stage's default system configurations (Asset Configurations API; shapes in ``api.asset_configurations``).

Every secret value ODC returns is handed to Airflow's masker the moment it is read, so no log line, error or
rendered field can show it; the typed results' ``summary()`` never holds one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from airflow_provider_odc.api import asset_configurations as configs
from airflow_provider_odc.api.asset_configurations import AssetConfiguration, AssetScope, ConfigValue, ResolvedPatch
from airflow_provider_odc.compat import mask_secret

if TYPE_CHECKING:
    from airflow_provider_odc.hooks._mixin import HookCore


class OdcConfigurationsMixin:
    """Typed calls of the Asset Configurations API. Permissions (per stage): Configuration management >
    View configurations to read, > Edit configurations to patch (email settings: > Manage Email SMTP
    configuration)."""

    def get_asset_configuration(
        self: HookCore,
        asset_key: str,
        stage_key: str,
        *,
        scope: AssetScope = "applications",
        revision: int | None = None,
        fields: Iterable[str] | None = None,
    ) -> AssetConfiguration:
        """An app's (``scope="agents"``: an agent's) configuration in a stage, for its deployed revision or,
        with ``revision``, for that revision. Secret values in the answer are masked at once."""
        path = configs.configuration_path(scope, stage_key, asset_key, revision)
        configuration = AssetConfiguration.from_json(self.request_json("GET", path, params=configs.read_params(fields)))
        for secret in configs.secret_values(configuration.all_values()):
            mask_secret(secret)
        return configuration

    def patch_asset_configuration(
        self: HookCore, asset_key: str, stage_key: str, patch: ResolvedPatch, *, scope: AssetScope = "applications"
    ) -> None:
        """Send a resolved patch (``api.asset_configurations.resolve_patch``): its values become pending until
        the next Deploy or ApplyConfigs. Only the given values change."""
        self.request("PATCH", configs.patch_path(scope, stage_key, asset_key), json=patch.body)

    def get_default_system_configurations(self: HookCore, stage_key: str) -> list[ConfigValue]:
        """A stage's default system configurations (what every app there inherits unless it overrides)."""
        body = self.request_json("GET", configs.default_system_configurations_path(stage_key))
        values = list(configs.values_of(body.get("systemConfigurations") if isinstance(body, dict) else None))
        for secret in configs.secret_values(values):
            mask_secret(secret)
        return values

    def patch_default_system_configurations(
        self: HookCore, stage_key: str, changes: Mapping[str, str]
    ) -> ResolvedPatch:
        """Change a stage's default system configurations by name or key; returns what was sent (names only
        in ``changed``). Unknown names are an OdcError listing the known ones, before anything is sent."""
        current = OdcConfigurationsMixin.get_default_system_configurations(self, stage_key)
        patch = configs.system_patch_body(current, changes, what=f"stage {stage_key}")
        self.request("PATCH", configs.default_system_configurations_path(stage_key), json=patch.body)
        return patch
