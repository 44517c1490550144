"""Promotion reports on OdcHook: the stage matrix (asset x stage -> revision) from ``deployed-assets``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from airflow_provider_odc.api.portfolios import pick_stage
from airflow_provider_odc.api.promotion import Promotion, StageMatrix, plan_promotions
from airflow_provider_odc.exceptions import OdcError

if TYPE_CHECKING:
    from airflow_provider_odc.api.portfolios import DeployedAsset, Stage


class _ReadsPortfolio(Protocol):
    """What the mixin needs of ``OdcHook``."""

    odc_conn_id: str

    def list_stages(self) -> list[Stage]: ...

    def list_deployed_assets(
        self,
        *,
        stage_key: str | None = None,
        asset_key: str | None = None,
        asset_types: list[str] | None = None,
        page_size: int | None = None,
    ) -> list[DeployedAsset]: ...


class PromotionHookMixin:
    """``OdcHook`` methods that read which revision runs where (Portfolio API: View stage)."""

    def stage_matrix(self: _ReadsPortfolio, *, asset_types: list[str] | None = None) -> StageMatrix:
        """Every deployed asset's revision on every stage the API client can see: one stage list and the
        ``deployed-assets`` pages (100 a page)."""
        stages = self.list_stages()
        deployed = self.list_deployed_assets(asset_types=asset_types, page_size=100)
        return StageMatrix.build(stages, deployed)

    def promotion_plan(
        self: _ReadsPortfolio,
        source_stage: str,
        target_stage: str,
        *,
        include_missing: bool = False,
        asset_types: list[str] | None = None,
    ) -> tuple[Stage, Stage, list[Promotion]]:
        """The stages (by key or name) and every asset whose revision on the source is newer than on the
        target (see ``api.promotion.plan_promotions``)."""
        stages = self.list_stages()
        source = pick_stage(stages, source_stage)
        target = pick_stage(stages, target_stage)
        if source.key == target.key:
            raise OdcError(
                f"Promotion from {source.name} to itself: pass two different stages.", conn_id=self.odc_conn_id
            )
        deployed = self.list_deployed_assets(asset_types=asset_types, page_size=100)
        matrix = StageMatrix.build(stages, deployed)
        return source, target, plan_promotions(matrix, source, target, include_missing=include_missing)
