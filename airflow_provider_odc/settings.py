"""Parse an Airflow ``odc`` connection once, into a frozen, validated settings object.

Every other module takes ``OdcConnectionSettings``, never the raw Connection. The extras (their names,
defaults, bounds and parsers) are declared once in ``connection_fields``, which also gives the form; this
module reads the standard fields and applies each extra's parser. The error messages name the connection
id and the field as the Airflow UI labels it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from airflow_provider_odc import connection_fields as fields
from airflow_provider_odc.auth import urls
from airflow_provider_odc.connection_fields import CACHE_MODES as CACHE_MODES
from airflow_provider_odc.connection_fields import MAX_TEXT_LENGTH as MAX_TEXT_LENGTH
from airflow_provider_odc.connection_fields import CacheMode, PacingMode, shown, standard_field, text_of
from airflow_provider_odc.exceptions import OdcConfigError

# The defaults and bounds of the numbers a connection holds, as declared in ``connection_fields``.
DEFAULT_TIMEOUT: float = fields.TIMEOUT.default
DEFAULT_REFRESH_MARGIN: float = fields.REFRESH_MARGIN.default
DEFAULT_MAX_RETRIES: int = fields.MAX_RETRIES.default
DEFAULT_RATE_LIMIT_WAIT: float = fields.RATE_LIMIT_WAIT.default
TIMEOUT_RANGE = fields.TIMEOUT.limits
REFRESH_MARGIN_RANGE = fields.REFRESH_MARGIN.limits
MAX_RETRIES_RANGE = fields.MAX_RETRIES.limits
RATE_LIMIT_WAIT_RANGE = fields.RATE_LIMIT_WAIT.limits
PORT_RANGE = (1, 65535)
HOST, LOGIN, PASSWORD = (standard_field(name) for name in ("host", "login", "password"))


class ConnectionLike(Protocol):
    """The fields of an Airflow Connection that the provider reads."""

    conn_id: str
    host: str | None
    login: str | None
    password: str | None
    port: int | None

    @property
    def extra_dejson(self) -> dict[str, Any]: ...


def is_loopback_host(hostname: str) -> bool:
    """True for localhost and loopback addresses: the only hosts plain http is allowed for."""
    if hostname.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname.strip("[]")).is_loopback
    except ValueError:
        return False


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, lower-cased, default ports dropped, as requests and httpx connect.

    Judged by the URL gate (``auth/urls.py``): a ValueError (``UrlRefused``) when the URL is ambiguous,
    i.e. when URL parsers would disagree about its host.
    """
    return urls.origin_of(url)


@dataclass(frozen=True)
class OdcConnectionSettings:
    """Everything the hook needs from an ``odc`` connection, validated."""

    conn_id: str
    origin: str
    client_id: str
    client_secret: str = field(repr=False)
    # One attribute per parsed extra (``ExtraField.setting``), with the declared default.
    timeout: float = DEFAULT_TIMEOUT
    verify: bool | str = fields.VERIFY.default
    refresh_margin: float = DEFAULT_REFRESH_MARGIN
    cache_mode: CacheMode = fields.CACHE_MODE.default
    cache_secret: str | None = field(default=fields.CACHE_SECRET.default, repr=False)
    max_retries: int = DEFAULT_MAX_RETRIES
    rate_limit_wait: float = DEFAULT_RATE_LIMIT_WAIT
    request_pacing: PacingMode = fields.REQUEST_PACING.default

    @property
    def cache_identity(self) -> str:
        """Identifies the credentials without revealing them: a changed secret is a new cache."""
        parts = [self.conn_id, self.origin, self.client_id, self.client_secret, self.cache_mode]
        material = "\n".join([*parts, self.cache_secret or ""])
        return hashlib.sha256(material.encode()).hexdigest()[:16]

    @classmethod
    def from_connection(cls, conn: ConnectionLike) -> OdcConnectionSettings:
        conn_id = conn.conn_id
        problem = _Problems(conn_id)
        origin = _parse_origin(conn.host, _port(conn.port, problem), problem)
        client_id = text_of(conn.login, LOGIN, problem).strip()
        if not client_id:
            raise problem(f"{LOGIN} is empty. Copy the API client's ID from the ODC Portal.")
        client_secret = text_of(conn.password, PASSWORD, problem)
        if not client_secret:
            raise problem(f"{PASSWORD} is empty. Copy the API client's secret from the ODC Portal.")

        extra = _extras(conn, problem)
        parsed = {spec.setting: spec.read(extra, problem) for spec in fields.EXTRA_FIELDS if spec.setting}
        return cls(conn_id=conn_id, origin=origin, client_id=client_id, client_secret=client_secret, **parsed)


class _Problems:
    """Builds OdcConfigError messages that name the connection."""

    def __init__(self, conn_id: str) -> None:
        self.conn_id = conn_id

    def __call__(self, message: str) -> OdcConfigError:
        return OdcConfigError(message, conn_id=self.conn_id)


def _parse_origin(host: str | None, port: int | None, problem: _Problems) -> str:
    """The connection's origin, judged by the same URL gate as every URL that carries the token."""
    raw = (host or "").strip()
    if not raw:
        raise problem(f"{HOST} is empty. Set it to your ODC portal domain, e.g. acme.outsystems.dev.")
    url = raw if "://" in raw else f"https://{raw}"
    try:
        origin = urls.judge(url)
    except urls.UrlRefused as refused:
        raise problem(f"{HOST} {urls.display_url(raw)} is not a valid domain or URL: {refused}.") from None
    parts = urlsplit(url)  # unambiguous now: every parser agrees on it
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise problem(f"{HOST} {raw!r} has a path or query; give the portal domain only, e.g. acme.outsystems.dev.")
    if parts.port is None and port:
        try:
            origin = urls.judge(f"{origin.scheme}://{origin.host}:{port}")
        except urls.UrlRefused as refused:
            raise problem(f"Port {port!r} with {HOST} {raw!r} is not a valid origin: {refused}.") from None
    if origin.scheme == "http" and not is_loopback_host(origin.host):
        raise problem(
            f"{HOST} {raw!r} uses plain http. ODC requires https; plain http is allowed only "
            "for a loopback address (the local ODC emulator)."
        )
    return str(origin)


def _extras(conn: ConnectionLike, problem: _Problems) -> dict[str, Any]:
    try:
        extra = conn.extra_dejson
    except Exception:
        raise problem("Extra is not valid JSON.") from None
    if isinstance(extra, str):  # a JSON string inside the extra, as some CLIs write it
        try:
            extra = json.loads(extra)
        except ValueError:
            raise problem("Extra is not a JSON object.") from None
    if not isinstance(extra, dict):
        raise problem("Extra is not a JSON object.")
    return extra


def _port(value: Any, problem: _Problems) -> int | None:
    """The connection's Port field: None (or 0, what a form stores for 'no port') or 1..65535."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    low, high = PORT_RANGE
    try:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError
        port = int(value)
    except (TypeError, ValueError, OverflowError):
        raise problem(f"Port {shown(value)} is not a whole number; leave it empty or give {low}..{high}.") from None
    if port == 0:
        return None
    if not low <= port <= high:
        raise problem(f"Port {shown(value)} is out of range; leave it empty or give {low}..{high}.")
    return port
