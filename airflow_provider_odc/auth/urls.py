"""One gate for every URL that will carry the bearer token or the client secret.

``urllib.parse.urlsplit``, urllib3 (what requests connects with) and httpx (the triggerer's client)
read some URLs differently: ``https://evil.example\\@acme.outsystems.dev/x`` is on
``acme.outsystems.dev`` for urlsplit and httpx, but urllib3 connects to ``evil.example``. So a URL is
judged the way the transports will judge it:

1. anything that makes parsers disagree somewhere is refused before any parser is asked: backslashes,
   whitespace, control and invisible characters, userinfo, percent-encoding in the authority, Unicode
   look-alikes of separators, non-ASCII outside the host, and non-ASCII hosts that do not round-trip
   through IDNA;
2. urlsplit, urllib3 (on the URL as given and as requests prepares it) and httpx each say which
   scheme, host and port they would connect to; they must all agree, and equal the connection's origin.

Refusals are ``UrlRefused`` (a ``ValueError``) whose reason never quotes the URL; callers name the
connection and show the URL through :func:`display_url`. No Airflow imports.
"""

from __future__ import annotations

import contextlib
import re
import string
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

import httpx
import idna
import requests
from urllib3.util import parse_url

DEFAULT_PORTS = {"http": 80, "https": 443}

_SCHEME_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_ABSOLUTE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*)(.*)\Z", re.DOTALL)
_HOST_CHARACTERS = frozenset(string.ascii_letters + string.digits + "-._")
_IPV6_CHARACTERS = frozenset(string.hexdigits + ":.")
# Percent-encoded control characters and backslash: harmless to the host, but only ever a trick.
_ENCODED_HAZARD = re.compile(r"%(?:[01][0-9A-Fa-f]|7[Ff]|5[Cc])")
# Look-alikes of / \ @ . : that Unicode normalisation (NFKC) or IDNA mapping leaves non-ASCII; the
# ones that do normalise to an ASCII separator (U+FF0F, U+FF20, U+FE6B, U+3002, ...) are found by rule.
_LOOKALIKES = frozenset(
    "\u2215\u2044\u29f8\u29f9\u2216\u2afd\u2cc1\u2f03\u3033\u30ce\u31d3\u4e3f"  # slashes and backslashes
    "\u2024\u2027\u2e31\u00b7\u0589\u06d4\u0701\u0702\ua4f8\ua60e\u3002\uff61"  # dots
    "\u2236\u02d0\u02f8\ua789\ua4fd\u0589\u05c3\u0703\u0704\ufe13\ufe30"  # colons
)


class UrlRefused(ValueError):
    """Why a URL is refused. The reason is safe to show: it never quotes the URL itself."""


@dataclass(frozen=True)
class Origin:
    """Where a transport connects: scheme, ASCII host (IDNA A-labels, IPv6 in brackets) and port."""

    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        if DEFAULT_PORTS.get(self.scheme) == self.port:
            return f"{self.scheme}://{self.host}"
        return f"{self.scheme}://{self.host}:{self.port}"


