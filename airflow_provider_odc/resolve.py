"""Turn what DAG authors write (a stage name, an app name, "latest") into the keys ODC's APIs take."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from airflow_provider_odc.exceptions import OdcApiError, OdcError

if TYPE_CHECKING:
    from airflow_provider_odc.hooks.odc import OdcHook

ASSETS = "/api/asset-repository/v1/assets"
ENVIRONMENTS = "/api/portfolios/v2/environments"
BUILDS = "/api/builds/v1/build-operations"
REVISION_ALIASES = ("latest", "highest-tag")


def is_key(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def same_key(a: Any, b: Any) -> bool:
    """Whether two ODC keys are the same GUID, whatever their case or braces (``str`` compare otherwise)."""
    if not isinstance(a, str) or not isinstance(b, str):
        return False
    try:
        return uuid.UUID(a) == uuid.UUID(b)
    except ValueError:
        return a == b


def resolve_stage(hook: OdcHook, stage: str) -> dict[str, Any]:
    """A stage (ODC API: environment) by key (any case) or by name, e.g. ``"Production"`` (case-insensitive).

    A name that several portfolios use for a stage is ambiguous: the error lists them, to pass a key.
    """
    body = hook.request_json("GET", ENVIRONMENTS)
    stages = [s for s in (body.get("results") if isinstance(body, dict) else None) or [] if isinstance(s, dict)]
    by_key = [s for s in stages if same_key(s.get("key"), stage)]
    matches = by_key or [s for s in stages if str(s.get("name") or "").casefold() == stage.casefold()]
    if len(matches) == 1:
        return dict(matches[0])
    if matches:
        candidates = "; ".join(
            f"{s.get('name')} (key {s.get('key')}, portfolio {s.get('portfolioKey')})" for s in matches
        )
        raise OdcError(f"ODC stage name {stage!r} is ambiguous: {candidates}. Pass the stage key instead.")
    names = ", ".join(str(s.get("name")) for s in sorted(stages, key=lambda s: s.get("order") or 0))
    raise OdcError(f"ODC stage {stage!r} not found; the API client can see: {names or 'no stages'}.")


def resolve_asset(hook: OdcHook, asset: str) -> dict[str, Any]:
    """An asset by key (any case) or by exact name."""
    if is_key(asset):
        return dict(hook.request_json("GET", f"{ASSETS}/{uuid.UUID(asset)}"))
    matches = [a for a in hook.paginate(ASSETS, {"nameContains": asset}, page_size=100) if a.get("name") == asset]
    if len(matches) == 1:
        return dict(matches[0])
    if not matches:
        raise OdcError(f"ODC asset named {asset!r} not found (names are matched exactly; or pass the asset key).")
    raise OdcError(f"{len(matches)} ODC assets are named {asset!r}; pass the asset key instead.")


def resolve_revision(hook: OdcHook, asset_key: str, revision: int | str) -> int:
    """A revision number from a number, ``"latest"`` or ``"highest-tag"``."""
    if isinstance(revision, int) or str(revision).isdigit():
        return int(revision)
    if revision not in REVISION_ALIASES:
        raise OdcError(f"Revision {revision!r} is not a number, 'latest' or 'highest-tag'.")
    path = f"{ASSETS}/{asset_key}/{revision}-revision"
    try:
        return int(hook.request_json("GET", path)["revision"])
    except OdcApiError as exc:
        if revision == "highest-tag" and exc.status == 404:
            raise OdcError(f"ODC asset {asset_key} has no tagged revision; tag one first or pass a number.") from None
        raise


def release_builds(hook: OdcHook, asset_key: str, revision: int) -> list[dict[str, Any]]:
    """The Release builds of a revision, newest first (ODC deploys only Release builds)."""
    params = {"assetKey": asset_key, "assetRevision": revision, "byBuildType": "Release"}
    builds = [b for b in hook.paginate(BUILDS, params) if b.get("buildType") == "Release"]
    return sorted(builds, key=lambda b: str(b.get("finishedDateTime") or b.get("startedDateTime") or ""), reverse=True)


def reusable_build(hook: OdcHook, asset_key: str, revision: int, *, finished_only: bool) -> dict[str, Any] | None:
    """A Release build of the revision that finished (or, unless ``finished_only``, is still going)."""
    wanted = {"Finished"} if finished_only else {"Finished", "Running", "Pending"}
    for build in release_builds(hook, asset_key, revision):
        if build.get("status") in wanted:
            return build
    return None
