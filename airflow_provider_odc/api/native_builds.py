"""Native Mobile Builds API (``/api/native-mobile-builds/v1``): native app build operations.

ODC scopes a native build's status and messages by stage and app: both calls need ``environmentKey``
and ``applicationKey`` as query parameters.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from airflow_provider_odc.api._parse import as_object, integer, required_str, text
from airflow_provider_odc.api.long_running import kind

MobilePlatform = Literal["Android", "iOS"]

NATIVE_BUILDS = "/api/native-mobile-builds/v1/build-operations"

NATIVE_BUILD = kind(
    "native_build",
    NATIVE_BUILDS + "/{key}",
    {"Finished"},
    {"Error"},
    messages_path=NATIVE_BUILDS + "/{key}/log-messages",
    required_params=("environmentKey", "applicationKey"),
)

# -- starting native builds, version suggestions, validation -----------------------------------------

VERSION_SUGGESTIONS = NATIVE_BUILDS + "/version-suggestions"
VALIDATION = NATIVE_BUILDS + "/native-build-validation"
PLATFORMS: tuple[MobilePlatform, ...] = ("Android", "iOS")
#: ``NativeBuildValidationResult``: only ``MissingConfiguration`` stops a build.
BUILD_NEEDED, BUILD_NOT_NEEDED, MISSING_CONFIGURATION = (
    "NativeBuildNeeded",
    "NativeBuildNotNeeded",
    "MissingConfiguration",
)
#: The fields of ``BuildOperationResult`` that are pre-signed links: credentials, never logged or pushed.
LINK_FIELDS = (
    "appBinaryDownloadUrl",
    "appSourceDownloadUrl",
    "mobileBuildLogUrl",
    "appShieldMappingUrl",
    "appDeploymentFileDownloadUrl",
)


def platform_of(value: Any) -> MobilePlatform:
    """``"Android"`` or ``"iOS"`` (any case); anything else is a ValueError that lists them."""
    for platform in PLATFORMS:
        if isinstance(value, str) and value.casefold() == platform.casefold():
            return platform
    raise ValueError(f"mobile platform must be 'Android' or 'iOS', not {value!r}.")


def scope_params(stage_key: str, app_key: str) -> dict[str, str]:
    """The query that scopes a native build's status and messages (``NATIVE_BUILD.required_params``)."""
    return {"environmentKey": stage_key, "applicationKey": app_key}


def suggestions_body(stage_key: str, app_key: str, platform: MobilePlatform | None) -> dict[str, Any]:
    """``VersionSuggestionsRequest`` (no platform: both)."""
    body: dict[str, Any] = {"environmentKey": stage_key, "applicationKey": app_key}
    if platform is not None:
        body["mobilePlatform"] = platform
    return body


def validation_body(
    stage_key: str, app_key: str, build_key: str, revision: int, platform: MobilePlatform | None
) -> dict[str, Any]:
    """``BuildOperationValidationRequest`` (no platform: both)."""
    body: dict[str, Any] = {
        "environmentKey": stage_key,
        "applicationKey": app_key,
        "buildKey": build_key,
        "revision": revision,
    }
    if platform is not None:
        body["mobilePlatform"] = platform
    return body


def start_body(
    stage_key: str,
    app_key: str,
    build_key: str,
    revision: int,
    platform: MobilePlatform,
    *,
    version_number: str | None = None,
    version_code: int | None = None,
) -> dict[str, Any]:
    """``BuildOperationRequest``: the app's build deployed on the stage, and the version to give it."""
    body: dict[str, Any] = {
        "buildKey": build_key,
        "revision": revision,
        "mobilePlatform": platform,
        "environmentKey": stage_key,
        "applicationKey": app_key,
    }
    if version_number is not None:
        body["mobileVersionNumber"] = version_number
    if version_code is not None:
        body["mobileVersionCode"] = version_code
    return body


@dataclass(frozen=True)
class VersionSuggestion:
    """``NativeBuildVersions``: what ODC suggests for the next build of one platform."""

    platform: MobilePlatform
    version_number: str | None
    version_code: int | None

    def as_dict(self) -> dict[str, Any]:
        return {"mobileVersionNumber": self.version_number, "mobileVersionCode": self.version_code}


def suggestions_of(body: Any) -> dict[MobilePlatform, VersionSuggestion]:
    """The per-platform suggestions of a version-suggestions answer (a platform ODC left out is absent)."""
    found = as_object(body, "version suggestions")
    return {
        platform: VersionSuggestion(platform, text(item, "mobileVersionNumber"), integer(item, "mobileVersionCode"))
        for platform in PLATFORMS
        if isinstance(item := found.get(platform), Mapping)
    }


def validation_of(body: Any) -> dict[MobilePlatform, str]:
    """``platformResults`` of a validation answer: platform -> ``NativeBuildValidationResult``."""
    results = as_object(body, "a native build validation").get("platformResults")
    if not isinstance(results, Mapping):
        return {}
    return {platform: value for platform in PLATFORMS if isinstance(value := results.get(platform), str)}


