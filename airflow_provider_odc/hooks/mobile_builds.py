"""OdcHook's typed calls of the Native Mobile Build API: version suggestions, validation, native builds of
an app on a stage, their artifact links, and the Android/iOS build configurations.

Two kinds of credential pass through here besides the token: the pre-signed links of a finished build
(masked the moment a build body is read) and the signing material of a configuration (masked before the
PATCH is sent). Neither is ever logged; ``NativeBuild`` and ``MobileConfiguration`` keep them out of
their ``repr`` and their ``summary``/``as_dict``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_odc.api import native_builds
from airflow_provider_odc.api.native_builds import (
    SECRET_FIELDS,
    MobileConfiguration,
    MobilePlatform,
    NativeBuild,
    VersionSuggestion,
)
from airflow_provider_odc.compat import mask_secret
from airflow_provider_odc.exceptions import OdcError
from airflow_provider_odc.hooks._mixin import HookCore  # at run time too: autodoc resolves the annotations
from airflow_provider_odc.presigned import Transferred, download, hold


class MobileBuildsHookMixin:
    """Mixed into ``OdcHook``; what it uses of the hook is ``HookCore``."""

    def suggest_mobile_versions(
        self: HookCore, stage_key: str, app_key: str, platform: MobilePlatform | None = None
    ) -> dict[MobilePlatform, VersionSuggestion]:
        """ODC's version number and code for the next native build of an app on a stage (no platform: both)."""
        body = native_builds.suggestions_body(stage_key, app_key, platform)
        return native_builds.suggestions_of(self.request_json("POST", native_builds.VERSION_SUGGESTIONS, json=body))

    def validate_native_build(
        self: HookCore,
        stage_key: str,
        app_key: str,
        build_key: str,
        revision: int,
        platform: MobilePlatform | None = None,
    ) -> dict[MobilePlatform, str]:
        """Per platform: ``NativeBuildNeeded``, ``NativeBuildNotNeeded`` or ``MissingConfiguration``."""
        body = native_builds.validation_body(stage_key, app_key, build_key, revision, platform)
        return native_builds.validation_of(self.request_json("POST", native_builds.VALIDATION, json=body))

    def start_native_build(
        self: HookCore,
        stage_key: str,
        app_key: str,
        build_key: str,
        revision: int,
        platform: MobilePlatform,
        *,
        version_number: str | None = None,
        version_code: int | None = None,
    ) -> NativeBuild:
        """Start a native build of the app's build on the stage. The POST is sent once (the request core
        never re-sends a POST ODC may have processed; only a 429 is retried)."""
        body = native_builds.start_body(
            stage_key,
            app_key,
            build_key,
            revision,
            platform,
            version_number=version_number,
            version_code=version_code,
        )
        return _masked(NativeBuild.from_json(self.request_json("POST", native_builds.NATIVE_BUILDS, json=body)))

    def get_native_build(self: HookCore, key: str, stage_key: str, app_key: str) -> NativeBuild:
        """A native build operation; its pre-signed ``links`` are masked before this returns."""
        params = native_builds.scope_params(stage_key, app_key)
        return _masked(
            NativeBuild.from_json(self.request_json("GET", native_builds.NATIVE_BUILD.path(key), params=params))
        )

    def download_native_artifact(self: HookCore, build: NativeBuild, link: str, target: Any) -> Transferred:
        """Stream one of a finished build's artifacts (``appBinaryDownloadUrl`` ...) to a local path or an
        ``ObjectStoragePath``, without our token; returns its size and SHA-256."""
        url = build.links.get(link)
        if url is None:
            have = ", ".join(sorted(build.links)) or "none"
            raise OdcError(
                f"ODC native build {build.key} has no {link} (links it has: {have}).", conn_id=self.odc_conn_id
            )
        settings = self.settings
        return download(
            url,
            target,
            conn_id=self.odc_conn_id,
            timeout=settings.timeout,
            verify=settings.verify,
            retry=self.retry_policy,
        )

    def get_mobile_configuration(
        self: HookCore, stage_key: str, app_key: str, platform: MobilePlatform
    ) -> MobileConfiguration:
        """The platform's build configuration of an app on a stage (secrets: only whether they are set)."""
        path = native_builds.configuration_path(stage_key, app_key, platform)
        return MobileConfiguration.from_json(platform, self.request_json("GET", path))

    def patch_mobile_configuration(
        self: HookCore, stage_key: str, app_key: str, platform: MobilePlatform, values: Mapping[str, str | None]
    ) -> None:
        """Change only the given fields of a build configuration; signing material among them is masked
        first. Unknown field names are a ValueError naming the allowed ones (nothing is sent)."""
        for name, value in values.items():
            if name in SECRET_FIELDS[platform] and value:
                mask_secret(value)
        body = native_builds.configuration_body(platform, values)
        self.request("PATCH", native_builds.configuration_path(stage_key, app_key, platform), json=body)


def _masked(build: NativeBuild) -> NativeBuild:
    for url in build.links.values():
        hold(url)
    return build
