"""Refresh arithmetic on a controlled clock, Retry-After parsing, and a token endpoint's refusal."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from airflow_provider_odc.auth.token import AccessToken
from airflow_provider_odc.hooks.odc import OdcHook
from airflow_provider_odc.retries import parse_retry_after, retryable_status
from devtools.servers import LoopbackServer, MisbehavingRoutes

T0 = 1_800_000_000.0
ODC_LIFETIME = 43_200.0


def odc_token(lifetime: float = ODC_LIFETIME) -> AccessToken:
    return AccessToken(value="tok-abcdef", token_type="Bearer", expires_at=T0 + lifetime, issued_at=T0)


def test_reused_until_the_margin_before_expiry() -> None:
    token = odc_token()
    margin = 300
    assert not token.needs_refresh(T0, margin)
    assert not token.needs_refresh(T0 + ODC_LIFETIME - 301, margin)
    assert token.needs_refresh(T0 + ODC_LIFETIME - 300, margin)
    assert token.needs_refresh(T0 + ODC_LIFETIME + 1, margin)
    assert not token.is_expired(T0 + ODC_LIFETIME - 1) and token.is_expired(T0 + ODC_LIFETIME)


def test_margin_never_exceeds_half_the_lifetime() -> None:
    short = odc_token(lifetime=60)
    assert short.refresh_due_at(margin=300) == T0 + 30
    assert not short.needs_refresh(T0 + 29, margin=300)
    assert short.needs_refresh(T0 + 30, margin=300)


def test_fingerprint_and_repr_do_not_reveal_the_token() -> None:
    # An opaque token in hex digits, longer than the fingerprint: a cut of it would look like one.
    value = "4f1c2a9be07d3385c6a1f0e2d94b7c5a18e3f6d2"
    token = AccessToken(value=value, token_type="Bearer", expires_at=T0 + ODC_LIFETIME, issued_at=T0)
    assert value not in repr(token) and value[:8] not in repr(token)
    fingerprint = token.fingerprint
    assert len(fingerprint) == 12 and fingerprint not in value
    assert not any(value[i : i + 6] in fingerprint for i in range(len(value) - 5)), "a piece of the token"
    # Tokens that share their first and last twelve characters still get different names.
    twin = AccessToken(value=value[:12] + "0" * 16 + value[-12:], token_type="Bearer", expires_at=0, issued_at=0)
    assert twin.fingerprint != fingerprint
    assert token.fingerprint == fingerprint, "the same token always gets the same name"


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("3", 3.0), ("0", 0.0), (" 2.5 ", 2.5), ("-4", 0.0), ("100000", 120.0), ("soon", None), ("", None), (None, None)],
)
def test_retry_after_seconds(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=T0) == seconds


def test_retry_after_http_date() -> None:
    moment = datetime.fromtimestamp(T0 + 7, tz=timezone.utc)
    assert parse_retry_after(format_datetime(moment, usegmt=True), now=T0) == pytest.approx(7.0)
    past = datetime.fromtimestamp(T0 - 60, tz=timezone.utc)
    assert parse_retry_after(format_datetime(past, usegmt=True), now=T0) == 0.0
    far = datetime.fromtimestamp(T0 + 3600, tz=timezone.utc)
    assert parse_retry_after(format_datetime(far, usegmt=True), now=T0, cap=60) == 60.0


@pytest.mark.parametrize(
    ("status", "idempotent", "retry"),
    [
        (429, False, True),
        (429, True, True),
        (503, True, True),
        (503, False, False),
        (500, False, False),
        (404, True, False),
    ],
)
def test_which_statuses_are_retried(status: int, idempotent: bool, retry: bool) -> None:
    assert retryable_status(status, idempotent=idempotent) is retry


@pytest.mark.parametrize("encode", [str, quote_plus, lambda value: quote(value, safe="")])
def test_an_echoed_secret_is_hidden_as_sent_or_url_encoded(encode: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A token endpoint that quotes the client_secret form field back, decoded or still encoded."""
    secret = "s3cret with/slash+plus=&"
    body = {"error": "invalid_client", "error_description": f"bad client_secret {encode(secret)}"}
    with LoopbackServer(wrap=MisbehavingRoutes) as portal:
        assert isinstance(portal.app, MisbehavingRoutes)
        portal.app.answer(portal.state.token_path, 401, json.dumps(body).encode())
        connection = portal.connection(password=secret, extra={"cache_mode": "off"})
        monkeypatch.setenv("AIRFLOW_CONN_ODC_DEFAULT", json.dumps(connection))
        ok, message = OdcHook().test_connection()  # Step 2 of 2 (token request) fails
    assert not ok
    assert "invalid_client" in message and "***" in message
    assert secret not in message and quote_plus(secret) not in message and quote(secret, safe="") not in message
