"""Parse an Airflow ``odc`` connection once, into a frozen, validated settings object.

Every other module takes ``OdcConnectionSettings``, never the raw Connection, so there is one place
that knows the field names, the defaults and the error messages for bad values. The error messages
name the connection id and the field as the Airflow UI labels it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from airflow_provider_odc.auth import urls
from airflow_provider_odc.exceptions import OdcConfigError
from airflow_provider_odc.scrub import quoted

CacheMode = Literal["variable", "memory", "off"]
CACHE_MODES: tuple[CacheMode, ...] = ("variable", "memory", "off")

DEFAULT_TIMEOUT = 60.0
DEFAULT_REFRESH_MARGIN = 300.0
DEFAULT_MAX_RETRIES = 3
# How long one call may wait out ODC's per-minute rate limits (429s) in total; bounded so a typo cannot park
# a worker slot for hours.
DEFAULT_RATE_LIMIT_WAIT = 300.0

# Bounds of every number a connection holds, so nan, inf or 1e12 never reach a timer. The timeout also
# sets the cross-worker lease's TTL, so a dead holder blocks the others at most this long; a margin above
# half of ODC's 12-hour token lifetime would never apply (it is capped at half the lifetime).
TIMEOUT_RANGE = (1.0, 300.0)
REFRESH_MARGIN_RANGE = (0.0, 21600.0)
MAX_RETRIES_RANGE = (0, 10)
PORT_RANGE = (1, 65535)
RATE_LIMIT_WAIT_RANGE = (0.0, 1800.0)
#: The longest client id, secret, cache secret or CA bundle path accepted (a pasted file is not one).
MAX_TEXT_LENGTH = 4096


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
    timeout: float = DEFAULT_TIMEOUT
    verify: bool | str = True
    refresh_margin: float = DEFAULT_REFRESH_MARGIN
    cache_mode: CacheMode = "variable"
    cache_secret: str | None = field(default=None, repr=False)
    max_retries: int = DEFAULT_MAX_RETRIES
    rate_limit_wait: float = DEFAULT_RATE_LIMIT_WAIT

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
        client_id = _text(conn.login, "Client ID (login)", problem).strip()
        if not client_id:
            raise problem("Client ID (login) is empty. Copy the API client's ID from the ODC Portal.")
        client_secret = _text(conn.password, "Client secret (password)", problem)
        if not client_secret:
            raise problem("Client secret (password) is empty. Copy the API client's secret from the ODC Portal.")

        extra = _extras(conn, problem)
        return cls(
            conn_id=conn_id,
            origin=origin,
            client_id=client_id,
            client_secret=client_secret,
            timeout=_number(extra, "timeout", DEFAULT_TIMEOUT, problem, bounds=TIMEOUT_RANGE),
            verify=_verify(extra, problem),
            refresh_margin=_number(
                extra, "refresh_margin_seconds", DEFAULT_REFRESH_MARGIN, problem, bounds=REFRESH_MARGIN_RANGE
            ),
            cache_mode=_cache_mode(extra, problem),
            cache_secret=_cache_secret(extra, problem),
            max_retries=int(
                _number(extra, "max_retries", DEFAULT_MAX_RETRIES, problem, bounds=MAX_RETRIES_RANGE, whole=True)
            ),
            rate_limit_wait=_number(
                extra, "rate_limit_wait_seconds", DEFAULT_RATE_LIMIT_WAIT, problem, bounds=RATE_LIMIT_WAIT_RANGE
            ),
        )


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
        raise problem("Portal domain (host) is empty. Set it to your ODC portal domain, e.g. acme.outsystems.dev.")
    url = raw if "://" in raw else f"https://{raw}"
    try:
        origin = urls.judge(url)
    except urls.UrlRefused as refused:
        raise problem(
            f"Portal domain (host) {urls.display_url(raw)} is not a valid domain or URL: {refused}."
        ) from None
    parts = urlsplit(url)  # unambiguous now: every parser agrees on it
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise problem(
            f"Portal domain (host) {raw!r} has a path or query; give the portal domain only, e.g. acme.outsystems.dev."
        )
    if parts.port is None and port:
        try:
            origin = urls.judge(f"{origin.scheme}://{origin.host}:{port}")
        except urls.UrlRefused as refused:
            raise problem(
                f"Port {port!r} with Portal domain (host) {raw!r} is not a valid origin: {refused}."
            ) from None
    if origin.scheme == "http" and not is_loopback_host(origin.host):
        raise problem(
            f"Portal domain (host) {raw!r} uses plain http. ODC requires https; plain http is allowed only "
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


def _blank_to_none(value: Any) -> Any:
    """The React form stores every empty field as null, other tools as ''; both mean 'use the default'."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return value.strip() if isinstance(value, str) else value


