"""Promotion reports and promotion: the stage matrix, and the plan of deploys that brings a stage level
with another.

``OdcStageMatrixOperator`` returns the matrix (asset x stage -> revision) as a compact report.
``OdcPromotionPlanOperator`` returns one ``OdcDeployOperator`` keyword set per asset whose revision on
the source stage is newer than on the target, to map::

    plan = OdcPromotionPlanOperator(task_id="plan", source_stage="QA", target_stage="Production")
    OdcDeployOperator.partial(task_id="promote").expand_kwargs(plan.output)

Each mapped deploy POSTs once and deploys the build that runs on the source stage; the client keeps
within ODC's limits (10 deployment POSTs a minute: a 429 is waited out, never a second POST of an
answered one). ``plan_only=True`` (the dry run) logs the plan and returns no deploys (the mapped task expands to none).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_odc.exceptions import OdcError
from airflow_provider_odc.hooks.odc import OdcHook

if TYPE_CHECKING:
    from airflow.sdk import Context


class OdcStageMatrixOperator(BaseOperator):
    """Which revision of every deployed asset runs on every stage; returns ``StageMatrix.report()``
    (``{"stages": [...], "assets": [{"key", "name", "type", "revisions": {stage name: revision}}]}``) and
    logs it as a table.

    :param asset_types: only these types (e.g. ``["WebApplication"]``). Templated.
    """

    template_fields: Sequence[str] = ("asset_types",)
    ui_color = "#c9e4ff"

    def __init__(
        self,
        *,
        asset_types: list[str] | None = None,
        odc_conn_id: str = OdcHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.asset_types = asset_types
        self.odc_conn_id = odc_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        matrix = OdcHook(self.odc_conn_id).stage_matrix(asset_types=self.asset_types)
        self.log.info("Stage matrix (%d deployed assets):\n%s", len(matrix.rows), matrix.table())
        return matrix.report()


class OdcPromotionPlanOperator(BaseOperator):
    """Every asset whose revision on ``source_stage`` is newer than on ``target_stage``: returns a list of
    ``OdcDeployOperator`` keyword arguments (``asset``, ``stage``, ``revision``, ``build_key``) for
    ``expand_kwargs``, and logs the plan.

    :param source_stage: stage key or name, e.g. ``"QA"``. Templated.
    :param target_stage: stage key or name, e.g. ``"Production"``. Templated.
    :param include_missing: also promote assets the target stage does not run yet. Default False.
    :param asset_types: only these types. Templated.
    :param plan_only: the dry run: log the plan, return no deploys. Default False. Templated
        (``"{{ params.dry_run }}"``
        renders ``"True"``/``"False"``, read as such).
    :param reuse_source_build: deploy the build that runs on the source stage (default; the target gets
        what was tested). False: each deploy uses the revision's finished Release build (set
        ``build_if_missing=True`` in ``partial`` to build one), e.g. when the source stage runs a build
        that was not made for deployment elsewhere.
    :param max_promotions: refuse (fail the task) when the plan has more deploys than this; None: no bound.
    """

    template_fields: Sequence[str] = ("source_stage", "target_stage", "asset_types", "plan_only")
    ui_color = "#c9e4ff"

    def __init__(
        self,
        *,
        source_stage: str,
        target_stage: str,
        include_missing: bool = False,
        asset_types: list[str] | None = None,
        plan_only: bool | str = False,
        max_promotions: int | None = None,
        reuse_source_build: bool = True,
        odc_conn_id: str = OdcHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if max_promotions is not None and max_promotions < 0:
            raise ValueError(f"max_promotions must be >= 0 or None, not {max_promotions!r}.")
        self.source_stage = source_stage
        self.target_stage = target_stage
        self.include_missing = include_missing
        self.asset_types = asset_types
        self.plan_only = plan_only
        self.max_promotions = max_promotions
        self.reuse_source_build = reuse_source_build
        self.odc_conn_id = odc_conn_id

    def execute(self, context: Context) -> list[dict[str, Any]]:
        source, target, plan = OdcHook(self.odc_conn_id).promotion_plan(
            self.source_stage, self.target_stage, include_missing=self.include_missing, asset_types=self.asset_types
        )
        lines = "\n".join(f"  {promotion.describe(source, target)}" for promotion in plan) or "  (nothing)"
        self.log.info("Promotion %s -> %s: %d assets.\n%s", source.name, target.name, len(plan), lines)
        if self.max_promotions is not None and len(plan) > self.max_promotions:
            raise OdcError(
                f"The promotion {source.name} -> {target.name} would deploy {len(plan)} assets, more than "
                f"max_promotions={self.max_promotions}. Raise max_promotions to allow it, or narrow asset_types.",
                conn_id=self.odc_conn_id,
            )
        if truthy(self.plan_only):
            self.log.info("Dry run: no deploys planned.")
            return []
        return [promotion.deploy_kwargs(target, reuse_source_build=self.reuse_source_build) for promotion in plan]


def truthy(value: bool | str) -> bool:
    """A flag that may arrive rendered from a template (``"True"``, ``"false"``)."""
    if isinstance(value, str):
        return value.strip().casefold() in ("true", "1", "yes")
    return bool(value)
