"""Deterministic seed data for the ODC emulator: one portfolio, three stages, N assets and their release state.

The data comes from seeded RNGs so that every emulator instance (in-process, CLI, another machine) serves
exactly the same assets in the same order; tests can then assert on names, keys and page contents.
The shapes follow the official specs: ``AssetRevisionV1`` (asset-repository v1) and ``Environment``
(portfolio v2).

Release state (builds and deployments) is derived from the assets with its own RNG, so adding it did not
change a single asset. For the deployable assets (``DEPLOYABLE_TYPES``), numbered ``j = 0, 1, 2, ...`` in
seed order, ``j % 3`` picks one of three shapes (see ``build_release_seed``):

* ``0``: Debug and Release builds of the latest revision; the latest revision is deployed to Development,
  the previous one (when there is one, with its own Release build) to QA and Production.
* ``1``: only a Debug build of the latest revision (no Release build: a deploy must build first); the
  previous revision has a Release build and is deployed to Development.
* ``2``: no builds at all and deployed nowhere.

Older revisions of an asset (1 .. latest - 1) are generated lazily by ``revision_history``.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

DEFAULT_SEED = 20240817

# Asset types that ODC deploys on their own (the ``DeployedAsset.type`` values); libraries are bundled into apps.
DEPLOYABLE_TYPES = ("WebApplication", "MobileApplication", "Workflow", "Agent")
SEMVER = re.compile(r"(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})")

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
    users: tuple[str, ...] = ()
    seed: int = DEFAULT_SEED


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
    return SeedData(
        portfolio_key=portfolio_key,
        environments=environments,
        assets=tuple(assets),
        users=tuple(users),
        seed=seed,
    )


def parse_timestamp(text: str) -> datetime:
    """Inverse of ``_timestamp`` (also accepts the other RFC 3339 forms clients send in query strings)."""
    text = text.strip().replace(" ", "+")  # an unencoded '+' in a query string arrives as a space
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    match = re.fullmatch(r"(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)", text)
    if match and match.group(2):  # Python 3.10's fromisoformat only takes 3 or 6 fraction digits.
        text = match.group(1) + match.group(2)[:7].ljust(7, "0") + match.group(3)
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def format_timestamp(epoch: float) -> str:
    """An emulator-clock instant as served by the API (RFC 3339 UTC, milliseconds)."""
    return _timestamp(datetime.fromtimestamp(epoch, tz=timezone.utc))


def semver(tag: str) -> tuple[int, int, int]:
    """``"1.10.4"`` -> ``(1, 10, 4)``; ``ValueError`` unless MAJOR.MINOR.PATCH without leading zeros."""
    match = SEMVER.fullmatch(tag)
    if match is None:
        raise ValueError(f"'{tag}' is not a MAJOR.MINOR.PATCH version")
    return int(match.group(1)), int(match.group(2)), int(match.group(3))


def _lower_tag(ceiling: tuple[int, int, int], rng: random.Random) -> tuple[int, int, int] | None:
    """A random version strictly below ``ceiling``, or ``None`` when ``ceiling`` is 0.0.0."""
    major, minor, patch = ceiling
    if patch > 0:
        return major, minor, rng.randint(max(0, patch - 3), patch - 1)
    if minor > 0:
        return major, minor - 1, rng.randint(0, 9)
    if major > 0:
        return major - 1, rng.randint(0, 12), rng.randint(0, 9)
    return None


def release_note(tag: str, commit_message: str | None) -> str:
    """Seeded release notes are HTML, as observed on live tenants."""
    return f"<p>Version {tag}: {commit_message or 'maintenance release'}.</p>"


def revision_history(asset: dict[str, Any], users: tuple[str, ...], seed: int = DEFAULT_SEED) -> list[dict[str, Any]]:
    """Every revision ``1 .. asset["revision"]`` of ``asset`` (its latest revision), oldest first.

    Deterministic per asset key. Revisions are at least two hours apart. Older tags are strictly lower than
    newer ones; an asset whose latest revision is untagged has older tags half of the time, otherwise it
    was never tagged (``highest-tag-revision`` answers 404 for it).
    """
    rng = random.Random(f"{seed}:{asset['assetKey']}")
    latest = int(asset["revision"])
    created = parse_timestamp(asset["createdAt"])
    ceiling: tuple[int, int, int] | None
    if asset["tag"]:
        ceiling = semver(asset["tag"])
    elif rng.random() < 0.5:
        ceiling = (rng.randint(0, 3), rng.randint(1, 12), rng.randint(0, 9))
    else:
        ceiling = None
    older: list[dict[str, Any]] = []
    for number in range(latest - 1, 0, -1):
        created -= timedelta(hours=rng.randint(2, 72), minutes=rng.randint(0, 59), milliseconds=rng.randint(0, 999))
        author = users[rng.randrange(len(users))] if users else asset["createdBy"]
        tag = None
        if ceiling is not None and rng.random() < 0.3:
            lower = _lower_tag(ceiling, rng)
            if lower is not None:
                ceiling, tag = lower, "{}.{}.{}".format(*lower)
        older.append(
            {
                **asset,
                "revision": number,
                "tag": tag,
                "modelDigest": _uuid(rng),
                "createdBy": author,
                "createdAt": _timestamp(created),
                "commitMessage": COMMIT_MESSAGES[rng.randrange(len(COMMIT_MESSAGES))],
                "taggedBy": author if tag else None,
                "taggedAt": _timestamp(created + timedelta(minutes=30)) if tag else None,
            }
        )
    older.reverse()
    return [*older, dict(asset)]


@dataclass(frozen=True)
class SeedBuild:
    """A finished build that exists before the emulator starts."""

    key: str
    asset_key: str
    revision: int
    build_type: str
    built_by: str
    started_at: float  # epoch seconds
    finished_at: float


@dataclass(frozen=True)
class SeedDeployment:
    """A finished Deploy operation and the deployment it left behind."""

    key: str
    asset_key: str
    revision: int
    build_key: str
    environment_key: str
    deployed_by: str
    started_at: float
    finished_at: float


@dataclass(frozen=True)
class ReleaseSeed:
    builds: tuple[SeedBuild, ...]
    deployments: tuple[SeedDeployment, ...]


def build_release_seed(data: SeedData) -> ReleaseSeed:
    """Builds and deployments of the deployable assets, in the three shapes the module docstring lists."""
    rng = random.Random(f"{data.seed}:release")
    environments = {environment["name"]: environment["key"] for environment in data.environments}
    users = data.users or ("00000000-0000-0000-0000-000000000001",)
    builds: list[SeedBuild] = []
    deployments: list[SeedDeployment] = []

    def build(asset: dict[str, Any], revision: int, build_type: str, when: datetime) -> SeedBuild:
        started = when.timestamp()
        made = SeedBuild(_uuid(rng), asset["assetKey"], revision, build_type, asset["createdBy"], started, started + 95)
        builds.append(made)
        return made

    def deploy(asset: dict[str, Any], made: SeedBuild, stage: str, when: datetime) -> None:
        started = when.timestamp()
        deployments.append(
            SeedDeployment(
                key=_uuid(rng),
                asset_key=asset["assetKey"],
                revision=made.revision,
                build_key=made.key,
                environment_key=environments[stage],
                deployed_by=users[rng.randrange(len(users))],
                started_at=started,
                finished_at=started + 80,
            )
        )

    apps = [asset for asset in data.assets if asset["assetType"] in DEPLOYABLE_TYPES]
    for j, asset in enumerate(apps):
        latest = int(asset["revision"])
        created = parse_timestamp(asset["createdAt"])  # revision ``latest``; ``latest - 1`` is >= 2 h older
        shape = j % 3
        if shape == 0:
            build(asset, latest, "Debug", created + timedelta(minutes=5))
            release = build(asset, latest, "Release", created + timedelta(minutes=10))
            deploy(asset, release, "Development", created + timedelta(minutes=20))
            if latest > 1:
                previous = build(asset, latest - 1, "Release", created - timedelta(minutes=60))
                deploy(asset, previous, "QA", created - timedelta(minutes=50))
                deploy(asset, previous, "Production", created - timedelta(minutes=40))
        elif shape == 1:
            build(asset, latest, "Debug", created + timedelta(minutes=5))
            if latest > 1:
                previous = build(asset, latest - 1, "Release", created - timedelta(minutes=60))
                deploy(asset, previous, "Development", created - timedelta(minutes=50))
    return ReleaseSeed(builds=tuple(builds), deployments=tuple(deployments))


SORT_KEYS: dict[str, Any] = {
    "name": lambda asset: asset["name"].casefold(),
    "createdAt": lambda asset: asset["createdAt"],
}


def parse_sort_fields(
    sort: str, allowed: Collection[str], allowed_text: str, *, casefold: bool = False
) -> list[tuple[str, bool]]:
    """Parse ``name``, ``-createdAt`` or a comma-joined list into ``[(field, descending), ...]``.

    ``casefold``: fields are matched (and returned) case-insensitively, as the operation lists do.
    """
    parsed = []
    for part in (piece.strip() for piece in sort.split(",")):
        field = part.removeprefix("-")
        if casefold:
            field = field.casefold()
        if field not in allowed:
            raise ValueError(f"Invalid sort field {part!r}. Allowed: {allowed_text} (prefix '-' to descend).")
        parsed.append((field, part.startswith("-")))
    return parsed


def parse_sort(sort: str) -> list[tuple[str, bool]]:
    """The asset list's ``sort``."""
    return parse_sort_fields(sort, SORT_KEYS, "name, createdAt")


def query_assets(
    assets: Sequence[dict[str, Any]],
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
