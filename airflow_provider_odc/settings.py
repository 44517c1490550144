"""Parse an Airflow ``odc`` connection once, into a frozen, validated settings object.

Every other module takes ``OdcConnectionSettings``, never the raw Connection, so there is one place
that knows the field names, the defaults and the error messages for bad values. The error messages
name the connection id and the field as the Airflow UI labels it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from airflow_provider_odc.auth import urls
from airflow_provider_odc.exceptions import OdcConfigError

CacheMode = Literal["variable", "memory", "off"]
CACHE_MODES: tuple[CacheMode, ...] = ("variable", "memory", "off")

DEFAULT_TIMEOUT = 60.0
DEFAULT_REFRESH_MARGIN = 300.0
DEFAULT_MAX_RETRIES = 3
# How long one call may wait out ODC's per-minute rate limits (429s) in total; bounded so a typo cannot park
# a worker slot for hours.
DEFAULT_RATE_LIMIT_WAIT = 300.0
MAX_RATE_WAIT = 1800.0


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
        origin = _parse_origin(conn.host, conn.port, problem)
        client_id = (conn.login or "").strip()
        if not client_id:
            raise problem("Client ID (login) is empty. Copy the API client's ID from the ODC Portal.")
        client_secret = conn.password or ""
        if not client_secret:
            raise problem("Client secret (password) is empty. Copy the API client's secret from the ODC Portal.")

        extra = _extras(conn, problem)
        cache_mode = _blank_to_none(extra.get("cache_mode")) or "variable"
        if cache_mode not in CACHE_MODES:
            raise problem(f"extra 'cache_mode' is {cache_mode!r}; use one of {', '.join(CACHE_MODES)}.")
        return cls(
            conn_id=conn_id,
            origin=origin,
            client_id=client_id,
            client_secret=client_secret,
            timeout=_number(extra, "timeout", DEFAULT_TIMEOUT, problem, minimum=1),
            verify=_verify(extra, problem),
            refresh_margin=_number(extra, "refresh_margin_seconds", DEFAULT_REFRESH_MARGIN, problem, minimum=0),
            cache_mode=cache_mode,
            cache_secret=_blank_to_none(extra.get("cache_secret")),
            max_retries=int(_number(extra, "max_retries", DEFAULT_MAX_RETRIES, problem, minimum=0, maximum=10)),
            rate_limit_wait=_number(
                extra, "rate_limit_wait_seconds", DEFAULT_RATE_LIMIT_WAIT, problem, minimum=0, maximum=MAX_RATE_WAIT
            ),
        )


class _Problems:
    """Builds OdcConfigError messages that name the connection."""

    def __init__(self, conn_id: str) -> None:
        self.conn_id = conn_id

    def __call__(self, message: str) -> OdcConfigError:
        return OdcConfigError(f"ODC connection '{self.conn_id}': {message}")


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


def _number(
    extra: dict[str, Any],
    name: str,
    default: float,
    problem: _Problems,
    *,
    minimum: float,
    maximum: float | None = None,
) -> float:
    value = _blank_to_none(extra.get(name))
    if value is None:
        return default
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
    except (TypeError, ValueError):
        raise problem(f"extra '{name}' is {value!r}; it must be a number.") from None
    if number < minimum or (maximum is not None and number > maximum):
        bounds = f"at least {minimum:g}" if maximum is None else f"between {minimum:g} and {maximum:g}"
        raise problem(f"extra '{name}' is {value!r}; it must be {bounds}.")
    return number


_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


def _verify(extra: dict[str, Any], problem: _Problems) -> bool | str:
    """``verify`` (bool, or a CA bundle path as requests takes it) and ``ca_bundle_path``."""
    ca_bundle = _blank_to_none(extra.get("ca_bundle_path"))
    value = _blank_to_none(extra.get("verify"))
    if isinstance(value, str):
        if value.lower() in _TRUE:
            value = True
        elif value.lower() in _FALSE:
            value = False
        else:  # a path given in 'verify', as requests accepts it
            ca_bundle, value = ca_bundle or value, True
    if value is False:
        return False
    if value not in (None, True):
        raise problem(f"extra 'verify' is {value!r}; use true, false or a CA bundle path.")
    return str(ca_bundle) if ca_bundle else True
