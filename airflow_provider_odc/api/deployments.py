"""Deployments API (``/api/deployments/v1``): deployment operations (Deploy, ApplyConfigs, Undeploy) and publishes.

Each is one asset on one stage per call, started by a POST that answers with the operation's ``key``
and polled until ``Finished`` or ``FinishedWithError`` (singular, unlike builds). Only Release builds
can be deployed. Which revision runs where is the Portfolio API's (``portfolios.DEPLOYED_ASSETS``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from airflow_provider_odc.api._parse import as_object, integer, required_str, text
from airflow_provider_odc.api.long_running import kind

DEPLOYMENTS = "/api/deployments/v1/deployment-operations"
PUBLISHES = "/api/deployments/v1/publish-operations"
#: The field of the start POSTs' answers that holds the new operation's key.
START_KEY_FIELD = "key"
#: ``DeploymentOperationsType``.
DeploymentOperationType = Literal["Deploy", "Undeploy", "ApplyConfigs"]
DEPLOYMENT_OPERATIONS: tuple[DeploymentOperationType, ...] = ("Deploy", "Undeploy", "ApplyConfigs")
PUBLISH = "Publish"  # ``PublishOperationsType``'s one value
#: ``Status``.
RUNNING, FINISHED, FINISHED_WITH_ERROR = "Running", "Finished", "FinishedWithError"

DEPLOYMENT = kind(
    "deployment",
    DEPLOYMENTS + "/{key}",
    {FINISHED},
    {FINISHED_WITH_ERROR},
    messages_path=DEPLOYMENTS + "/{key}/messages",
)
PUBLISH_KIND = kind(
    "publish",
    PUBLISHES + "/{key}",
    {FINISHED},
    {FINISHED_WITH_ERROR},
    messages_path=PUBLISHES + "/{key}/messages",
)


def deployment_body(
    operation: DeploymentOperationType,
    asset_key: str,
    stage_key: str,
    *,
    revision: int | None = None,
    build_key: str | None = None,
) -> dict[str, Any]:
    """``DeploymentOperationRequest``; ``revision`` and ``build_key`` only when given (Undeploy has none,
    ApplyConfigs may leave the revision to ODC)."""
    body: dict[str, Any] = {"operation": operation, "assetKey": asset_key}
    if revision is not None:
        body["revision"] = revision
    if build_key is not None:
        body["buildKey"] = build_key
    body["environmentKey"] = stage_key
    return body


def publish_body(asset_key: str, revision: int, stage_key: str | None = None) -> dict[str, Any]:
    """``PublishOperationRequest``; the stage is optional (ODC: for the hotfix scenario)."""
    body: dict[str, Any] = {"operation": PUBLISH, "assetKey": asset_key, "revision": revision}
    if stage_key:
        body["environmentKey"] = stage_key
    return body


def list_params(
    asset_key: str | None = None,
    *,
    stage_key: str | None = None,
    revision: int | None = None,
    operation: DeploymentOperationType | None = None,
    created_since: str | None = None,
    sort: str | None = None,
) -> dict[str, Any]:
    """The filters of ``GET /deployment-operations`` and ``GET /publish-operations`` (publishes take no
    ``operation``). ``created_since``: an ISO date-time; ``sort``: e.g. ``-CreatedAt``, newest first."""
    params: dict[str, Any] = {}
    if asset_key:
        params["assetKey"] = asset_key
    if created_since:
        params["createdDateSince"] = created_since
    if sort:
        params["sort"] = sort
    if stage_key:
        params["environmentKey"] = stage_key
    if revision is not None:
        params["revision"] = revision
    if operation:
        params["operations"] = operation
    return params


@dataclass(frozen=True)
class DeploymentOperation:
    """``DeploymentOperationResponse`` (and ``PublishOperationResponse``, whose one ``revision`` becomes
    ``revisions``): the fields the provider reads."""

    key: str
    status: str | None
    operation: str | None
    asset_key: str | None
    revisions: tuple[int, ...]
    build_key: str | None
    portfolio_key: str | None
    started_date_time: str | None
    finished_date_time: str | None

    @classmethod
    def from_json(cls, body: Any) -> DeploymentOperation:
        item = as_object(body, "a deployment or publish operation")
        revisions = item.get("revisions")
        single = integer(item, "revision")
        return cls(
            key=required_str(item, "key", "a deployment or publish operation"),
            status=text(item, "status"),
            operation=text(item, "operation"),
            asset_key=text(item, "assetKey"),
            revisions=tuple(r for r in revisions if isinstance(r, int) and not isinstance(r, bool))
            if isinstance(revisions, list)
            else (() if single is None else (single,)),
            build_key=text(item, "buildKey"),
            portfolio_key=text(item, "portfolioKey"),
            started_date_time=text(item, "startedDateTime"),
            finished_date_time=text(item, "finishedDateTime"),
        )


#: The list of each kind that has one: where a shared poller reads many operations at once.
LIST_ENDPOINTS = {DEPLOYMENT.name: DEPLOYMENTS, PUBLISH_KIND.name: PUBLISHES}
#: The two terminal statuses a list scan asks for, one filtered list each (``status`` takes one value).
TERMINAL_STATUSES = (FINISHED, FINISHED_WITH_ERROR)
#: The page size a scan asks for: the emulator's (and our reading of ODC's) default, well under the 1,000 cap.
SCAN_PAGE_SIZE = 100
#: Newest finished first: a scan stops paging once it reaches what it has already seen.
NEWEST_FINISHED_FIRST = "-FinishedAt"


def format_date_time(epoch: float) -> str:
    """An instant as the lists' ``createdDateSince``/``createdDateTo`` take it (RFC 3339, UTC, ms)."""
    moment = datetime.fromtimestamp(epoch, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_date_time(value: Any) -> float | None:
    """Epoch seconds of an RFC 3339 date-time from ODC (``Z`` or an offset; naive is UTC); None if it is not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def finished_scan_params(
    status: str,
    *,
    created_since: float | None = None,
    stage_key: str | None = None,
    asset_key: str | None = None,
    offset: int | None = None,
    page_size: int = SCAN_PAGE_SIZE,
) -> dict[str, Any]:
    """One page of "operations that ended with ``status``, newest end first" (both lists take these filters)."""
    params: dict[str, Any] = {"status": status, "sort": NEWEST_FINISHED_FIRST, "limit": page_size}
    if created_since is not None:
        params["createdDateSince"] = format_date_time(created_since)
    if stage_key:
        params["environmentKey"] = stage_key
    if asset_key:
        params["assetKey"] = asset_key
    if offset:
        params["offset"] = offset
    return params
