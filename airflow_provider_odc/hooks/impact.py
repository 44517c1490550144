"""Impact analyses and asset deletion on ``OdcHook`` (Dependency Management and Asset Repository APIs).

An analysis is started by a POST answering ``{"analysisKey"}`` and polled like every long-running operation
(``dependency_management.DEPLOYMENT_ANALYSIS`` / ``DELETION_ANALYSIS``). ODC lists no analyses, so a start
whose answer was lost cannot be found again; starting another is harmless (an analysis changes nothing).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_odc.api import assets
from airflow_provider_odc.api import dependency_management as dependencies
from airflow_provider_odc.exceptions import OdcApiError, OdcError

if TYPE_CHECKING:
    from airflow_provider_odc.hooks._mixin import HookCore


def _analysis_key(body: Any, what: str) -> str:
    key = body.get(dependencies.START_KEY_FIELD) if isinstance(body, dict) else None
    if not isinstance(key, str) or not key:
        raise OdcError(f"ODC started {what} but answered without its '{dependencies.START_KEY_FIELD}'.")
    return key


class OdcImpactMixin:
    """Typed calls for impact gates and clean-ups. Permissions: Release management > Deploy assets (deployment
    analysis), Asset management > Delete (deletion analysis and deleting an asset)."""

    def start_deployment_analysis(self: HookCore, asset_key: str, revision: int, stage_key: str) -> str:
        """Ask ODC what deploying ``revision`` of an asset to a stage would break; returns the analysis key."""
        body = dependencies.deployment_analysis_body(asset_key, revision, stage_key)
        return _analysis_key(self.request_json("POST", dependencies.DEPLOYMENT_ANALYSES, json=body), "an analysis")

    def start_deletion_analysis(self: HookCore, asset_key: str) -> str:
        """Ask ODC what deleting an asset would break (its consumers, stages, domains); returns the key."""
        body = dependencies.deletion_analysis_body(asset_key)
        return _analysis_key(self.request_json("POST", dependencies.DELETION_ANALYSES, json=body), "an analysis")

    def delete_asset(self: HookCore, asset_key: str) -> bool:
        """Delete an asset (irreversible: ODC removes it from every stage with its runtime data). Returns False
        when ODC no longer knows it (404): a retried DELETE whose first answer was lost, or deleted meanwhile."""
        try:
            self.request("DELETE", assets.asset_path(asset_key))
        except OdcApiError as exc:
            if exc.status == 404:
                self.log.info("ODC asset %s was already gone (404).", asset_key)
                return False
            raise
        return True
