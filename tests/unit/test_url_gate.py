"""The URL gate against the parsers that connect: a differential test over every ASCII character and a
set of Unicode look-alikes, inserted at each boundary of a URL.

For each URL, urlsplit, urllib3 (what requests connects with, on the URL as given and as requests
prepares it) and httpx each say which (scheme, host, port) they would connect to. Wherever they
disagree, the gate must refuse; wherever the gate accepts, they all agree with the connection's origin.
The parsers are asked here directly, not through the gate's own helpers, so the test does not trust
the code it tests.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import requests
from urllib3.util import parse_url

from airflow_provider_odc.auth.urls import UrlRefused, display_url, endpoint_url, on_origin, origin_of
from airflow_provider_odc.exceptions import OdcConfigError
from airflow_provider_odc.settings import OdcConnectionSettings

ORIGIN = "https://acme.outsystems.dev:8443"
WANTED = ("https", "acme.outsystems.dev", 8443)

ASCII = [chr(code) for code in range(0x80)]
LOOKALIKES = [
    "\uff0f",  # FULLWIDTH SOLIDUS
    "\u2215",  # DIVISION SLASH
    "\u2044",  # FRACTION SLASH
    "\u29f8",  # BIG SOLIDUS
    "\ufe68",  # SMALL REVERSE SOLIDUS
    "\uff3c",  # FULLWIDTH REVERSE SOLIDUS
    "\u2216",  # SET MINUS
    "\uff20",  # FULLWIDTH COMMERCIAL AT
    "\ufe6b",  # SMALL COMMERCIAL AT
    "\u3002",  # IDEOGRAPHIC FULL STOP
    "\uff0e",  # FULLWIDTH FULL STOP
    "\uff61",  # HALFWIDTH IDEOGRAPHIC FULL STOP
    "\u2024",  # ONE DOT LEADER
    "\ufe52",  # SMALL FULL STOP
    "\uff1a",  # FULLWIDTH COLON
    "\ufe55",  # SMALL COLON
    "\u2236",  # RATIO
    "\uff03",  # FULLWIDTH NUMBER SIGN
    "\uff1f",  # FULLWIDTH QUESTION MARK
    "\uff05",  # FULLWIDTH PERCENT SIGN
    "\u2100",  # ACCOUNT OF (a/c)
]
INVISIBLE_AND_CASE_TRICKS = [
    "\u00a0",  # NO-BREAK SPACE
    "\u200b",  # ZERO WIDTH SPACE
    "\u200d",  # ZERO WIDTH JOINER
    "\u2028",  # LINE SEPARATOR
    "\u202e",  # RIGHT-TO-LEFT OVERRIDE
    "\ufeff",  # BYTE ORDER MARK
    "\u3000",  # IDEOGRAPHIC SPACE
    "\u212a",  # KELVIN SIGN (lower-cases to k)
    "\u0130",  # LATIN CAPITAL LETTER I WITH DOT ABOVE
    "\u017f",  # LATIN SMALL LETTER LONG S
    "\uff45",  # FULLWIDTH LATIN SMALL LETTER E
    "\u0435",  # CYRILLIC SMALL LETTER IE (looks like e)
]
CHARACTERS = ASCII + LOOKALIKES + INVISIBLE_AND_CASE_TRICKS

# {c} is where the character goes; evil.example is where a misread URL would send the token.
BOUNDARIES = {
    "scheme": [
        "{c}https://acme.outsystems.dev:8443/x",
        "http{c}s://acme.outsystems.dev:8443/x",
        "https{c}://acme.outsystems.dev:8443/x",
        "https:{c}//acme.outsystems.dev:8443/x",
        "https:/{c}/acme.outsystems.dev:8443/x",
        "https:{c}//evil.example/x",
    ],
    "userinfo": [
        "https://evil.example{c}@acme.outsystems.dev:8443/x",
        "https://{c}@acme.outsystems.dev:8443/x",
        "https://acme.outsystems.dev:8443{c}@evil.example/x",
        "https://evil.example:8443{c}@acme.outsystems.dev:8443/x",
    ],
    "host": [
        "https://{c}acme.outsystems.dev:8443/x",
        "https://acme{c}.outsystems.dev:8443/x",
        "https://acme.outsystems{c}dev:8443/x",
        "https://acme.outsystems.dev{c}:8443/x",
        "https://evil.example{c}acme.outsystems.dev:8443/x",
        "https://acme.outsystems.dev{c}evil.example:8443/x",
    ],
    "port": [
        "https://acme.outsystems.dev:{c}8443/x",
        "https://acme.outsystems.dev:84{c}43/x",
        "https://acme.outsystems.dev:8443{c}/x",
        "https://acme.outsystems.dev:8443{c}evil.example/x",
    ],
    "path-start": [
        "https://acme.outsystems.dev:8443/{c}/evil.example/x",
        "https://acme.outsystems.dev:8443/{c}x",
        "https://acme.outsystems.dev:8443{c}",
    ],
}
RELATIVE = ["{c}/api/x", "{c}//evil.example/x", "/{c}/evil.example/x", "/{c}evil.example/x", "{c}evil.example/x"]

Where = tuple[str, str, int] | None


def _where(scheme: str | None, host: str | bytes | None, port: int | None) -> Where:
    name = (host.decode("ascii") if isinstance(host, bytes) else host or "").strip("[]").lower()
    scheme = (scheme or "").lower()
    if not name or scheme not in ("http", "https"):
        return None
    return scheme, name, port if port is not None else {"http": 80, "https": 443}[scheme]


def parser_views(url: str) -> dict[str, Where]:
    """What each parser would connect to (None: it cannot parse the URL or finds no host)."""
    views: dict[str, Where] = {}
    try:
        parts = urlsplit(url)
        views["urlsplit"] = _where(parts.scheme, parts.hostname, parts.port)
    except ValueError:
        views["urlsplit"] = None
    try:
        parsed = parse_url(url)
        views["urllib3"] = _where(parsed.scheme, parsed.host, parsed.port)
    except ValueError:
        views["urllib3"] = None
    try:
        prepared = requests.Request("GET", url).prepare()
        sent = parse_url(prepared.url or "")
        views["requests"] = _where(sent.scheme, sent.host, sent.port)
    except (ValueError, requests.RequestException):
        views["requests"] = None
    try:
        target = httpx.URL(url)
        views["httpx"] = _where(target.scheme, target.raw_host, target.port)
    except (httpx.InvalidURL, ValueError):
        views["httpx"] = None
    return views


def gate_accepts(url: str) -> bool:
    try:
        on_origin(url, ORIGIN)
    except UrlRefused:
        return False
    return True


def must_refuse_outright(char: str) -> bool:
    """Characters the gate refuses anywhere, whatever the parsers make of them."""
    category = unicodedata.category(char)
    return char == "\\" or char.isspace() or category[0] in "CZ" or char in LOOKALIKES


@pytest.mark.parametrize("boundary", list(BOUNDARIES))
def test_where_parsers_disagree_the_gate_refuses(boundary: str) -> None:
    problems: list[str] = []
    disagreements = accepted = 0
    for template in BOUNDARIES[boundary]:
        for char in CHARACTERS:
            url = template.format(c=char)
            views = parser_views(url)
            disagree = len(set(views.values())) > 1
            disagreements += disagree
            if not gate_accepts(url):
                continue
            accepted += 1
            if disagree:
                problems.append(f"accepted {url!r}, which the parsers read differently: {views}")
            elif set(views.values()) != {WANTED}:
                problems.append(f"accepted {url!r}, but the parsers connect to {views}")
            if must_refuse_outright(char):
                problems.append(f"accepted {url!r} with U+{ord(char):04X}")
            if "@" in authority_of(url):
                problems.append(f"accepted userinfo in {url!r}")
    assert problems == [], "\n".join(problems[:20])
    # The run is not vacuous: it meets URLs the parsers read differently, and URLs that are fine.
    assert disagreements > 0
    assert accepted > 0 or boundary == "scheme"  # no character there leaves the origin as it is


def authority_of(url: str) -> str:
    return re.split(r"[/?#]", url.partition("//")[2], maxsplit=1)[0]


def test_the_reproduced_case_is_refused_and_was_really_a_disagreement() -> None:
    url = "https://evil.example\\@acme.outsystems.dev:8443/x"
    views = parser_views(url)
    assert views["urlsplit"] == WANTED and views["urllib3"] == ("https", "evil.example", 443)
    with pytest.raises(UrlRefused, match="backslash"):
        on_origin(url, ORIGIN)


@pytest.mark.parametrize("template", RELATIVE)
def test_a_relative_endpoint_stays_a_path_on_the_origin(template: str) -> None:
    problems: list[str] = []
    for char in CHARACTERS:
        endpoint = template.format(c=char)
        try:
            url = endpoint_url(endpoint, ORIGIN)
        except UrlRefused:
            continue
        views = parser_views(url)
        if set(views.values()) != {WANTED}:
            problems.append(f"{endpoint!r} became {url!r}, which the parsers send to {views}")
        if endpoint.startswith("//") or must_refuse_outright(char):
            problems.append(f"{endpoint!r} was accepted")
    assert problems == [], "\n".join(problems[:20])
    assert endpoint_url("/api/x", ORIGIN) == ORIGIN + "/api/x"
    assert endpoint_url("api/x", ORIGIN) == ORIGIN + "/api/x"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://evil.example\\@acme.outsystems.dev:8443/x", "backslash"),
        ("https://acme.outsystems.dev:8443\\evil.example/x", "backslash"),
        ("https://user:pw@acme.outsystems.dev:8443/x", "userinfo"),
        ("https://acme.outsystems.dev%2F@evil.example/x", "userinfo"),
        ("https://acme.outsystems.dev%2Fevil.example:8443/x", "percent-encoding in the host"),
        ("https://acme.outsystems.dev:8443/x%5C", "percent-encoded control character or backslash"),
        ("https://acme.outsystems.dev:8443/x%0d%0aHost:evil", "percent-encoded control character"),
        ("https://acme.outsystems.dev\uff0fevil.example:8443/x", "look-alike"),
        ("https://acme\u3002outsystems.dev:8443/x", "look-alike"),
        ("https://evil.example\uff20acme.outsystems.dev:8443/x", "look-alike"),
        ("https://evil.example\ufe6bacme.outsystems.dev:8443/x", "look-alike"),
        ("https://acme.outsystems.dev\u2215evil.example:8443/x", "look-alike"),
        ("https://acme.outsystems.dev:8443/\u00e9", "non-ASCII characters after the host"),
        ("https://\u212acme.outsystems.dev:8443/x", "IDNA"),
        ("https://acme.outsystems.dev:8443 /x", "whitespace"),
        ("https://acme.outsystems.dev\u200b:8443/x", "invisible"),
        ("https://acme.outsystems.dev:+8443/x", "port is not a number"),
        ("https://acme.outsystems.dev:8443:1/x", "port is not a number"),
        ("https://acme.outsystems.dev!:8443/x", "host contains"),
        ("ftp://acme.outsystems.dev:8443/x", "scheme is not http or https"),
        ("https:acme.outsystems.dev:8443/x", "not an absolute http(s) URL"),
        ("https://acme.outsystems.dev:443/x", "it goes to https://acme.outsystems.dev"),
        ("https://acme.outsystems.dev.evil.example:8443/x", "it goes to"),
        ("http://acme.outsystems.dev:8443/x", "it goes to http://"),
    ],
)
def test_ambiguous_or_foreign_urls_are_refused_with_a_reason(url: str, reason: str) -> None:
    with pytest.raises(UrlRefused, match=reason.replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")):
        on_origin(url, ORIGIN)


@pytest.mark.parametrize(
    "url",
    [
        "https://acme.outsystems.dev:8443/x",
        "HTTPS://ACME.outsystems.dev:8443/api/x?offset=2&limit=10",
        "https://acme.outsystems.dev:08443/x",
        "https://acme.outsystems.dev:8443",
        "https://acme.outsystems.dev:8443/api/x?next=https://evil.example/%2F",
    ],
)
def test_plain_urls_on_the_origin_pass_unchanged(url: str) -> None:
    assert on_origin(url, ORIGIN) == url


def test_origins_are_what_the_transports_connect_to() -> None:
    assert origin_of("https://ACME.outsystems.dev:443/") == "https://acme.outsystems.dev"
    assert origin_of("http://[::1]:8080/x") == "http://[::1]:8080"
    assert origin_of("https://b\u00fccher.example/") == "https://xn--bcher-kva.example"  # as urllib3 and httpx send it
    assert origin_of("https://xn--bcher-kva.example/") == "https://xn--bcher-kva.example"
    with pytest.raises(ValueError):
        origin_of("https://evil.example\\@acme.outsystems.dev/")


def test_display_hides_passwords_queries_and_secrets_and_shows_lookalikes() -> None:
    shown = display_url("https://user:hunter2@acme.outsystems.dev/x?access_token=abc#frag", ["s3cr3t"])
    assert "hunter2" not in shown and "abc" not in shown and "user:***@" in shown
    assert display_url("https://acme.outsystems.dev/s3cr3t/x", ["s3cr3t"]) == "'https://acme.outsystems.dev/***/x'"
    assert "\\uff0f" in display_url("https://acme.outsystems.dev\uff0fevil")
    assert len(display_url("https://acme.outsystems.dev/" + "a" * 1000)) <= 200


@dataclass
class Conn:
    host: str | None
    port: int | None = None
    conn_id: str = "odc_test"
    login: str | None = "client-id"
    password: str | None = "s3cr3t+/=&"
    extra_dejson: dict[str, Any] = field(default_factory=dict)


@pytest.mark.parametrize(
    ("host", "port", "words"),
    [
        ("https://evil.example\\@acme.outsystems.dev", None, "backslash"),
        ("evil.example\\@acme.outsystems.dev", None, "backslash"),
        ("user:pw@acme.outsystems.dev", None, "userinfo"),
        ("acme.outsystems.dev\uff0fevil.example", None, "look-alike"),
        ("acme\u3002outsystems.dev", None, "look-alike"),
        ("acme.outsystems\t.dev", 8443, "whitespace"),
        ("\u212acme.outsystems.dev", None, "IDNA"),
        ("acme.outsystems.dev%2F", None, "percent-encoding"),
        ("acme.outsystems.dev", -1, "Port -1 is out of range"),
    ],
)
def test_the_connection_origin_is_judged_by_the_same_gate(host: str, port: int | None, words: str) -> None:
    with pytest.raises(OdcConfigError) as caught:
        OdcConnectionSettings.from_connection(Conn(host=host, port=port))
    message = str(caught.value)
    assert message.startswith("ODC connection 'odc_test': Portal domain (host)") or message.startswith(
        "ODC connection 'odc_test': Port"
    )
    assert words in message and "s3cr3t" not in message


def test_a_non_ascii_portal_domain_becomes_the_name_the_transports_connect_to() -> None:
    settings = OdcConnectionSettings.from_connection(Conn(host="b\u00fccher.example"))
    assert settings.origin == "https://xn--bcher-kva.example"
    assert endpoint_url("/api/x", settings.origin) == "https://xn--bcher-kva.example/api/x"