def judge(url: str) -> Origin:
    """The one origin every parser (and so every transport) connects to for ``url``; else UrlRefused."""
    if not isinstance(url, str) or not url:
        raise UrlRefused("it is empty")
    _refuse_ambiguous_characters(url)
    absolute = _ABSOLUTE.match(url)
    if absolute is None:
        raise UrlRefused("it is not an absolute http(s) URL with a host")
    scheme, authority, rest = absolute.groups()
    if scheme.lower() not in DEFAULT_PORTS:
        raise UrlRefused("its scheme is not http or https")
    _refuse_ambiguous_authority(authority)
    if not rest.isascii():
        raise UrlRefused(
            "it has non-ASCII characters after the host (percent-encode them, or pass query values as params)"
        )
    if _ENCODED_HAZARD.search(rest):
        raise UrlRefused("it has a percent-encoded control character or backslash")
    views = {name: _view(name, parse, url) for name, parse in _PARSERS}
    if len(set(views.values())) != 1:
        seen = "; ".join(f"{name} -> {origin}" for name, origin in views.items())
        raise UrlRefused(f"URL parsers disagree about where it goes ({seen})")
    return views["urllib3"]


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` as the transports connect to it: lower case, A-labels, default port dropped."""
    return str(judge(url))


def on_origin(url: str, origin: str) -> str:
    """``url`` if every transport would connect to ``origin`` with it; else UrlRefused saying where it goes."""
    where = judge(url)
    if where != _judge_origin(origin):
        raise UrlRefused(f"it goes to {where}")
    return url


def endpoint_url(endpoint: str, origin: str) -> str:
    """The URL for an API ``endpoint``: a path joined to ``origin``, or an absolute URL judged to be on it.

    Only something with a scheme is absolute; ``//host/x`` (scheme-relative) is refused, never joined.
    The verdict depends on the two strings alone, so it is remembered: a hook calling the same endpoint
    again (paging, polling) does not pay the four parsers each time. A refusal raises and is not cached.
    """
    if not isinstance(endpoint, str) or not endpoint:
        raise UrlRefused("it is empty")
    return _endpoint_url(endpoint, origin)


@lru_cache(maxsize=1024)
def _endpoint_url(endpoint: str, origin: str) -> str:
    if _SCHEME_PREFIX.match(endpoint):
        return on_origin(endpoint, origin)
    if endpoint.startswith("//"):
        raise UrlRefused(
            "it starts with '//', which names a host (a scheme-relative URL); give a path such as /api/..."
        )
    return on_origin(origin + ("" if endpoint.startswith("/") else "/") + endpoint, origin)


def display_url(url: object, secrets: Iterable[str | None] = (), *, limit: int = 200) -> str:
    """``url`` quoted for a message: escaped (look-alikes show as ``\\uXXXX``), any userinfo password,
    query and fragment hidden, ``secrets`` masked, and cut to ``limit`` characters."""
    text = url if isinstance(url, str) else repr(url)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = re.sub(r"\A([^/?#]*//[^/?#@]*?:)[^/?#]*@", r"\1***@", text)  # user:password@ -> user:***@
    cut = min((index for index in (text.find("?"), text.find("#")) if index >= 0), default=-1)
    if cut >= 0:
        text = text[:cut] + "?(query hidden)"
    quoted = ascii(text)
    return quoted if len(quoted) <= limit else quoted[: limit - 4] + "...'"


# -- the lexical rules ------------------------------------------------------------------------------


def _refuse_ambiguous_characters(url: str) -> None:
    for char in url:
        if char == "\\":
            raise UrlRefused("it contains a backslash (urllib3 ends the host there; urlsplit and httpx do not)")
        if char.isspace() or unicodedata.category(char)[0] in "CZ":
            raise UrlRefused(f"it contains whitespace or a control or invisible character (U+{ord(char):04X})")
        if not char.isascii() and is_lookalike(char):
            raise UrlRefused(f"it contains U+{ord(char):04X}, a Unicode look-alike of a URL separator")


def is_lookalike(char: str) -> bool:
    """True for a non-ASCII character that reads as, or normalises to, URL punctuation (not to a letter)."""
    if char in _LOOKALIKES:
        return True
    forms = [unicodedata.normalize("NFKC", char)]
    with contextlib.suppress(idna.IDNAError):
        forms.append(idna.uts46_remap(char, std3_rules=False, transitional=False))
    return any(
        (part.isascii() and not part.isalnum() and part != "-") or part in _LOOKALIKES
        for form in forms
        for part in form
    )


def _refuse_ambiguous_authority(authority: str) -> None:
    if "@" in authority:
        raise UrlRefused("it has userinfo ('@' before the host); credentials never go in a URL")
    if "%" in authority:
        raise UrlRefused("it has percent-encoding in the host or port")
    if authority.startswith("["):
        host, bracket, port = authority[1:].partition("]")
        if not bracket or not host or not set(host) <= _IPV6_CHARACTERS or (port and not port.startswith(":")):
            raise UrlRefused("its IPv6 host is malformed")
        port = port[1:]
    else:
        host, _, port = authority.partition(":")
        if not host:
            raise UrlRefused("it has no host")
        odd = sorted({char for char in host if char.isascii() and char not in _HOST_CHARACTERS})
        if odd:
            raise UrlRefused(f"its host contains {''.join(odd)!r}")
        if not host.isascii():
            _refuse_unless_idna(host)
    if port and not (port.isascii() and port.isdigit()):
        raise UrlRefused("its port is not a number")


def _refuse_unless_idna(host: str) -> None:
    """A non-ASCII host must be IDNA 2008 as written (no mapping): U+212A KELVIN SIGN, which lower-cases
    to ``k``, or fullwidth letters are refused, not quietly turned into another name."""
    written = "".join(char.lower() if char.isascii() else char for char in host)
    try:
        round_trip = idna.decode(idna.encode(written, uts46=False))
    except (idna.IDNAError, UnicodeError):
        raise UrlRefused("its non-ASCII host is not a valid internationalised domain name (IDNA)") from None
    if round_trip != written:
        raise UrlRefused("its non-ASCII host does not round-trip through IDNA")


# -- what each parser connects to -------------------------------------------------------------------


def _as_origin(scheme: str | None, host: str | bytes | None, port: int | None) -> Origin:
    scheme = (scheme or "").lower()
    name = (host.decode("ascii") if isinstance(host, bytes) else host or "").strip("[]").lower()
    if scheme not in DEFAULT_PORTS or not name:
        raise UrlRefused("no scheme or host")
    if not name.isascii():
        name = idna.encode(name, uts46=False).decode("ascii")
    if ":" in name:
        name = f"[{name}]"
    return Origin(scheme, name, DEFAULT_PORTS[scheme] if port is None else port)


def _urlsplit_view(url: str) -> Origin:
    parts = urlsplit(url)
    return _as_origin(parts.scheme, parts.hostname, parts.port)


def _urllib3_view(url: str) -> Origin:
    parts = parse_url(url)
    return _as_origin(parts.scheme, parts.host, parts.port)


def _requests_view(url: str) -> Origin:
    """urllib3's reading of the URL requests actually sends (``prepare_url`` rebuilds it)."""
    prepared = requests.PreparedRequest()
    prepared.prepare_url(url, None)
    return _urllib3_view(prepared.url or "")


def _httpx_view(url: str) -> Origin:
    parts = httpx.URL(url)
    return _as_origin(parts.scheme, parts.raw_host, parts.port)


_PARSERS: tuple[tuple[str, Callable[[str], Origin]], ...] = (
    ("urlsplit", _urlsplit_view),
    ("urllib3", _urllib3_view),
    ("requests", _requests_view),
    ("httpx", _httpx_view),
)


def _view(name: str, parse: Callable[[str], Origin], url: str) -> Origin:
    try:
        return parse(url)
    except (ValueError, UnicodeError, httpx.InvalidURL, requests.RequestException):
        raise UrlRefused(f"{name} cannot parse it") from None


@lru_cache(maxsize=64)
def _judge_origin(origin: str) -> Origin:
    return judge(origin)
