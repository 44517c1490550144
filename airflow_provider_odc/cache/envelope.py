"""Seal and open the cached token: AES-256-GCM in a small, versioned JSON envelope.

ODC asks clients to keep the token encrypted at rest. The key is derived with HKDF-SHA256 from the
client secret (or the connection's separate ``cache_secret``), bound to the portal origin and client
id; the associated data binds the ciphertext to the Variable key and the connection identity. So a
value copied from another connection, written with a rotated secret, or altered in any byte does not
open: the caller treats that as a cache miss. No Airflow imports.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass, field
from enum import Enum

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from airflow_provider_odc.auth.token import AccessToken

ENVELOPE_VERSION = 1
ALGORITHM = "A256GCM"
_HKDF_SALT = b"airflow-provider-odc/token-cache/v1"
_NONCE_BYTES = 12


class EnvelopeFailure(str, Enum):
    """Why a stored value does not open, with what a log line says about it (``text``). Equal to its
    value (``EnvelopeFailure.FOREIGN == "foreign"``)."""

    MALFORMED = ("malformed", "is not a token envelope")
    VERSION = ("version", "was written by another version of the provider")
    FOREIGN = ("foreign", "was encrypted with another key (client secret rotated, or another connection's value)")
    TAMPERED = ("tampered", "failed its integrity check (altered, truncated, or copied from another connection)")

    text: str

    def __new__(cls, value: str, text: str) -> EnvelopeFailure:
        member = str.__new__(cls, value)
        member._value_ = value
        member.text = text
        return member

    def __str__(self) -> str:
        return str.__str__(self)


class EnvelopeError(Exception):
    """The value cannot be opened. ``reason`` is safe to log: which ``EnvelopeFailure``."""

    def __init__(self, reason: EnvelopeFailure) -> None:
        super().__init__(reason.value)
        self.reason = reason


@dataclass(frozen=True)
class CachedToken:
    token: AccessToken
    token_endpoint: str


@dataclass(frozen=True)
class EnvelopeCodec:
    """Seals and opens envelopes for one connection identity. ``repr`` shows the key's one-way ``key_id``,
    never the key: a codec in a log line or a traceback's locals must not hand out the cache's key."""

    key: bytes = field(repr=False)
    associated_data: bytes

    @classmethod
    def for_connection(
        cls, *, key_material: str, origin: str, client_id: str, conn_id: str, variable_key: str
    ) -> EnvelopeCodec:
        key = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=_HKDF_SALT,
            info=f"origin={origin}\nclient_id={client_id}".encode(),
        ).derive(key_material.encode())
        aad = f"v{ENVELOPE_VERSION}\nvariable={variable_key}\nconn_id={conn_id}\norigin={origin}\nclient_id={client_id}"
        return cls(key=key, associated_data=aad.encode())

    def __repr__(self) -> str:
        return f"EnvelopeCodec(key_id={self.key_id!r}, associated_data={self.associated_data!r})"

    @property
    def key_id(self) -> str:
        """A one-way name of the key: tells 'written with another key' apart from 'tampered'."""
        return hashlib.sha256(b"kid:" + self.key).hexdigest()[:16]

    def seal(self, cached: CachedToken) -> str:
        plaintext = json.dumps(
            {
                "access_token": cached.token.value,
                "token_type": cached.token.token_type,
                "expires_at": cached.token.expires_at,
                "issued_at": cached.token.issued_at,
                "token_endpoint": cached.token_endpoint,
            },
            separators=(",", ":"),
        ).encode()
        nonce = os.urandom(_NONCE_BYTES)
        ciphertext = AESGCM(self.key).encrypt(nonce, plaintext, self.associated_data)
        return json.dumps(
            {
                "v": ENVELOPE_VERSION,
                "alg": ALGORITHM,
                "kid": self.key_id,
                "nonce": _b64(nonce),
                "ct": _b64(ciphertext),
            },
            separators=(",", ":"),
        )

    def open(self, value: str) -> CachedToken:
        try:
            envelope = json.loads(value)
        except (TypeError, ValueError):
            raise EnvelopeError(EnvelopeFailure.MALFORMED) from None
        if not isinstance(envelope, dict):
            raise EnvelopeError(EnvelopeFailure.MALFORMED)
        if envelope.get("v") != ENVELOPE_VERSION or envelope.get("alg") != ALGORITHM:
            raise EnvelopeError(EnvelopeFailure.VERSION)
        if envelope.get("kid") != self.key_id:
            raise EnvelopeError(EnvelopeFailure.FOREIGN)
        try:
            nonce = _unb64(envelope["nonce"])
            ciphertext = _unb64(envelope["ct"])
            plaintext = AESGCM(self.key).decrypt(nonce, ciphertext, self.associated_data)
        except (KeyError, TypeError, ValueError, InvalidTag):
            raise EnvelopeError(EnvelopeFailure.TAMPERED) from None
        try:
            payload = json.loads(plaintext)
            token = AccessToken(
                value=str(payload["access_token"]),
                token_type=str(payload["token_type"]),
                expires_at=float(payload["expires_at"]),
                issued_at=float(payload["issued_at"]),
            )
            return CachedToken(token=token, token_endpoint=str(payload["token_endpoint"]))
        except (KeyError, TypeError, ValueError):
            raise EnvelopeError(EnvelopeFailure.MALFORMED) from None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    if not isinstance(text, str):
        raise TypeError("not text")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
