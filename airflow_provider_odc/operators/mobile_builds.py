"""Native mobile builds of an app on a stage: version suggestions, the Android/iOS native build itself, and
the build configurations it needs.

The links ODC gives a finished build (``appBinaryDownloadUrl`` and the others) are pre-signed: whoever holds
one can download the app until it expires. So ``OdcNativeBuildOperator`` never pushes or logs them. It masks
them the moment it reads them, returns only which links exist, and, with ``download_to``, streams the app
binary itself to a path or object storage URL it then returns with its size and SHA-256. A later task that
needs a fresh link asks ``OdcHook.get_native_build`` with the returned keys; the link is masked in that
task too. Passing a reference rather than the link also helps because links expire: a link stored in XCom
would be stale by the time anyone reads it.

Signing material (keystores, certificates, their passwords, the key alias) never goes through a templated
field, where Airflow would render and store it: ``OdcMobileBuildConfigurationOperator`` reads it from an
Airflow connection (``signing_conn_id``) at run time and masks each value before the PATCH.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_odc.api import native_builds
from airflow_provider_odc.api.native_builds import (
    BUILD_NOT_NEEDED,
    CONFIGURATION_FIELDS,
    MISSING_CONFIGURATION,
    NATIVE_BUILD,
    SECRET_FIELDS,
    MobilePlatform,
    NativeBuild,
    platform_of,
)
from airflow_provider_odc.attach import TryMemory
from airflow_provider_odc.compat import BaseHook, mask_secret
from airflow_provider_odc.exceptions import OdcConfigError, OdcError
from airflow_provider_odc.hooks.odc import OdcHook
from airflow_provider_odc.links import PORTAL_URL_XCOM_KEY, OdcPortalLink, portal_url
from airflow_provider_odc.operators.lifecycle import OdcOperationOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_odc.api.assets import Asset
    from airflow_provider_odc.api.portfolios import Stage

SCOPE_XCOM_KEY = "native_build_scope"
BINARY_LINK = "appBinaryDownloadUrl"


def deployed_build(hook: OdcHook, asset: Asset, stage: Stage) -> tuple[str, int]:
    """The build key and revision of the app as deployed on the stage (what a native build packages)."""
    for deployed in hook.list_deployed_assets(stage_key=stage.key, asset_key=asset.asset_key):
        on_stage = deployed.on_stage(stage.key)
        if on_stage is not None and on_stage.build_key and on_stage.revision is not None:
            return on_stage.build_key, on_stage.revision
    raise OdcError(
        f"{asset.name} is not deployed on stage {stage.name}: a native build packages the app deployed there. "
        "Deploy it first (OdcDeployOperator).",
        conn_id=hook.odc_conn_id,
    )


def _version_code(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not str(value).strip().isdigit():
        raise ValueError(f"mobile_version_code must be a whole number, not {value!r}.")
    return int(str(value).strip())


class OdcMobileVersionSuggestionOperator(BaseOperator):
    """Ask ODC for the next version number and code of an app's native builds on a stage.

    Returns ``{"Android": {"mobileVersionNumber", "mobileVersionCode"}, "iOS": {...}}`` (one platform when
    ``platform`` is given). Needs **Stage > View stage**.

    :param asset: the mobile app, by key or exact name. Templated.
    :param stage: stage key or name. Templated.
    :param platform: ``"Android"``, ``"iOS"`` or None for both.
    """

    template_fields: Sequence[str] = ("asset", "stage")
    ui_color = "#d9f2d0"

    def __init__(
        self,
        *,
        asset: str,
        stage: str,
        platform: str | None = None,
        odc_conn_id: str = OdcHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.asset = asset
        self.stage = stage
        self.platform: MobilePlatform | None = None if platform is None else platform_of(platform)
        self.odc_conn_id = odc_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        hook = OdcHook(self.odc_conn_id)
        asset = hook.find_asset(self.asset)
        stage = hook.resolve_stage(self.stage)
        found = hook.suggest_mobile_versions(stage.key, asset.asset_key, self.platform)
        for platform, suggestion in found.items():
            self.log.info(
                "ODC suggests %s %s version %s (code %s) on %s.",
                asset.name,
                platform,
                suggestion.version_number,
                suggestion.version_code,
                stage.name,
            )
        return {platform: suggestion.as_dict() for platform, suggestion in found.items()}


class OdcNativeBuildOperator(OdcOperationOperator):
    """Build the Android or iOS app of a mobile app deployed on a stage; wait; return a safe summary.

    Before starting, ODC's validation is asked: a ``MissingConfiguration`` fails the task at once (with the
    fix: set the build configuration), and with ``only_if_needed`` a ``NativeBuildNotNeeded`` returns
    without building. The version is the one given, else ODC's suggestion. Deferrable like the release
    operators. Needs **Release management > Deploy assets** (start) and **Stage > View stage**.

    Returns ``{"operationKey", "environmentKey", "applicationKey", "mobilePlatform", "status", "revision",
    "mobileVersionNumber", "mobileVersionCode", "finishedDateTime", "links": [names], "artifact"}``: the
    names of the download links ODC gave, never the links (see the module docstring); ``artifact`` is
    ``{"path", "size", "sha256"}`` when ``download_to`` is set, else None.

    :param asset: the mobile app, by key or exact name. Templated.
    :param stage: stage key or name. Templated.
    :param platform: ``"Android"`` or ``"iOS"``.
    :param mobile_version_number: e.g. ``"1.4.0"``. Templated. Default: ODC's suggestion.
    :param mobile_version_code: a whole number. Templated. Default: ODC's suggestion.
    :param only_if_needed: skip the build when ODC says the current artifacts are up to date.
    :param download_to: where to stream the app binary (a local path, or a URL such as ``s3://bucket/app.aab``
        or ``file:///tmp/app.aab``, read as an ``ObjectStoragePath``). Templated.
    """

    kind = "native_build"
    template_fields: Sequence[str] = ("asset", "stage", "mobile_version_number", "mobile_version_code", "download_to")
    ui_color = "#d9f2d0"

    def __init__(
        self,
        *,
        asset: str,
        stage: str,
        platform: str,
        mobile_version_number: str | None = None,
        mobile_version_code: int | str | None = None,
        only_if_needed: bool = False,
        download_to: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.asset = asset
        self.stage = stage
        self.platform: MobilePlatform = platform_of(platform)
        self.mobile_version_number = mobile_version_number
        self.mobile_version_code = mobile_version_code
        self.only_if_needed = only_if_needed
        self.download_to = download_to

    def execute(self, context: Context) -> dict[str, Any]:  # type: ignore[override]
        hook = OdcHook(self.odc_conn_id)
        started_at = time.time()
        asset = hook.find_asset(self.asset)
        stage = hook.resolve_stage(self.stage)
        build_key, revision = deployed_build(hook, asset, stage)
        scope = native_builds.scope_params(stage.key, asset.asset_key)
        memory = TryMemory(context)
        build = self._earlier_try(hook, memory, scope) or self._start(hook, memory, asset, stage, build_key, revision)
        if isinstance(build, dict):
            return build  # ODC says no build is needed
        self.poll_params = scope
        ti = context["ti"]
        ti.xcom_push(key="operation_key", value=build.key)
        ti.xcom_push(key=SCOPE_XCOM_KEY, value=scope)
        ti.xcom_push(key=PORTAL_URL_XCOM_KEY, value=portal_url(hook.settings.origin, asset.asset_key, stage.key))
        if not self.wait_for_completion:
            return self._summary(build.summary(), scope, None)
        self.wait_for(hook, NATIVE_BUILD, build.key, started_at)
        return self._finished(hook, build.key, scope)

    def _earlier_try(self, hook: OdcHook, memory: TryMemory, scope: Mapping[str, str]) -> NativeBuild | None:
        """The native build an earlier try of this task started, when it is running or finished well (a
        retry attaches to it instead of starting another: ODC allows 5 build POSTs a minute)."""
        entry = memory.recall()
        key = entry.get("key") if entry else None
        if not isinstance(key, str):
            return None
        try:
            build = hook.get_native_build(key, scope["environmentKey"], scope["applicationKey"])
        except OdcError as exc:
            self.log.warning("The native build %s of an earlier try could not be read (%s); starting anew.", key, exc)
            return None
        if build.platform != self.platform or build.status in NATIVE_BUILD.failure:
            return None
        self.log.info("Attaching to native build %s (%s), started by an earlier try.", key, build.status)
        return build

    def _start(
        self, hook: OdcHook, memory: TryMemory, asset: Asset, stage: Stage, build_key: str, revision: int
    ) -> NativeBuild | dict[str, Any]:
        """Validate, then start a build; or, with ``only_if_needed`` and nothing to build, the summary."""
        verdict = hook.validate_native_build(stage.key, asset.asset_key, build_key, revision, self.platform)
        verdict_of_platform = verdict.get(self.platform)
        self.log.info(
            "ODC's validation of the %s build of %s on %s: %s.",
            self.platform,
            asset.name,
            stage.name,
            verdict_of_platform,
        )
        if verdict_of_platform == MISSING_CONFIGURATION:
            raise OdcError(
                f"ODC says the {self.platform} build configuration of {asset.name} on stage {stage.name} is "
                "incomplete (MissingConfiguration). Set it in the ODC Portal or with "
                "OdcMobileBuildConfigurationOperator, then build again.",
                conn_id=self.odc_conn_id,
            )
        scope = native_builds.scope_params(stage.key, asset.asset_key)
        if verdict_of_platform == BUILD_NOT_NEEDED and self.only_if_needed:
            self.log.info(
                "Not building: ODC says the %s artifacts of revision %s are up to date.", self.platform, revision
            )
            return {"status": BUILD_NOT_NEEDED, **scope, "mobilePlatform": self.platform, "revision": revision}
        number, code = self._version(hook, stage.key, asset.asset_key)
        posted_at = time.time()
        memory.note(posted_at=posted_at)
        build = hook.start_native_build(
            stage.key, asset.asset_key, build_key, revision, self.platform, version_number=number, version_code=code
        )
        memory.note(posted_at=posted_at, key=build.key)
        self.log.info(
            "ODC native build %s started: %s %s revision %s, version %s (code %s), on %s.",
            build.key,
            asset.name,
            self.platform,
            revision,
            number,
            code,
            stage.name,
        )
        return build

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:  # type: ignore[override]
        ti = context["ti"]
        scope = ti.xcom_pull(task_ids=ti.task_id, key=SCOPE_XCOM_KEY, map_indexes=ti.map_index)
        if not isinstance(scope, Mapping) or native_builds.NATIVE_BUILD.missing_params(scope):
            raise OdcError(
                f"The stage and app of ODC native build {event.get('operation_key')} were not found in XCom."
            )
        self.poll_params = dict(scope)
        key = super().execute_complete(context, event)
        return self._finished(OdcHook(self.odc_conn_id), key, self.poll_params)

    def _version(self, hook: OdcHook, stage_key: str, app_key: str) -> tuple[str | None, int | None]:
        number = self.mobile_version_number or None
        code = _version_code(self.mobile_version_code)
        if number is None or code is None:
            suggestion = hook.suggest_mobile_versions(stage_key, app_key, self.platform).get(self.platform)
            if suggestion is not None:
                number = number or suggestion.version_number
                code = code if code is not None else suggestion.version_code
        return number, code

    def _finished(self, hook: OdcHook, key: str, scope: Mapping[str, str]) -> dict[str, Any]:
        build = hook.get_native_build(key, scope["environmentKey"], scope["applicationKey"])  # links masked
        self.log.info(
            "ODC native build %s is %s; it has the links %s.",
            key,
            build.status,
            ", ".join(sorted(build.links)) or "(none)",
        )
        artifact = None
        if self.download_to:
            target = self.download_to
            sent = hook.download_native_artifact(build, BINARY_LINK, target)
            artifact = {"path": str(target), "size": sent.size, "sha256": sent.sha256}
            self.log.info(
                "Saved the %s app binary to %s (%d bytes, sha256 %s).", self.platform, target, sent.size, sent.sha256
            )
        return self._summary(build.summary(), scope, artifact)

    @staticmethod
    def _summary(summary: dict[str, Any], scope: Mapping[str, str], artifact: dict[str, Any] | None) -> dict[str, Any]:
        return {**summary, "environmentKey": scope["environmentKey"], "artifact": artifact}


class OdcMobileBuildConfigurationOperator(BaseOperator):
    """Read, and optionally change, an app's Android or iOS build configuration on a stage.

    ``settings`` holds the plain fields (``appIdentifier``, ``buildType``, ``mabsVersion``,
    ``mobileFramework``, ``keystoreName``/``certificateName``/``provisioningProfileName``); the signing
    material comes from the Airflow connection ``signing_conn_id``, whose extras name ODC's fields
    (Android: ``keystore`` (base64), ``keystorePassword``, ``alias``, ``aliasPassword``; iOS:
    ``certificate`` (base64), ``certificatePassword``, ``provisioningProfile`` (base64)) and whose password,
    if set, is the keystore or certificate password. Only the given fields change. Returns the
    configuration after the change: the plain settings and, for each secret, only when it was last set.
    Needs **Configuration management > View configurations** and, to change it, **Edit asset
    configurations**.

    :param asset: the mobile app, by key or exact name. Templated.
    :param stage: stage key or name. Templated.
    :param platform: ``"Android"`` or ``"iOS"``.
    :param settings: plain fields to set (None clears one). Templated. A signing field here is refused.
    :param signing_conn_id: an Airflow connection holding the signing material to set.
    """

    template_fields: Sequence[str] = ("asset", "stage", "settings")
    operator_extra_links = (OdcPortalLink(),)
    ui_color = "#d9f2d0"

    def __init__(
        self,
        *,
        asset: str,
        stage: str,
        platform: str,
        settings: Mapping[str, str | None] | None = None,
        signing_conn_id: str | None = None,
        odc_conn_id: str = OdcHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.platform: MobilePlatform = platform_of(platform)
        secret = sorted(set(settings or {}) & SECRET_FIELDS[self.platform])
        if secret:
            raise ValueError(
                f"settings would render {', '.join(secret)} in Airflow's UI: put signing material in the "
                "connection named by signing_conn_id instead."
            )
        unknown = native_builds.unknown_fields(self.platform, settings or {})
        if unknown:
            raise ValueError(
                f"unknown {self.platform} build configuration field(s) {', '.join(unknown)}; use "
                f"{', '.join(CONFIGURATION_FIELDS[self.platform])}."
            )
        self.asset = asset
        self.stage = stage
        self.settings = dict(settings or {})
        self.signing_conn_id = signing_conn_id
        self.odc_conn_id = odc_conn_id

    def _signing_values(self) -> dict[str, str]:
        """The signing fields of ``signing_conn_id``, each masked as soon as it is read."""
        if not self.signing_conn_id:
            return {}
        connection = BaseHook.get_connection(self.signing_conn_id)
        extras = dict(connection.extra_dejson or {})
        allowed = SECRET_FIELDS[self.platform]
        unknown = sorted(set(extras) - allowed)
        if unknown:
            raise OdcConfigError(
                f"The signing connection '{self.signing_conn_id}' has extras ODC's {self.platform} configuration "
                f"does not know: {', '.join(unknown)}. Use {', '.join(sorted(allowed))}.",
                conn_id=self.odc_conn_id,
            )
        values = {name: str(value) for name, value in extras.items() if value not in (None, "")}
        if connection.password:
            values.setdefault(
                "keystorePassword" if self.platform == "Android" else "certificatePassword", connection.password
            )
        for value in values.values():
            mask_secret(value)
        return values

    def execute(self, context: Context) -> dict[str, Any]:
        hook = OdcHook(self.odc_conn_id)
        asset = hook.find_asset(self.asset)
        stage = hook.resolve_stage(self.stage)
        context["ti"].xcom_push(
            key=PORTAL_URL_XCOM_KEY, value=portal_url(hook.settings.origin, asset.asset_key, stage.key)
        )
        changes: dict[str, str | None] = {**self.settings, **self._signing_values()}
        if changes:
            hook.patch_mobile_configuration(stage.key, asset.asset_key, self.platform, changes)
            self.log.info(
                "Changed the %s build configuration of %s on %s: %s.",
                self.platform,
                asset.name,
                stage.name,
                ", ".join(sorted(changes)),  # names only: the values may be secrets
            )
        return hook.get_mobile_configuration(stage.key, asset.asset_key, self.platform).as_dict()
