"""HTTP routes of stage configurations (Asset Configurations API; state in ``configurations``) and of asset
deletion (Asset Repository API). Bodies are pydantic models named and declared like the official schemas
(``validation.OdcBody``); every route goes through the app's guard first."""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Query, Response
from pydantic import BaseModel, StrictStr

from airflow_provider_odc.emulator.state import EmulatorState
from airflow_provider_odc.emulator.validation import Int32, OdcBody
from airflow_provider_odc.emulator.web import Guard, boolean, make_endpoint, parsed

CONFIGS = "/api/asset-configurations/v1/environments/{environmentKey}"
APP_CONFIG_ROUTE = f"{CONFIGS}/applications/{{applicationKey}}/revisions/{{baselineRevision}}/configurations"
AGENT_CONFIG_ROUTE = f"{CONFIGS}/agents/{{agentKey}}/revisions/{{baselineRevision}}/configurations"
APP_PATCH_ROUTE = f"{CONFIGS}/applications/{{applicationKey}}/configurations"
AGENT_PATCH_ROUTE = f"{CONFIGS}/agents/{{agentKey}}/configurations"
STAGE_SYSTEM_ROUTE = f"{CONFIGS}/default-system-configurations"
ASSET_ROUTE = "/api/asset-repository/v1/assets/{assetKey}"
ERROR_CODE = "OS-ASCFG-40001"


class GenericConfigPatch(OdcBody):
    key: StrictStr | None = None
    value: StrictStr | None = None
    filename: StrictStr | None = None


class TimerPatch(OdcBody):
    key: StrictStr | None = None
    configs: list[GenericConfigPatch] | None = None


class IntegrationPatch(OdcBody):
    key: StrictStr | None = None
    configs: list[GenericConfigPatch] | None = None


class LibraryConfigPatch(OdcBody):
    key: StrictStr | None = None
    revision: Int32 | None = None
    systemConfigurations: list[GenericConfigPatch] | None = None
    settings: list[GenericConfigPatch] | None = None
    integrations: list[IntegrationPatch] | None = None


class AgentConfigPatch(OdcBody):
    key: StrictStr | None = None
    revisionBaseline: Int32 | None = None
    settings: list[GenericConfigPatch] | None = None
    timers: list[TimerPatch] | None = None
    integrations: list[IntegrationPatch] | None = None
    libraries: list[LibraryConfigPatch] | None = None


class ApplicationConfigPatch(AgentConfigPatch):
    systemConfigurations: list[GenericConfigPatch] | None = None


class EnvironmentConfigPatch(OdcBody):
    systemConfigurations: list[GenericConfigPatch] | None = None


class ConfigQuery(BaseModel):
    """``fields`` (comma-separated parts; others are ignored) and ``showBinaryValues``."""

    fields: str | None = None
    showBinaryValues: Annotated[bool | None, parsed(boolean("showBinaryValues"))] = None

    def parts(self) -> set[str] | None:
        if not self.fields:
            return None
        return {part.strip() for part in self.fields.split(",") if part.strip()}


def register_configuration_routes(app: FastAPI, state: EmulatorState, guard: Guard) -> None:
    """Add the routes (before the app's catch-all ``/api`` route)."""

    endpoint = make_endpoint(app, guard)
    configurations = state.configurations

    @endpoint("GET", APP_CONFIG_ROUTE, ERROR_CODE)
    async def get_app_configuration(
        environmentKey: str, applicationKey: str, baselineRevision: str, query: Annotated[ConfigQuery, Query()]
    ) -> Response:
        body = configurations.asset_configuration(
            "applications", environmentKey, applicationKey, baselineRevision, query.parts()
        )
        return _json(body)

    @endpoint("GET", AGENT_CONFIG_ROUTE, ERROR_CODE)
    async def get_agent_configuration(
        environmentKey: str, agentKey: str, baselineRevision: str, query: Annotated[ConfigQuery, Query()]
    ) -> Response:
        return _json(
            configurations.asset_configuration("agents", environmentKey, agentKey, baselineRevision, query.parts())
        )

    @endpoint("PATCH", APP_PATCH_ROUTE, ERROR_CODE)
    async def patch_app_configuration(
        environmentKey: str, applicationKey: str, body: ApplicationConfigPatch
    ) -> Response:
        configurations.patch_asset("applications", environmentKey, applicationKey, body.model_dump(mode="json"))
        return Response(status_code=204)

    @endpoint("PATCH", AGENT_PATCH_ROUTE, ERROR_CODE)
    async def patch_agent_configuration(environmentKey: str, agentKey: str, body: AgentConfigPatch) -> Response:
        configurations.patch_asset("agents", environmentKey, agentKey, body.model_dump(mode="json"))
        return Response(status_code=204)

    @endpoint("GET", STAGE_SYSTEM_ROUTE, ERROR_CODE)
    async def get_stage_system_configurations(environmentKey: str) -> Response:
        return _json(configurations.default_system_configurations(environmentKey))

    @endpoint("PATCH", STAGE_SYSTEM_ROUTE, ERROR_CODE)
    async def patch_stage_system_configurations(environmentKey: str, body: EnvironmentConfigPatch) -> Response:
        items = [item.model_dump(mode="json") for item in body.systemConfigurations or []]
        configurations.patch_default_system_configurations(environmentKey, items)
        return Response(status_code=204)

    @endpoint("DELETE", ASSET_ROUTE, "OS-APPS-40001")
    async def delete_asset(assetKey: str) -> Response:
        state.release.delete_asset(assetKey)
        return Response(status_code=204)


def _json(body: object) -> Response:
    from fastapi.responses import JSONResponse

    return JSONResponse(body)