@dataclass(frozen=True)
class NativeBuild:
    """``BuildOperationResult``: the fields the provider reads. ``links`` holds the pre-signed download
    links ODC gives a finished build; they are credentials, so ``repr`` leaves them out."""

    key: str
    application_key: str | None
    build_key: str | None
    revision: int | None
    platform: str | None
    status: str | None
    version_number: str | None
    version_code: int | None
    started_date_time: str | None
    finished_date_time: str | None
    links: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, body: Any) -> NativeBuild:
        item = as_object(body, "a native build operation")
        return cls(
            key=required_str(item, "key", "a native build operation"),
            application_key=text(item, "applicationKey"),
            build_key=text(item, "buildKey"),
            revision=integer(item, "revision"),
            platform=text(item, "mobilePlatform"),
            status=text(item, "status"),
            version_number=text(item, "mobileVersionNumber"),
            version_code=integer(item, "mobileVersionCode"),
            started_date_time=text(item, "startedDateTime"),
            finished_date_time=text(item, "finishedDateTime"),
            links={name: value for name in LINK_FIELDS if (value := text(item, name))},
        )

    def summary(self) -> dict[str, Any]:
        """What is safe to show and to push to XCom: everything but the links (only which ones exist)."""
        return {
            "operationKey": self.key,
            "applicationKey": self.application_key,
            "mobilePlatform": self.platform,
            "status": self.status,
            "revision": self.revision,
            "mobileVersionNumber": self.version_number,
            "mobileVersionCode": self.version_code,
            "finishedDateTime": self.finished_date_time,
            "links": sorted(self.links),
        }


# -- build configurations (signing material is secret) -------------------------------------------------

CONFIGURATION_FIELDS: dict[MobilePlatform, tuple[str, ...]] = {
    "Android": (
        "keystore",
        "keystoreName",
        "keystorePassword",
        "alias",
        "aliasPassword",
        "appIdentifier",
        "buildType",
        "mabsVersion",
        "mobileFramework",
    ),
    "iOS": (
        "certificate",
        "certificateName",
        "certificatePassword",
        "provisioningProfile",
        "provisioningProfileName",
        "appIdentifier",
        "buildType",
        "mabsVersion",
        "mobileFramework",
    ),
}
#: Signing material: the keystore and certificate files (base64), their passwords, the key alias (ODC
#: keeps it as a ``SecretConfig``) and the provisioning profile file. Never rendered, logged or pushed.
SECRET_FIELDS: dict[MobilePlatform, frozenset[str]] = {
    "Android": frozenset({"keystore", "keystorePassword", "alias", "aliasPassword"}),
    "iOS": frozenset({"certificate", "certificatePassword", "provisioningProfile"}),
}


def configuration_path(stage_key: str, app_key: str, platform: MobilePlatform) -> str:
    segment = "android" if platform == "Android" else "ios"
    return f"/api/native-mobile-builds/v1/environments/{stage_key}/applications/{app_key}/configurations/{segment}"


def unknown_fields(platform: MobilePlatform, names: Iterable[str]) -> list[str]:
    return sorted(set(names) - set(CONFIGURATION_FIELDS[platform]))


def configuration_body(platform: MobilePlatform, values: Mapping[str, str | None]) -> dict[str, Any]:
    """``{Android,Ios}BuildConfigurationRequest``: only the given fields (ODC leaves the others as they are);
    a None value clears a field."""
    unknown = unknown_fields(platform, values)
    if unknown:
        allowed = ", ".join(CONFIGURATION_FIELDS[platform])
        raise ValueError(f"unknown {platform} build configuration field(s) {', '.join(unknown)}; use {allowed}.")
    return {name: {"value": value} for name, value in values.items()}


@dataclass(frozen=True)
class MobileConfiguration:
    """A platform's build configuration on a stage: the plain settings' values, and for each secret only
    whether it is set and when it last changed (ODC never returns a secret; if it did, it is dropped)."""

    platform: MobilePlatform
    settings: Mapping[str, str | None]
    secrets_updated: Mapping[str, str | None]

    @classmethod
    def from_json(cls, platform: MobilePlatform, body: Any) -> MobileConfiguration:
        item = as_object(body, f"an {platform} build configuration")
        settings: dict[str, str | None] = {}
        secrets: dict[str, str | None] = {}
        for name in CONFIGURATION_FIELDS[platform]:
            config = item.get(name)
            config = config if isinstance(config, Mapping) else {}
            if name in SECRET_FIELDS[platform] or config.get("isSecret") is True:
                if config.get("lastUpdateDate") or config.get("value"):
                    secrets[name] = text(config, "lastUpdateDate")
                continue
            settings[name] = text(config, "value")
        return cls(platform, settings, secrets)

    def as_dict(self) -> dict[str, Any]:
        return {
            "mobilePlatform": self.platform,
            "settings": dict(self.settings),
            "secretsSet": dict(self.secrets_updated),
        }