def _shown(value: Any) -> str:
    """A value quoted in an error message, cut short: an extra can hold megabytes."""
    return quoted(value, limit=60)


def _text(value: Any, label: str, problem: _Problems) -> str:
    """A connection field that must be text of a sane length (None is empty). Never quotes the value."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise problem(f"{label} must be text, not {type(value).__name__}.")
    if len(value) > MAX_TEXT_LENGTH:
        raise problem(f"{label} is {len(value)} characters long; at most {MAX_TEXT_LENGTH} are accepted.")
    return value


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
        raise problem(f"Port {_shown(value)} is not a whole number; leave it empty or give {low}..{high}.") from None
    if port == 0:
        return None
    if not low <= port <= high:
        raise problem(f"Port {_shown(value)} is out of range; leave it empty or give {low}..{high}.")
    return port


def _number(
    extra: dict[str, Any],
    name: str,
    default: float,
    problem: _Problems,
    *,
    bounds: tuple[float, float],
    whole: bool = False,
) -> float:
    """A finite number within ``bounds`` (a JSON number or a numeric string, as forms store them).

    Booleans are refused although Python counts them as numbers; so are nan and infinity, which compare
    false with every bound and would turn a timer into 'never' or 'always'.
    """
    value = _blank_to_none(extra.get(name))
    if value is None:
        return default
    kind = "a whole number" if whole else "a number"
    low, high = bounds
    try:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError
        number = float(value)
    except (ValueError, OverflowError):
        raise problem(f"extra '{name}' is {_shown(value)}; it must be {kind} from {low:g} to {high:g}.") from None
    if not math.isfinite(number) or (whole and not number.is_integer()) or not low <= number <= high:
        raise problem(f"extra '{name}' is {_shown(value)}; it must be {kind} from {low:g} to {high:g}.")
    return number


def _cache_mode(extra: dict[str, Any], problem: _Problems) -> CacheMode:
    value = _blank_to_none(extra.get("cache_mode"))
    if value is None:
        return "variable"
    for mode in CACHE_MODES:
        if isinstance(value, str) and value.lower() == mode:
            return mode
    raise problem(f"extra 'cache_mode' is {_shown(value)}; use one of {', '.join(CACHE_MODES)}.")


def _cache_secret(extra: dict[str, Any], problem: _Problems) -> str | None:
    """Text or nothing; never quoted in a message (it is a secret even when it has the wrong type)."""
    value = _blank_to_none(extra.get("cache_secret"))
    if value is None:
        return None
    return _text(value, "extra 'cache_secret'", problem)


_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


def _verify(extra: dict[str, Any], problem: _Problems) -> bool | str:
    """``verify`` (bool, or a CA bundle path as requests takes it) and ``ca_bundle_path``.

    A bundle path must name an existing file or directory on this worker: requests and httpx would
    otherwise fail with an ``OSError`` on the first call, far from the field that caused it.
    """
    given = _blank_to_none(extra.get("ca_bundle_path"))
    if given is not None and not isinstance(given, str):
        raise problem(f"extra 'ca_bundle_path' is {_shown(given)}; it must be a path (text).")
    ca_bundle: str | None = given
    field_name = "ca_bundle_path"
    value = _blank_to_none(extra.get("verify"))
    if isinstance(value, str):
        if value.lower() in _TRUE:
            value = True
        elif value.lower() in _FALSE:
            value = False
        elif ca_bundle is None:  # a path given in 'verify', as requests accepts it
            ca_bundle, value, field_name = value, True, "verify"
        else:
            value = True
    if value is False:
        return False
    if value is not None and value is not True:
        raise problem(f"extra 'verify' is {_shown(value)}; use true, false or a CA bundle path.")
    if ca_bundle is None:
        return True
    if len(ca_bundle) > MAX_TEXT_LENGTH or "\x00" in ca_bundle or not os.path.exists(ca_bundle):
        raise problem(
            f"extra '{field_name}' is {_shown(ca_bundle)}, which is not a file or directory on this worker; "
            "give the path of a PEM CA bundle that every worker has."
        )
    return ca_bundle
