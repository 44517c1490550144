"""Deterministic seed data for the ODC emulator: one portfolio, three stages and N assets.

The data comes from a seeded RNG so that every emulator instance (in-process, CLI, another machine) serves
exactly the same assets in the same order; tests can then assert on names, keys and page contents.
The shapes follow the official specs: ``AssetRevisionV1`` (asset-repository v1) and ``Environment``
(portfolio v2).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

DEFAULT_SEED = 20240817

# Weighted so that applications dominate, as on a real tenant, while every common type still appears.
ASSET_TYPE_WEIGHTS: tuple[tuple[str, int], ...] = (
    ("WebApplication", 40),
    ("MobileApplication", 15),
    ("LowCodeLibrary", 15),
    ("Workflow", 10),
    ("ExtensionLibrary", 5),
    ("ExternalLibrary", 5),
    ("ExternalConnection", 4),
    ("Agent", 4),
    ("WidgetLibrary", 2),
)

NAME_STEMS: tuple[str, ...] = (
    "Sales Portal",
    "HR Onboarding",
    "Inventory Tracker",
    "Customer 360",
    "Field Service",
    "Expense Claims",
    "Supplier Hub",
    "Claims Intake",
    "Loan Origination",
    "Asset Registry",
    "Patient Check-in",
    "Order Desk",
)

COMMIT_MESSAGES: tuple[str | None, ...] = (
    None,
    "Fix validation on the summary screen",
    "Add export to CSV",
    "Bump dependencies",
    "Refactor data actions",
    "New dashboard widgets",
)

STAGES: tuple[tuple[str, str, int, str], ...] = (
    # (name, purpose, order, domain suffix). Orders 0/1000/2000 as seen on live tenants.
    ("Development", "Development", 0, "dev"),
    ("QA", "NonProduction", 1000, "qa"),
    ("Production", "Production", 2000, "prd"),
)

TENANT_SUBDOMAIN = "emulator"
REGION = "eu-central-1"


@dataclass(frozen=True)
class SeedData:
    """Immutable seed: JSON-ready dicts (camelCase keys) served as-is by the API."""

    portfolio_key: str
    environments: tuple[dict[str, Any], ...]
    assets: tuple[dict[str, Any], ...]


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _timestamp(moment: datetime) -> str:
    """RFC 3339 UTC with milliseconds, the way .NET services usually serialise ``DateTime``."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def build_seed(asset_count: int, seed: int = DEFAULT_SEED) -> SeedData:
    """Build the portfolio, its stages and ``asset_count`` assets (latest revision of each)."""
    if asset_count < 0:
        raise ValueError("asset_count must be >= 0")
    rng = random.Random(seed)
    portfolio_key = _uuid(rng)
    environments = tuple(
        {
            "key": _uuid(rng),
            "name": name,
            "builtinDomain": f"{TENANT_SUBDOMAIN}-{suffix}.outsystems.app",
            "defaultDomain": f"{TENANT_SUBDOMAIN}-{suffix}.outsystems.app",
            "purpose": purpose,
            "order": order,
            "region": REGION,
            "hosting": "oscloud",
            "status": "Ready",
            "portfolioKey": portfolio_key,
        }
        for name, purpose, order, suffix in STAGES
    )
    users = [_uuid(rng) for _ in range(4)]
    types = [name for name, _ in ASSET_TYPE_WEIGHTS]
    weights = [weight for _, weight in ASSET_TYPE_WEIGHTS]
    width = max(3, len(str(asset_count)))
    created = datetime(2024, 1, 8, 9, 0, tzinfo=timezone.utc)
    # Spread creation over about two years whatever the asset count.
    max_step_minutes = max(2, 2 * 2 * 365 * 24 * 60 // max(asset_count, 1))
    assets = []
    for index in range(1, asset_count + 1):
        stem = NAME_STEMS[rng.randrange(len(NAME_STEMS))]
        # The first assets cycle through every type so that even a small seed has all of them.
        asset_type = types[index - 1] if index <= len(types) else rng.choices(types, weights)[0]
        # Strictly increasing creation times: the default (unsorted) order is also createdAt order.
        created += timedelta(minutes=rng.randint(1, max_step_minutes), milliseconds=rng.randint(0, 999))
        author = users[rng.randrange(len(users))]
        tagged = rng.random() < 0.4
        assets.append(
            {
                "assetKey": _uuid(rng),
                "portfolioKey": portfolio_key,
                "revision": rng.randint(1, 60),
                "name": f"{stem} {index:0{width}d}",
                "description": f"{stem} ({asset_type}) seeded by the ODC emulator.",
                "isExternal": False,
                "tag": f"{rng.randint(0, 3)}.{rng.randint(0, 12)}.{rng.randint(0, 9)}" if tagged else None,
                "modelDigest": _uuid(rng),
                "clonedFromTemplateKey": None,
                "assetType": asset_type,
                "createdBy": author,
                "createdAt": _timestamp(created),
                "commitMessage": COMMIT_MESSAGES[rng.randrange(len(COMMIT_MESSAGES))],
                "taggedBy": author if tagged else None,
                "taggedAt": _timestamp(created) if tagged else None,
            }
        )
    return SeedData(portfolio_key=portfolio_key, environments=environments, assets=tuple(assets))


SORT_KEYS: dict[str, Any] = {
    "name": lambda asset: asset["name"].casefold(),
    "createdAt": lambda asset: asset["createdAt"],
}


def parse_sort(sort: str) -> list[tuple[str, bool]]:
    """Parse ``name``, ``-createdAt`` or a comma-joined list into ``[(field, descending), ...]``."""
    parsed = []
    for part in sort.split(","):
        part = part.strip()
        field = part.removeprefix("-")
        if field not in SORT_KEYS:
            raise ValueError(f"Invalid sort field {part!r}. Allowed: name, createdAt (prefix '-' to descend).")
        parsed.append((field, part.startswith("-")))
    return parsed


def query_assets(
    assets: tuple[dict[str, Any], ...],
    *,
    name_contains: str | None = None,
    name_or_description_contains: str | None = None,
    asset_types: list[str] | None = None,
    asset_keys: list[str] | None = None,
    portfolio_keys: list[str] | None = None,
    is_external: bool | None = None,
    sort: list[tuple[str, bool]] | None = None,
) -> list[dict[str, Any]]:
    """Apply the ``GET /assets`` filters (case-insensitive, as the real service) and the sort order."""
    selected = list(assets)
    if name_contains:
        needle = name_contains.casefold()
        selected = [a for a in selected if needle in a["name"].casefold()]
    if name_or_description_contains:
        needle = name_or_description_contains.casefold()
        selected = [
            a for a in selected if needle in a["name"].casefold() or needle in (a["description"] or "").casefold()
        ]
    for field, wanted in (("assetType", asset_types), ("assetKey", asset_keys), ("portfolioKey", portfolio_keys)):
        if wanted:
            allowed = {value.casefold() for value in wanted}
            selected = [a for a in selected if (a[field] or "").casefold() in allowed]
    if is_external is not None:
        selected = [a for a in selected if a["isExternal"] is is_external]
    # Stable sorts applied from the last key to the first give a multi-key sort.
    for field, descending in reversed(sort or []):
        selected.sort(key=SORT_KEYS[field], reverse=descending)
    return selected
