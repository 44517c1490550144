"""Asset Repository API (``/api/asset-repository/v1``): assets, their revisions and tags.

Lists and single reads return ``AssetRevisionV1``, an asset at one revision (the latest, unless a
revision is asked for). Revisions are numbers; ``"latest"`` and ``"highest-tag"`` name the two that
ODC can look up by alias (the highest-tag one is a 404 when the asset was never tagged).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

from airflow_provider_odc.api._parse import as_object, integer, required_str, text
from airflow_provider_odc.exceptions import OdcError

ASSETS = "/api/asset-repository/v1/assets"
RevisionAlias = Literal["latest", "highest-tag"]
REVISION_ALIASES: tuple[RevisionAlias, ...] = ("latest", "highest-tag")
#: ``limit`` of the name search that resolves an asset name (ODC allows 1 to 1000).
NAME_SEARCH_PAGE_SIZE = 100


def asset_path(asset_key: str) -> str:
    """One asset at its latest revision; the key in ODC's canonical (lower-case, braceless) form."""
    return f"{ASSETS}/{uuid.UUID(asset_key)}"


def alias_revision_path(asset_key: str, alias: RevisionAlias) -> str:
    return f"{ASSETS}/{asset_key}/{alias}-revision"


def revision_path(asset_key: str, revision: int) -> str:
    return f"{ASSETS}/{asset_key}/revisions/{revision}"


def list_params(
    *, name_contains: str | None = None, asset_types: list[str] | None = None, sort: str | None = None
) -> dict[str, Any]:
    """The filters of ``GET /assets`` the provider uses (``sort``: ``name`` or ``createdAt``, ``-`` descending)."""
    params: dict[str, Any] = {}
    if name_contains is not None:
        params["nameContains"] = name_contains
    if asset_types:
        params["assetTypes"] = list(asset_types)  # an array: one assetTypes= per type
    if sort:
        params["sort"] = sort
    return params


def tag_body(tag: str, release_notes: str | None = None) -> dict[str, Any]:
    """``AssetVersionPatchRequest`` that tags a revision (``MAJOR.MINOR.PATCH``), with optional release notes."""
    body: dict[str, Any] = {"tag": tag}
    if release_notes is not None:
        body["releaseNotes"] = release_notes
    return body


def revision_number(revision: int | str) -> int | RevisionAlias:
    """A revision as the caller wrote it: a number (``3`` or ``"3"``) or one of ``REVISION_ALIASES``."""
    if isinstance(revision, int) or str(revision).isdigit():
        return int(revision)
    for alias in REVISION_ALIASES:
        if revision == alias:
            return alias
    raise OdcError(f"Revision {revision!r} is not a number, 'latest' or 'highest-tag'.")


@dataclass(frozen=True)
class Asset:
    """``AssetRevisionV1``: an asset at one revision, the fields the provider reads."""

    asset_key: str
    name: str
    revision: int | None
    asset_type: str | None
    tag: str | None
    portfolio_key: str | None

    @classmethod
    def from_json(cls, body: Any) -> Asset:
        item = as_object(body, "an asset")
        return cls(
            asset_key=required_str(item, "assetKey", "an asset"),
            name=text(item, "name") or "",
            revision=integer(item, "revision"),
            asset_type=text(item, "assetType"),
            tag=text(item, "tag"),
            portfolio_key=text(item, "portfolioKey"),
        )


def named(assets: list[Asset], name: str) -> Asset:
    """The one asset of a name search whose name is exactly ``name``; none or several is an OdcError."""
    matches = [asset for asset in assets if asset.name == name]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise OdcError(f"ODC asset named {name!r} not found (names are matched exactly; or pass the asset key).")
    raise OdcError(f"{len(matches)} ODC assets are named {name!r}; pass the asset key instead.")
