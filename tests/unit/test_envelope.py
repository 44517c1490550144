"""The sealed token: round trip, and every way a stored value can be unusable."""

from __future__ import annotations

import base64
import json

import pytest

from airflow_provider_odc.auth.token import AccessToken
from airflow_provider_odc.cache.envelope import CachedToken, EnvelopeCodec, EnvelopeError

TOKEN_VALUE = "eyJhbGciOiJIUzI1NiJ9.payload-of-the-access-token.signature"
SECRET = "client-secret+/=&"
IDENTITY = {
    "origin": "https://acme.outsystems.dev",
    "client_id": "client-id",
    "conn_id": "odc_default",
    "variable_key": "odc_access_token__odc_default",
}


def codec(**overrides: str) -> EnvelopeCodec:
    fields = {**IDENTITY, **overrides}
    key_material = fields.pop("key_material", SECRET)
    return EnvelopeCodec.for_connection(key_material=key_material, **fields)


def cached() -> CachedToken:
    token = AccessToken(value=TOKEN_VALUE, token_type="Bearer", expires_at=2_000_043_200.0, issued_at=2_000_000_000.0)
    return CachedToken(
        token=token, token_endpoint="https://acme.outsystems.dev/auth/realms/r/protocol/openid-connect/token"
    )


def test_round_trip_and_nothing_in_clear() -> None:
    sealed = codec().seal(cached())
    assert TOKEN_VALUE not in sealed and SECRET not in sealed
    assert "payload-of-the-access-token" not in sealed
    envelope = json.loads(sealed)
    assert envelope["v"] == 1 and envelope["alg"] == "A256GCM"
    assert codec().open(sealed) == cached()


def test_each_seal_uses_a_fresh_nonce() -> None:
    assert codec().seal(cached()) != codec().seal(cached())


@pytest.mark.parametrize(
    ("other", "reason"),
    [
        ({"key_material": "rotated-secret"}, "foreign"),
        ({"client_id": "another-client"}, "foreign"),
        ({"origin": "https://other.outsystems.dev"}, "foreign"),
        ({"conn_id": "odc_other"}, "tampered"),
        ({"variable_key": "odc_access_token__odc_other"}, "tampered"),
    ],
)
def test_value_from_another_identity_does_not_open(other: dict[str, str], reason: str) -> None:
    sealed = codec(**other).seal(cached())
    with pytest.raises(EnvelopeError) as caught:
        codec().open(sealed)
    assert caught.value.reason == reason


def test_separate_cache_secret_survives_client_secret_rotation() -> None:
    """The hook's codec (``envelope_codec_for``) before and after the client secret changes: with a
    ``cache_secret`` the token sealed under the old client secret still opens; without, it does not."""
    from airflow_provider_odc.hooks.odc import envelope_codec_for
    from airflow_provider_odc.settings import OdcConnectionSettings

    def settings(client_secret: str, cache_secret: str | None) -> OdcConnectionSettings:
        return OdcConnectionSettings(
            conn_id=IDENTITY["conn_id"],
            origin=IDENTITY["origin"],
            client_id=IDENTITY["client_id"],
            client_secret=client_secret,
            cache_secret=cache_secret,
        )

    before, after = "client-secret-before-rotation", "client-secret-after-rotation"
    sealed = envelope_codec_for(settings(before, "cache-secret-value")).seal(cached())
    assert envelope_codec_for(settings(after, "cache-secret-value")).open(sealed) == cached()

    sealed = envelope_codec_for(settings(before, None)).seal(cached())
    with pytest.raises(EnvelopeError) as caught:
        envelope_codec_for(settings(after, None)).open(sealed)
    assert caught.value.reason == "foreign"


def _flip_one_byte(sealed: str) -> str:
    envelope = json.loads(sealed)
    raw = bytearray(base64.urlsafe_b64decode(envelope["ct"] + "=" * (-len(envelope["ct"]) % 4)))
    raw[5] ^= 0x01
    envelope["ct"] = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    return json.dumps(envelope)


def _truncate_ciphertext(sealed: str) -> str:
    envelope = json.loads(sealed)
    envelope["ct"] = envelope["ct"][:-6]
    return json.dumps(envelope)


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (_flip_one_byte, "tampered"),
        (_truncate_ciphertext, "tampered"),
        (lambda sealed: sealed[: len(sealed) // 2], "malformed"),
        (lambda sealed: "not json at all", "malformed"),
        (lambda sealed: "[1, 2, 3]", "malformed"),
        (lambda sealed: sealed.replace('"v":1', '"v":99'), "version"),
        (lambda sealed: TOKEN_VALUE, "malformed"),
    ],
)
def test_damaged_values_are_refused(mangle, reason: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(EnvelopeError) as caught:
        codec().open(mangle(codec().seal(cached())))
    assert caught.value.reason == reason
    assert TOKEN_VALUE not in str(caught.value)
