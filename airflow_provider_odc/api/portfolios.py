"""Portfolio API v2 (``/api/portfolios/v2``): stages (ODC's API calls them environments) and deployed assets.

ODC orders stages by ``order`` (values like 100, 1000, not 1, 2, 3); ``purpose`` says which is
Development, NonProduction or Production. Which revision of which asset runs on which stage is the
``/deployed-assets`` list (the Deployments API has no such read).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow_provider_odc.api._parse import as_object, integer, objects, required_str, same_key, text
from airflow_provider_odc.exceptions import OdcError

ENVIRONMENTS = "/api/portfolios/v2/environments"
DEPLOYED_ASSETS = "/api/portfolios/v2/deployed-assets"
#: ``EnvironmentPurpose``.
PURPOSES = ("Development", "NonProduction", "Production")


@dataclass(frozen=True)
class Stage:
    """``Environment``: a stage, the fields the provider reads."""

    key: str
    name: str
    order: int
    purpose: str | None
    portfolio_key: str | None

    @classmethod
    def from_json(cls, body: Any) -> Stage:
        item = as_object(body, "a stage")
        return cls(
            key=required_str(item, "key", "a stage"),
            name=text(item, "name") or "",
            order=integer(item, "order") or 0,
            purpose=text(item, "purpose"),
            portfolio_key=text(item, "portfolioKey"),
        )


def stages_of(body: Any) -> list[Stage]:
    """The stages of an ``EnvironmentListResponse`` (a null ``results`` is none), in ODC's stage order."""
    results = body.get("results") if isinstance(body, dict) else None
    return sorted((Stage.from_json(item) for item in objects(results)), key=lambda stage: stage.order)


def pick_stage(stages: list[Stage], stage: str) -> Stage:
    """A stage by key (any case or braces) or by name (case-insensitive), e.g. ``"Production"``.

    A name that several portfolios use for a stage is ambiguous: the error lists them, to pass a key.
    """
    by_key = [s for s in stages if same_key(s.key, stage)]
    matches = by_key or [s for s in stages if s.name.casefold() == stage.casefold()]
    if len(matches) == 1:
        return matches[0]
    if matches:
        candidates = "; ".join(f"{s.name} (key {s.key}, portfolio {s.portfolio_key})" for s in matches)
        raise OdcError(f"ODC stage name {stage!r} is ambiguous: {candidates}. Pass the stage key instead.")
    names = ", ".join(s.name for s in sorted(stages, key=lambda s: s.order))
    raise OdcError(f"ODC stage {stage!r} not found; the API client can see: {names or 'no stages'}.")


def deployed_assets_params(
    *, stage_key: str | None = None, asset_key: str | None = None, asset_types: list[str] | None = None
) -> dict[str, Any]:
    """The filters of ``GET /deployed-assets`` the provider offers."""
    params: dict[str, Any] = {}
    if stage_key:
        params["environmentKey"] = stage_key
    if asset_key:
        params["key"] = asset_key
    if asset_types:
        params["type"] = list(asset_types)
    return params


@dataclass(frozen=True)
class Deployment:
    """``Deployment``: one stage where an asset runs, and what runs there."""

    stage_key: str | None
    revision: int | None
    build_key: str | None
    deployment_key: str | None
    deployment_date_time: str | None
    name: str | None
    tag: str | None
    url: str | None

    @classmethod
    def from_json(cls, item: Any) -> Deployment:
        body = as_object(item, "a deployment")
        return cls(
            stage_key=text(body, "environmentKey"),
            revision=integer(body, "revision"),
            build_key=text(body, "buildKey"),
            deployment_key=text(body, "deploymentKey"),
            deployment_date_time=text(body, "deploymentDateTime"),
            name=text(body, "name"),
            tag=text(body, "tag"),
            url=text(body, "url"),
        )


@dataclass(frozen=True)
class DeployedAsset:
    """``DeployedAsset``: an asset and the stages it is deployed to (a null ``deployments`` is none)."""

    key: str
    type: str | None
    is_built_in: bool
    deployments: tuple[Deployment, ...]

    @classmethod
    def from_json(cls, item: Any) -> DeployedAsset:
        body = as_object(item, "a deployed asset")
        return cls(
            key=required_str(body, "key", "a deployed asset"),
            type=text(body, "type"),
            is_built_in=body.get("isBuiltIn") is True,
            deployments=tuple(Deployment.from_json(d) for d in objects(body.get("deployments"))),
        )

    def on_stage(self, stage_key: str) -> Deployment | None:
        """Its deployment on one stage, if it runs there."""
        return next((d for d in self.deployments if same_key(d.stage_key, stage_key)), None)
