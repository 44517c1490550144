"""The scrubber: any secret, in any spelling a server could echo it in, mixed or cut short, is removed."""

from __future__ import annotations

import base64
import html
import json
import re
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_odc.cache.envelope import EnvelopeCodec
from airflow_provider_odc.scrub import PARTIAL_PREFIX, REDACTED, scrub

SECRET = "AbC/d+e=f&g h\u00e9\U0001f600xyz"
CLIENT = "client-1"


def _lower(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda match: match.group().lower(), text)


SPELLINGS = {
    "plain": lambda s: s,
    "percent": lambda s: quote(s, safe=""),
    "percent-lower": lambda s: _lower(quote(s, safe="")),
    "form": quote_plus,
    "form-lower": lambda s: _lower(quote_plus(s)),
    "percent-twice": lambda s: quote(quote(s, safe=""), safe=""),
    "json-escaped-slash": lambda s: json.dumps(s, ensure_ascii=False)[1:-1].replace("/", "\\/"),
    "json-ascii": lambda s: json.dumps(s)[1:-1],
    "json-unicode-upper": lambda s: "".join(f"\\u{ord(c):04X}" if ord(c) < 0x10000 else c for c in s),
    "html": html.escape,
    "html-decimal": lambda s: "".join(f"&#{ord(c)};" for c in s),
    "html-hex": lambda s: "".join(f"&#x{ord(c):x};" for c in s),
    "half-percent-half-plain": lambda s: quote(s[: len(s) // 2], safe="") + s[len(s) // 2 :],
    "basic-auth": lambda s: base64.b64encode(f"{CLIENT}:{s}".encode()).decode(),
    "basic-auth-form-encoded": lambda s: base64.b64encode(f"{CLIENT}:{quote_plus(s)}".encode()).decode(),
    "basic-auth-unpadded-urlsafe": lambda s: base64.urlsafe_b64encode(f"{CLIENT}:{s}".encode()).decode().rstrip("="),
}


@pytest.mark.parametrize("spelling", SPELLINGS.values(), ids=SPELLINGS.keys())
def test_every_spelling_is_removed(spelling: object) -> None:
    echoed = spelling(SECRET)  # type: ignore[operator]
    assert scrub(f"before {echoed} after", [SECRET], basic=(CLIENT, SECRET)) == f"before {REDACTED} after"


@settings(max_examples=300, deadline=None)
@given(
    secret=st.text(min_size=PARTIAL_PREFIX, max_size=60).filter(lambda s: s.strip() == s and "\x00" not in s),
    spelling=st.sampled_from(sorted(SPELLINGS)),
    before=st.text(max_size=40),
    after=st.text(max_size=40),
)
def test_any_secret_in_any_spelling(secret: str, spelling: str, before: str, after: str) -> None:
    echoed = SPELLINGS[spelling](secret)  # type: ignore[operator]
    result = scrub(before + echoed + after, [secret], basic=(CLIENT, secret), limit=10_000)
    assert echoed not in result and secret not in result


def test_a_secret_cut_short_by_the_server_is_removed_from_its_start() -> None:
    secret = "0123456789abcdefghij"
    assert scrub(f"echo: {secret[:12]}…", [secret]) == f"echo: {REDACTED}…"
    assert scrub(f"echo: {quote(secret[:9])}]", [secret]) == f"echo: {REDACTED}]"
    assert scrub(f"echo: {secret[:7]}", [secret]) == f"echo: {secret[:7]}", "fewer than 8 characters stay"


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("Authorization: Bearer abcdefghijkl.mnop", "Authorization: Bearer ***"),
        ("header authorization=bearer%20abcdefghijkl", "header authorization=bearer ***"),
        ('{"access_token": "zzzzzzzz", "x": 1}', '{"access_token": "***", "x": 1}'),
        ("client_secret=abc%2Bdef&grant_type=client_credentials", "client_secret=***&grant_type=client_credentials"),
        ("tok eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_nature end", "tok *** end"),
        ("cut eyJhbGciOiJIUzI1NiJ9.eyJzdW", "cut ***"),
        ("two\nlines\r\x1b[31m", "two lines [31m"),
    ],
)
def test_unknown_tokens_and_control_characters(text: str, kept: str) -> None:
    assert scrub(text) == kept


def test_each_field_is_cut_to_its_limit_after_scrubbing() -> None:
    text = "x" * 290 + SECRET + "y" * 10_000_000
    result = scrub(text, [SECRET], limit=300)
    assert len(result) == 300 and result.endswith("...") and REDACTED in result


def test_plain_words_stay() -> None:
    text = "Basic settings of the app are invalid: field 'name' must not be empty (password policy)."
    assert scrub(text, ["the-secret-value"]) == text


def test_envelope_codec_repr_shows_no_key_material() -> None:
    codec = EnvelopeCodec.for_connection(
        key_material="s3cr3t", origin="https://acme.outsystems.dev", client_id="c", conn_id="odc", variable_key="v"
    )
    shown = repr(codec) + str(codec)
    assert codec.key_id in shown
    for form in (repr(codec.key), codec.key.hex(), base64.b64encode(codec.key).decode(), "s3cr3t"):
        assert form not in shown


def test_an_escaped_secret_right_after_a_literal_backslash_is_removed() -> None:
    """Found by the property test: a backslash before ``\\u001b...`` made the one decoding pass read ``\\\\``
    first, so the JSON spelling of the secret was never decoded; it is removed as it stands."""
    secret = "\x1b0000000"
    escaped = json.dumps(secret)[1:-1]
    result = scrub("\\" + escaped + "x", [secret], limit=1000)
    assert escaped not in result and secret not in result and result.endswith(f"{REDACTED}x")
