"""HTTP routes of the native mobile build settings (state in ``mobile_builds``): version suggestions, build
validation and the Android/iOS build configurations. Bodies are pydantic models named and declared like
the spec's request schemas; every route goes through the app's guard (faults, rate limits, bearer auth)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from pydantic import StrictStr

from airflow_provider_odc.emulator.state import EmulatorState
from airflow_provider_odc.emulator.validation import NOT_NULL, Guid, Int32, OdcBody, require
from airflow_provider_odc.emulator.web import Guard, make_endpoint

NATIVE = "/api/native-mobile-builds/v1"
VERSION_SUGGESTIONS_ROUTE = f"{NATIVE}/build-operations/version-suggestions"
VALIDATION_ROUTE = f"{NATIVE}/build-operations/native-build-validation"
CONFIGURATION_ROUTE = f"{NATIVE}/environments/{{environmentKey}}/applications/{{applicationKey}}/configurations"
Platform = Literal["Android", "iOS"]


class VersionSuggestionsRequest(OdcBody):
    environmentKey: Annotated[Guid | None, NOT_NULL] = None
    applicationKey: Annotated[Guid | None, NOT_NULL] = None
    mobilePlatform: Platform | None = None


class BuildOperationValidationRequest(OdcBody):
    environmentKey: Annotated[Guid | None, NOT_NULL] = None
    applicationKey: Annotated[Guid | None, NOT_NULL] = None
    buildKey: Annotated[Guid | None, NOT_NULL] = None
    revision: Annotated[Int32 | None, NOT_NULL] = None
    mobilePlatform: Platform | None = None


class StringPatchConfig(OdcBody):
    value: StrictStr | None = None


class AndroidBuildTypePatchConfig(OdcBody):
    value: Annotated[Literal["Bundle", "Debug", "Release"] | None, NOT_NULL] = None


class IosBuildTypePatchConfig(OdcBody):
    value: Annotated[Literal["Development", "AppStore", "Adhoc", "InHouse", "Simulator"] | None, NOT_NULL] = None


class MobileFrameworkNullablePatchConfig(OdcBody):
    value: Literal["Capacitor", "Cordova"] | None = None


class AndroidBuildConfigurationRequest(OdcBody):
    keystore: StringPatchConfig | None = None
    keystoreName: StringPatchConfig | None = None
    keystorePassword: StringPatchConfig | None = None
    alias: StringPatchConfig | None = None
    aliasPassword: StringPatchConfig | None = None
    appIdentifier: StringPatchConfig | None = None
    buildType: AndroidBuildTypePatchConfig | None = None
    mabsVersion: StringPatchConfig | None = None
    mobileFramework: MobileFrameworkNullablePatchConfig | None = None


class IosBuildConfigurationRequest(OdcBody):
    certificate: StringPatchConfig | None = None
    certificateName: StringPatchConfig | None = None
    certificatePassword: StringPatchConfig | None = None
    provisioningProfile: StringPatchConfig | None = None
    provisioningProfileName: StringPatchConfig | None = None
    appIdentifier: StringPatchConfig | None = None
    buildType: IosBuildTypePatchConfig | None = None
    mabsVersion: StringPatchConfig | None = None
    mobileFramework: MobileFrameworkNullablePatchConfig | None = None


def register_mobile_build_routes(app: FastAPI, state: EmulatorState, guard: Guard) -> None:
    """Add the routes (before the app's catch-all ``/api`` route)."""

    endpoint = make_endpoint(app, guard)

    @endpoint("POST", VERSION_SUGGESTIONS_ROUTE, "OS-NABS-40001")
    async def version_suggestions(body: VersionSuggestionsRequest) -> Response:
        values = body.present()
        require(values, ("environmentKey", "applicationKey"), "version suggestions", "OS-NABS-40001")
        answer = state.mobile.suggestions(
            values["environmentKey"], values["applicationKey"], values.get("mobilePlatform")
        )
        return JSONResponse(answer)

    @endpoint("POST", VALIDATION_ROUTE, "OS-NABS-40001")
    async def validate_native_build(body: BuildOperationValidationRequest) -> Response:
        values = body.present()
        fields = ("environmentKey", "applicationKey", "buildKey", "revision")
        require(values, fields, "a native build validation", "OS-NABS-40001")
        return JSONResponse(state.mobile.validation(values))

    @endpoint("GET", f"{CONFIGURATION_ROUTE}/android", "OS-NABS-40001")
    async def get_android(environmentKey: str, applicationKey: str) -> Response:
        return JSONResponse(state.mobile.configuration(environmentKey, applicationKey, "Android"))

    @endpoint("PATCH", f"{CONFIGURATION_ROUTE}/android", "OS-NABS-40001")
    async def patch_android(
        environmentKey: str, applicationKey: str, body: AndroidBuildConfigurationRequest
    ) -> Response:
        state.mobile.patch(environmentKey, applicationKey, "Android", body.present())
        return Response(status_code=204)

    @endpoint("GET", f"{CONFIGURATION_ROUTE}/ios", "OS-NABS-40001")
    async def get_ios(environmentKey: str, applicationKey: str) -> Response:
        return JSONResponse(state.mobile.configuration(environmentKey, applicationKey, "iOS"))

    @endpoint("PATCH", f"{CONFIGURATION_ROUTE}/ios", "OS-NABS-40001")
    async def patch_ios(environmentKey: str, applicationKey: str, body: IosBuildConfigurationRequest) -> Response:
        state.mobile.patch(environmentKey, applicationKey, "iOS", body.present())
        return Response(status_code=204)
