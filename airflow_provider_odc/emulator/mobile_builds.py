"""The emulator's native mobile build settings: Android/iOS build configurations per app and stage, version
suggestions and build validation (the builds themselves are ``long_running`` jobs).

Every mobile app starts with a complete configuration on every stage (signing material set, never returned:
a secret's ``value`` is always null, as the spec's ``SecretConfig`` says). A PATCH changes only the fields
it names; clearing a required one makes validation answer ``MissingConfiguration`` and a build started
anyway end ``Error`` saying which field is missing. Version suggestions follow the app's native builds on
that stage: the next version code, and the newest version number with its last part raised (``0.1.0``
for the first). These rules are the emulator's assumption; ODC documents only the shapes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from airflow_provider_odc.emulator.long_running import LongRunningJobs, _canonical
from airflow_provider_odc.emulator.release import ReleaseLifecycle
from airflow_provider_odc.emulator.runtime import Runtime
from airflow_provider_odc.emulator.seed import format_timestamp
from airflow_provider_odc.emulator.validation import ApiError

PLATFORMS = ("Android", "iOS")
COMMON = ("appIdentifier", "buildType", "mabsVersion", "mobileFramework")
FIELDS = {
    "Android": ("keystore", "keystoreName", "keystorePassword", "alias", "aliasPassword", *COMMON),
    "iOS": (
        "certificate",
        "certificateName",
        "certificatePassword",
        "provisioningProfile",
        "provisioningProfileName",
        *COMMON,
    ),
}
SECRETS = {
    "Android": {"keystore", "keystorePassword", "alias", "aliasPassword"},
    "iOS": {"certificate", "certificatePassword"},
}
REQUIRED = {
    "Android": ("keystore", "keystorePassword", "alias", "aliasPassword", "appIdentifier"),
    "iOS": ("certificate", "certificatePassword", "provisioningProfile", "appIdentifier"),
}
NOT_FOUND = "The specified environment or application does not exist, or there is no mobile configuration deployed."


def _defaults(platform: str, app_key: str) -> dict[str, str | None]:
    identifier = f"com.example.app{app_key[:8]}"
    common = {"appIdentifier": identifier, "mabsVersion": "11.0", "mobileFramework": "Capacitor"}
    if platform == "Android":
        return {
            **common,
            "keystore": "emulated-keystore",
            "keystoreName": "release.keystore",
            "keystorePassword": "emulated-keystore-password",
            "alias": "release",
            "aliasPassword": "emulated-alias-password",
            "buildType": "Release",
        }
    return {
        **common,
        "certificate": "emulated-certificate",
        "certificateName": "distribution.p12",
        "certificatePassword": "emulated-certificate-password",
        "provisioningProfile": "emulated-profile",
        "provisioningProfileName": "AppStore.mobileprovision",
        "buildType": "AppStore",
    }


@dataclass
class _Configs:
    values: dict[tuple[str, str, str], dict[str, str | None]] = field(default_factory=dict)
    updated: dict[tuple[str, str, str], dict[str, float]] = field(default_factory=dict)


def _next_number(number: str | None) -> str:
    parts = (number or "").split(".")
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        return "0.1.0"
    return f"{parts[0]}.{parts[1]}.{int(parts[2]) + 1}"


class MobileSettings:
    """Configurations, suggestions and validation of one emulator (shares its lock and clock)."""

    def __init__(self, runtime: Runtime, release: ReleaseLifecycle, jobs: LongRunningJobs) -> None:
        self._runtime = runtime
        self._lock = runtime.lock
        self._release = release
        self._jobs = jobs
        self._configs = _Configs()

    def reset(self) -> None:
        with self._lock:
            self._configs = _Configs()

    def _scope_locked(self, environment_key: str, application_key: str) -> tuple[str, str]:
        environment = self._release.environment_locked(environment_key or "")
        application = self._release.asset_locked(application_key or "")
        if environment is None or application is None or application["assetType"] != "MobileApplication":
            raise ApiError(404, NOT_FOUND, "OS-NABS-40401")
        return environment["key"], application["assetKey"]

    def _values_locked(self, scope: tuple[str, str], platform: str) -> dict[str, str | None]:
        key = (scope[0], scope[1], platform)
        if key not in self._configs.values:
            self._configs.values[key] = _defaults(platform, scope[1])
            self._configs.updated[key] = dict.fromkeys(self._configs.values[key], 0.0)
        return self._configs.values[key]

    # Configurations -----------------------------------------------------------------------------------

    def configuration(self, environment_key: str, application_key: str, platform: str) -> dict[str, Any]:
        """``{Android,Ios}BuildConfigurationResult``."""
        with self._lock:
            scope = self._scope_locked(environment_key, application_key)
            values = self._values_locked(scope, platform)
            updated = self._configs.updated[(scope[0], scope[1], platform)]
            body: dict[str, Any] = {}
            for name in FIELDS[platform]:
                secret = name in SECRETS[platform]
                value = values.get(name)
                body[name] = {
                    "isSecret": secret,
                    "lastUpdateDate": format_timestamp(updated[name]) if value is not None else None,
                    "value": None if secret else value,
                    "dataType": "Text",
                }
            return body

    def patch(self, environment_key: str, application_key: str, platform: str, changes: dict[str, Any]) -> None:
        """Change the given fields (``{"field": {"value": ...}}``); the others stay."""
        with self._lock:
            scope = self._scope_locked(environment_key, application_key)
            values = self._values_locked(scope, platform)
            updated = self._configs.updated[(scope[0], scope[1], platform)]
            now = self._runtime.now_locked()
            for name, change in changes.items():
                if change is None:
                    continue
                values[name] = change.get("value")
                updated[name] = now

    def missing_locked(self, scope: tuple[str, str], platform: str) -> list[str]:
        values = self._values_locked(scope, platform)
        return [name for name in REQUIRED[platform] if not values.get(name)]

    def build_problems(self, environment_key: str, application_key: str, platform: str) -> tuple[str, ...]:
        """Why a native build of the app on the stage would fail (nothing for an unknown app: 404 later)."""
        with self._lock:
            try:
                scope = self._scope_locked(environment_key, application_key)
            except ApiError:
                return ()
            missing = self.missing_locked(scope, platform)
        if not missing:
            return ()
        return (f"The {platform} build configuration is missing {', '.join(missing)}.",)

    # Suggestions and validation -----------------------------------------------------------------------

    def suggestions(self, environment_key: str, application_key: str, platform: str | None) -> dict[str, Any]:
        """``{"Android": NativeBuildVersions, "iOS": ...}`` for the asked platform (or both)."""
        with self._lock:
            scope = self._scope_locked(environment_key, application_key)
            builds = self._jobs.native_builds_locked(*scope)
            answer: dict[str, Any] = {}
            for name in (platform,) if platform else PLATFORMS:
                mine = [job.details for job in builds if job.details["mobilePlatform"] == name]
                codes = [d["mobileVersionCode"] for d in mine if isinstance(d.get("mobileVersionCode"), int)]
                numbers = [d["mobileVersionNumber"] for d in mine if d.get("mobileVersionNumber")]
                answer[name] = {
                    "mobileVersionNumber": _next_number(numbers[-1] if numbers else None),
                    "mobileVersionCode": max(codes, default=0) + 1,
                    "mobilePlatform": name,
                }
            return answer

    def validation(self, values: dict[str, Any]) -> dict[str, Any]:
        """``BuildOperationValidationResponse``: missing configuration, or whether a finished native build of
        that build already exists on the stage."""
        with self._lock:
            scope = self._scope_locked(values.get("environmentKey", ""), values.get("applicationKey", ""))
            application = self._release.asset_locked(scope[1]) or {}
            if not 1 <= int(values.get("revision", 0)) <= int(application.get("revision", 0)):
                raise ApiError(404, f"Revision {values.get('revision')} was not found.", "OS-NABS-40402")
            now = self._runtime.now_locked()
            build_key = _canonical(str(values.get("buildKey")))
            builds = self._jobs.native_builds_locked(*scope)
            results: dict[str, str] = {}
            for name in (values["mobilePlatform"],) if values.get("mobilePlatform") else PLATFORMS:
                if self.missing_locked(scope, name):
                    results[name] = "MissingConfiguration"
                    continue
                done = any(
                    job.details["mobilePlatform"] == name
                    and _canonical(str(job.details["buildKey"])) == build_key
                    and job.finished(now)
                    and not job.failed(now)
                    for job in builds
                )
                results[name] = "NativeBuildNotNeeded" if done else "NativeBuildNeeded"
            return {"platformResults": results}
