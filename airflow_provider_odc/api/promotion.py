"""Promotion reports from the Portfolio API's ``deployed-assets``: the stage matrix and what to promote.

The stage matrix says, for every asset deployed somewhere, which revision runs on which stage (asset x
stage -> revision). A promotion plan lists every asset whose revision on a source stage is newer than on
a target stage, with the build that runs on the source stage, as keyword arguments of
``OdcDeployOperator`` (``OdcDeployOperator.partial(...).expand_kwargs(plan)``): deploying the very build
that was tested upstream, not a rebuild. No I/O here; ``OdcHook.stage_matrix`` reads the data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from airflow_provider_odc.api._parse import same_key
from airflow_provider_odc.api.portfolios import DeployedAsset, Deployment, Stage


@dataclass(frozen=True)
class MatrixRow:
    """One asset: its name (as its deployments report it), type and deployment on each stage it runs on."""

    asset_key: str
    name: str
    type: str | None
    deployments: dict[str, Deployment]  # stage key -> what runs there

    def on(self, stage: Stage) -> Deployment | None:
        return next((d for key, d in self.deployments.items() if same_key(key, stage.key)), None)

    def revision(self, stage: Stage) -> int | None:
        deployment = self.on(stage)
        return deployment.revision if deployment else None


@dataclass(frozen=True)
class StageMatrix:
    """Asset x stage -> revision, stages in ODC's order (Development first), assets by name."""

    stages: tuple[Stage, ...]
    rows: tuple[MatrixRow, ...]

    @classmethod
    def build(cls, stages: Iterable[Stage], deployed: Iterable[DeployedAsset]) -> StageMatrix:
        rows = []
        for asset in deployed:
            named = next((d.name for d in asset.deployments if d.name), None)
            by_stage = {d.stage_key: d for d in asset.deployments if d.stage_key}
            rows.append(MatrixRow(asset.key, named or asset.key, asset.type, by_stage))
        ordered = tuple(sorted(stages, key=lambda stage: stage.order))
        return cls(ordered, tuple(sorted(rows, key=lambda row: (row.name.casefold(), row.asset_key))))

    def labels(self) -> list[str]:
        """Each stage's name, or ``name (key)`` where portfolios share a name."""
        names = [stage.name for stage in self.stages]
        return [s.name if names.count(s.name) == 1 else f"{s.name} ({s.key})" for s in self.stages]

    def report(self) -> dict[str, Any]:
        """A compact, JSON-ready report (XCom): the stages, and each asset's revision per stage label
        (``labels``; ``None``: not deployed there). Holds no URLs or user ids."""
        labels = self.labels()
        return {
            "stages": [
                {"key": stage.key, "name": stage.name, "label": label, "purpose": stage.purpose}
                for stage, label in zip(self.stages, labels, strict=True)
            ],
            "assets": [
                {
                    "key": row.asset_key,
                    "name": row.name,
                    "type": row.type,
                    "revisions": {label: row.revision(stage) for stage, label in zip(self.stages, labels, strict=True)},
                }
                for row in self.rows
            ],
        }

    def table(self) -> str:
        """The matrix as a fixed-width text table, for the task log."""
        width = max([5, *(len(row.name) for row in self.rows)])
        head = "Asset".ljust(width) + "".join(f"  {label:>12}" for label in self.labels())
        lines = [head]
        for row in self.rows:
            cells = "".join(f"  {_cell(row.revision(stage)):>12}" for stage in self.stages)
            lines.append(row.name.ljust(width) + cells)
        return "\n".join(lines)


def _cell(revision: int | None) -> str:
    return "-" if revision is None else str(revision)


@dataclass(frozen=True)
class Promotion:
    """One asset to promote: the revision and build running on the source stage, and what the target runs."""

    asset_key: str
    name: str
    revision: int
    build_key: str | None
    target_revision: int | None

    def deploy_kwargs(self, target: Stage, *, reuse_source_build: bool = True) -> dict[str, Any]:
        """Keyword arguments of one ``OdcDeployOperator`` (mapped with ``expand_kwargs``); without
        ``reuse_source_build`` the deploy picks the revision's finished Release build itself."""
        kwargs: dict[str, Any] = {"asset": self.asset_key, "stage": target.key, "revision": self.revision}
        if self.build_key and reuse_source_build:
            kwargs["build_key"] = self.build_key
        return kwargs

    def describe(self, source: Stage, target: Stage) -> str:
        now = "not deployed" if self.target_revision is None else f"revision {self.target_revision}"
        return f"{self.name}: {source.name} revision {self.revision} -> {target.name} (now {now})"


def plan_promotions(
    matrix: StageMatrix, source: Stage, target: Stage, *, include_missing: bool = False
) -> list[Promotion]:
    """Every asset whose revision on ``source`` is newer than on ``target`` (and, with ``include_missing``,
    every asset on ``source`` that ``target`` does not run yet), in the matrix's order."""
    plan = []
    for row in matrix.rows:
        upstream = row.on(source)
        if upstream is None or upstream.revision is None:
            continue
        current = row.revision(target)
        if current is None and not include_missing:
            continue
        if current is not None and current >= upstream.revision:
            continue
        plan.append(Promotion(row.asset_key, row.name, upstream.revision, upstream.build_key, current))
    return plan
