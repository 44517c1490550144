"""ODC as Airflow Assets: the ``odc://`` URI scheme, its normalizer, and the events the operators emit.

Three kinds of ODC Asset, each named by **keys** (ODC's GUIDs, which never change; names can be renamed and
reused, and a stage name can repeat across portfolios), on the portal's domain:

- ``odc://<portal>/stages/<stage_key>/assets/<asset_key>``: one app (asset) as deployed in one stage.
  Changed by a finished deploy, configuration apply, or publish to that stage.
- ``odc://<portal>/stages/<stage_key>``: any app in that stage; every event of the first kind is emitted
  on it too, so a DAG can schedule on "whatever reaches Production".
- ``odc://<portal>/assets/<asset_key>``: the app's revisions, outside any stage: a finished build, a tag,
  and a publish to no named stage (ODC does not say which stage that lands on).

Airflow 3 has no Asset patterns, and an ``AssetAlias`` in a consumer's ``schedule`` only matches aliases
a producer names at parse time; the operators' asset, stage and revision are templated (not known at
parse time). So each operator carries one fixed alias outlet, :data:`ODC_EVENTS_ALIAS`, and attaches the
concrete assets above to it at runtime (Airflow creates them on first use); consumers schedule on the
concrete assets. The event's extra (``OdcEventSubject.extra``) holds keys, names, revision, build and
operation keys: values ODC returned, never a token or a secret.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import SplitResult, urlsplit

from airflow.sdk import Asset, AssetAlias

from airflow_provider_odc.asset_first_events import claim_first_events
from airflow_provider_odc.exceptions import OdcError

if TYPE_CHECKING:
    from airflow.sdk import Context

SCHEME = "odc"
ODC_EVENTS_ALIAS = AssetAlias(name="odc_events")
"""The alias every ODC operator that emits events has as an outlet; the events name the concrete assets."""
EVENT_XCOM_KEY = "odc_asset_event"
"""XCom with the event's extra, pushed before the wait: ``execute_complete`` of a deferred task (a new
process) reads it back. (Not ``next_kwargs``: ``dag.test()`` drops those when it runs a trigger inline.)"""

OdcOperation = Literal["Build", "Deploy", "ApplyConfigs", "Publish", "Tag"]

_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_HOST_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)\Z")
_SHAPES = (
    "odc://<portal>/stages/<stage_key>/assets/<asset_key>, odc://<portal>/stages/<stage_key> or "
    "odc://<portal>/assets/<asset_key>"
)
_FIND_KEYS = (
    "Stage and asset keys are the GUIDs the ODC Portal shows after stageid= and application?id= in its URLs "
    "(or OdcHook().resolve_stage(name).key and OdcHook().find_asset(name).asset_key)."
)


class OdcAssetUriError(OdcError, ValueError):
    """An ``odc://`` Asset URI (or a part given to a helper) that is not one of the three shapes.

    A ``ValueError`` too, as Airflow expects of URI normalizers (``Asset.normalized_uri`` relies on it).
    """


def _key(value: str, what: str, uri: str) -> str:
    key = value.strip().lower()
    if not _GUID.match(key):
        raise OdcAssetUriError(
            f"{what} {value!r} in ODC Asset URI {uri!r} is not a key (a GUID such as "
            "'1b2c3d4e-0000-4000-8000-00000000000a'). ODC Asset URIs name stages and assets by key, "
            f"never by name, because names change.",
            hint=_FIND_KEYS,
        )
    return key


def _portal(netloc: str, uri: str) -> str:
    """The portal part: lower-case ASCII host (IPv6 in brackets), with its port unless it is 443."""
    if "@" in netloc:
        raise OdcAssetUriError(f"ODC Asset URI {uri!r} has user info; give the portal domain only.")
    try:
        parts = urlsplit(f"//{netloc}")
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise OdcAssetUriError(f"ODC Asset URI {uri!r} has no valid portal domain: {exc}.") from None
    if not host:
        raise OdcAssetUriError(f"ODC Asset URI {uri!r} names no portal domain; expected {_SHAPES}.")
    if not host.isascii():
        raise OdcAssetUriError(
            f"ODC Asset URI {uri!r}: write the portal domain in ASCII (IDNA 'xn--' labels), as the connection does."
        )
    if ":" in host:  # an IPv6 literal (only the emulator on a loopback address would use one)
        if not re.fullmatch(r"[0-9a-f:.]+", host):
            raise OdcAssetUriError(f"ODC Asset URI {uri!r} has an invalid IPv6 portal address.")
        host = f"[{host}]"
    elif not all(_HOST_LABEL.match(label) for label in host.rstrip(".").split(".")):
        raise OdcAssetUriError(f"ODC Asset URI {uri!r} has an invalid portal domain {host!r}.")
    return host if port in (None, 443) else f"{host}:{port}"


def normalize_odc_uri(parts: SplitResult) -> SplitResult:
    """Airflow's Asset URI normalizer for ``odc`` (registered in ``get_provider_info()['asset-uris']``).

    Airflow has already lower-cased the scheme, dropped a fragment and trailing slashes. This keeps only
    the three documented shapes, lower-cases host and keys, drops the default port 443, and refuses the
    rest with :class:`OdcAssetUriError`.
    """
    uri = parts.geturl()
    if parts.query:
        raise OdcAssetUriError(f"ODC Asset URI {uri!r} has a query; expected {_SHAPES}.")
    portal = _portal(parts.netloc, uri)
    segments = parts.path.strip("/").split("/") if parts.path.strip("/") else []
    if len(segments) == 4 and segments[0] == "stages" and segments[2] == "assets":
        path = f"/stages/{_key(segments[1], 'Stage', uri)}/assets/{_key(segments[3], 'Asset', uri)}"
    elif len(segments) == 2 and segments[0] == "stages":
        path = f"/stages/{_key(segments[1], 'Stage', uri)}"
    elif len(segments) == 2 and segments[0] == "assets":
        path = f"/assets/{_key(segments[1], 'Asset', uri)}"
    else:
        raise OdcAssetUriError(f"ODC Asset URI {uri!r} is not one of {_SHAPES}.", hint=_FIND_KEYS)
    return SplitResult(SCHEME, portal, path, "", "")


def portal_of(portal: str) -> str:
    """The portal part of a URI from a domain or an origin as a connection holds it
    (``acme.outsystems.dev``, ``https://acme.outsystems.dev``, ``http://127.0.0.1:8080``)."""
    text = portal.strip()
    netloc = urlsplit(text).netloc if "://" in text else text.rstrip("/")
    if not netloc or "/" in netloc:
        raise OdcAssetUriError(f"Portal {portal!r} is not a portal domain (such as 'acme.outsystems.dev').")
    return _portal(netloc, f"odc://{netloc}")


def _uri(portal: str, path: str) -> str:
    """The canonical URI, so that the Asset's name (which Airflow takes verbatim) equals its normalized URI."""
    return normalize_odc_uri(SplitResult(SCHEME, portal_of(portal), path, "", "")).geturl()


def _asset(uri: str) -> Asset:
    return Asset(name=uri, uri=uri)


def _given(value: str, what: str) -> str:
    """A key given to a helper: checked on its own, so that no ``/`` can reshape the URI."""
    if not isinstance(value, str):
        raise OdcAssetUriError(f"{what} key must be a string (a GUID), not {type(value).__name__}.", hint=_FIND_KEYS)
    return _key(value, what, value)


def odc_asset(portal: str, stage: str, asset: str) -> Asset:
    """One app in one stage: ``odc://<portal>/stages/<stage_key>/assets/<asset_key>``.

    :param portal: the portal domain (or the connection's host, e.g. ``https://acme.outsystems.dev``).
    :param stage: the stage key (GUID). :param asset: the asset key (GUID).
    """
    return _asset(_uri(portal, f"/stages/{_given(stage, 'Stage')}/assets/{_given(asset, 'Asset')}"))


def odc_stage_asset(portal: str, stage: str) -> Asset:
    """Any app in one stage: ``odc://<portal>/stages/<stage_key>``."""
    return _asset(_uri(portal, f"/stages/{_given(stage, 'Stage')}"))


def odc_asset_revisions(portal: str, asset: str) -> Asset:
    """An app's builds, tags and stage-less publishes: ``odc://<portal>/assets/<asset_key>``."""
    return _asset(_uri(portal, f"/assets/{_given(asset, 'Asset')}"))


@dataclass(frozen=True)
class OdcEventSubject:
    """What a finished ODC operation changed; its fields are the event's extra (keys, names, numbers)."""

    portal: str
    operation: OdcOperation
    asset_key: str
    asset_name: str
    revision: int | None
    operation_key: str | None = None
    build_key: str | None = None
    stage_key: str | None = None
    stage_name: str | None = None
    tag: str | None = None

    @classmethod
    def from_extra(cls, extra: dict[str, Any]) -> OdcEventSubject:
        fields: dict[str, Any] = {name: extra.get(name) for name in cls.__dataclass_fields__}
        return cls(**fields)

    @property
    def extra(self) -> dict[str, Any]:
        return asdict(self)

    def assets(self) -> list[Asset]:
        """The assets this event lands on: app-in-stage and stage, or the app's revisions."""
        if self.stage_key is None:
            return [odc_asset_revisions(self.portal, self.asset_key)]
        return [odc_asset(self.portal, self.stage_key, self.asset_key), odc_stage_asset(self.portal, self.stage_key)]


def with_events_alias(outlets: Any) -> list[Any]:
    """The operator's outlets plus :data:`ODC_EVENTS_ALIAS` (once)."""
    current = list(outlets or [])
    return current if ODC_EVENTS_ALIAS in current else [*current, ODC_EVENTS_ALIAS]


def remember(context: Context, subject: OdcEventSubject) -> None:
    """Keep the subject in XCom for :func:`recall` after a deferral (XComs survive it; a retry starts afresh)."""
    context["ti"].xcom_push(key=EVENT_XCOM_KEY, value=subject.extra)


def recall(context: Context) -> OdcEventSubject | None:
    """The subject :func:`remember` kept in this try; None when there is none, or nowhere to emit it (a
    hand-built context without ``outlet_events``)."""
    if context.get("outlet_events") is None:
        return None
    ti = context["ti"]
    extra = ti.xcom_pull(task_ids=ti.task_id, key=EVENT_XCOM_KEY, map_indexes=ti.map_index)
    return OdcEventSubject.from_extra(extra) if isinstance(extra, dict) else None


def emit(context: Context, subject: OdcEventSubject) -> None:
    """Attach one Asset event per asset of ``subject`` to :data:`ODC_EVENTS_ALIAS`; Airflow records them when
    the task succeeds. A new asset's first events go one task at a time (:mod:`.asset_first_events`).
    A hand-built context without ``outlet_events`` (a unit test calling ``execute``) has nowhere to put them."""
    outlet_events = context.get("outlet_events")
    if outlet_events is None:
        return
    targets = subject.assets()
    # Airflow fails one of two tasks whose events create the same asset at once: elect one first sender.
    claim_first_events([asset.uri for asset in targets])
    accessor = outlet_events[ODC_EVENTS_ALIAS]
    for asset in targets:
        accessor.add(asset, extra=subject.extra)


__all__ = [
    "EVENT_XCOM_KEY",
    "ODC_EVENTS_ALIAS",
    "OdcAssetUriError",
    "OdcEventSubject",
    "normalize_odc_uri",
    "odc_asset",
    "odc_asset_revisions",
    "odc_stage_asset",
]
