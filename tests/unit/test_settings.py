"""Connection parsing: defaults, accepted spellings, and clear errors that name the connection."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_odc.exceptions import OdcConfigError
from airflow_provider_odc.settings import OdcConnectionSettings


@dataclass
class Conn:
    conn_id: str = "odc_test"
    host: str | None = "acme.outsystems.dev"
    login: str | None = "client-id"
    password: str | None = "s3cr3t+/=&"
    port: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def extra_dejson(self) -> dict[str, Any]:
        return self.extra


def test_defaults_for_a_bare_connection() -> None:
    settings = OdcConnectionSettings.from_connection(Conn())
    assert settings.origin == "https://acme.outsystems.dev"
    assert (settings.client_id, settings.client_secret) == ("client-id", "s3cr3t+/=&")
    assert settings.timeout == 60 and settings.verify is True and settings.refresh_margin == 300
    assert settings.cache_mode == "variable" and settings.cache_secret is None and settings.max_retries == 3


def test_secret_is_not_in_repr() -> None:
    settings = OdcConnectionSettings.from_connection(Conn(extra={"cache_secret": "another-secret-value"}))
    assert "s3cr3t" not in repr(settings) and "another-secret-value" not in repr(settings)


@pytest.mark.parametrize(
    ("host", "port", "origin"),
    [
        ("https://acme.outsystems.dev/", None, "https://acme.outsystems.dev"),
        ("ACME.outsystems.dev", None, "https://acme.outsystems.dev"),
        ("https://acme.outsystems.dev:443", None, "https://acme.outsystems.dev"),
        ("http://127.0.0.1:8080", None, "http://127.0.0.1:8080"),
        ("http://localhost", 9000, "http://localhost:9000"),
        ("acme.outsystems.dev", 8443, "https://acme.outsystems.dev:8443"),
    ],
)
def test_host_spellings(host: str, port: int | None, origin: str) -> None:
    assert OdcConnectionSettings.from_connection(Conn(host=host, port=port)).origin == origin


def test_react_form_nulls_and_string_numbers() -> None:
    """The Airflow 3 form stores every conn-field, empty ones as null, numbers sometimes as strings."""
    extra = {
        "timeout": "15",
        "verify": None,
        "ca_bundle_path": None,
        "refresh_margin_seconds": "600",
        "cache_mode": None,
        "cache_secret": "",
        "max_retries": "5",
    }
    settings = OdcConnectionSettings.from_connection(Conn(extra=extra))
    assert settings.timeout == 15 and settings.refresh_margin == 600 and settings.max_retries == 5
    assert settings.verify is True and settings.cache_mode == "variable" and settings.cache_secret is None


#: A path that exists wherever the tests run: settings only check that a CA bundle path exists.
CA = str(Path(__file__))


@pytest.mark.parametrize(
    ("extra", "verify"),
    [
        ({"verify": False}, False),
        ({"verify": "false"}, False),
        ({"verify": CA}, CA),
        ({"ca_bundle_path": CA}, CA),
        ({"verify": True, "ca_bundle_path": CA}, CA),
        ({"verify": False, "ca_bundle_path": CA}, False),
    ],
)
def test_verify_options(extra: dict[str, Any], verify: bool | str) -> None:
    assert OdcConnectionSettings.from_connection(Conn(extra=extra)).verify == verify


@pytest.mark.parametrize(
    ("conn", "words"),
    [
        (Conn(host=""), "Portal domain (host) is empty"),
        (Conn(host="http://acme.outsystems.dev"), "plain http"),
        (Conn(host="https://acme.outsystems.dev/apps/x"), "has a path"),
        (Conn(host="ftp://acme.outsystems.dev"), "not a valid domain"),
        (Conn(login=" "), "Client ID (login) is empty"),
        (Conn(password=None), "Client secret (password) is empty"),
        (Conn(extra={"timeout": "soon"}), "extra 'timeout' is 'soon'; it must be a number"),
        (Conn(extra={"timeout": 0}), "it must be a number from 1 to 300"),
        (Conn(extra={"max_retries": 50}), "a whole number from 0 to 10"),
        (Conn(extra={"cache_mode": "redis"}), "use one of variable, memory, off"),
        (Conn(extra={"verify": 3}), "extra 'verify'"),
        # Numbers in name only: not finite, absurdly large, booleans, fractions where counts are due.
        (Conn(extra={"refresh_margin_seconds": float("nan")}), "extra 'refresh_margin_seconds' is nan"),
        (Conn(extra={"refresh_margin_seconds": "nan"}), "a number from 0 to 21600"),
        (Conn(extra={"refresh_margin_seconds": 86400}), "a number from 0 to 21600"),
        (Conn(extra={"timeout": 1e12}), "extra 'timeout' is 1000000000000.0; it must be a number from 1 to 300"),
        (Conn(extra={"timeout": float("inf")}), "extra 'timeout' is inf"),
        (Conn(extra={"timeout": "-inf"}), "extra 'timeout' is '-inf'"),
        (Conn(extra={"timeout": True}), "extra 'timeout' is True"),
        (Conn(extra={"timeout": [5]}), "extra 'timeout' is [5]"),
        (Conn(extra={"timeout": 10**400}), "extra 'timeout' is 1000000000"),
        (Conn(extra={"max_retries": float("nan")}), "extra 'max_retries' is nan; it must be a whole number"),
        (Conn(extra={"max_retries": 2.5}), "extra 'max_retries' is 2.5; it must be a whole number from 0 to 10"),
        (Conn(extra={"max_retries": False}), "extra 'max_retries' is False"),
        (Conn(extra={"cache_secret": 12345}), "extra 'cache_secret' must be text, not int"),
        (Conn(extra={"cache_secret": "k" * 5000}), "extra 'cache_secret' is 5000 characters long"),
        (Conn(extra={"cache_mode": ["variable"]}), "extra 'cache_mode' is ['variable']"),
        (Conn(extra={"ca_bundle_path": ["x"]}), "extra 'ca_bundle_path' is ['x']; it must be a path (text)"),
        (Conn(extra={"ca_bundle_path": "/no/such/ca.pem"}), "extra 'ca_bundle_path' is '/no/such/ca.pem', which is"),
        (Conn(extra={"verify": "/no/such/ca.pem"}), "extra 'verify' is '/no/such/ca.pem', which is not a file"),
        (Conn(extra={"verify": 1}), "extra 'verify' is 1"),
        (Conn(port=70000), "Port 70000 is out of range; leave it empty or give 1..65535"),
        (Conn(port=-1), "Port -1 is out of range"),
        (Conn(port="https"), "Port 'https' is not a whole number"),  # type: ignore[arg-type]
        (Conn(port=True), "Port True is not a whole number"),
        (Conn(login=42), "Client ID (login) must be text, not int"),  # type: ignore[arg-type]
        (Conn(password="p" * 5000), "Client secret (password) is 5000 characters long"),
    ],
)
def test_bad_values_name_the_connection_and_the_field(conn: Conn, words: str) -> None:
    with pytest.raises(OdcConfigError) as caught:
        OdcConnectionSettings.from_connection(conn)
    assert str(caught.value).startswith("ODC connection 'odc_test': ")
    assert words in str(caught.value)
    assert "s3cr3t" not in str(caught.value)


def test_port_zero_means_no_port() -> None:
    """What some forms store for an empty Port (Airflow 3.3.2's Test button sends it for a portless connection)."""
    assert OdcConnectionSettings.from_connection(Conn(port=0)).origin == "https://acme.outsystems.dev"
    assert OdcConnectionSettings.from_connection(Conn(port="8443")).origin == "https://acme.outsystems.dev:8443"  # type: ignore[arg-type]


def test_a_refused_value_is_quoted_short() -> None:
    with pytest.raises(OdcConfigError) as caught:
        OdcConnectionSettings.from_connection(Conn(extra={"timeout": "9" * 100_000}))
    assert len(str(caught.value)) < 250 and "extra 'timeout'" in str(caught.value)


def test_cache_mode_is_read_case_insensitively() -> None:
    assert OdcConnectionSettings.from_connection(Conn(extra={"cache_mode": "Memory"})).cache_mode == "memory"


#: A secret written in hex digits, like the identity itself: a digest could contain a piece of it.
HEX_SECRET = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"


def test_cache_identity_changes_with_the_secret_and_hides_it() -> None:
    one = OdcConnectionSettings.from_connection(Conn(password=HEX_SECRET))
    again = OdcConnectionSettings.from_connection(Conn(password=HEX_SECRET))
    rotated = OdcConnectionSettings.from_connection(Conn(password=HEX_SECRET[::-1]))
    sealed_apart = OdcConnectionSettings.from_connection(Conn(password=HEX_SECRET, extra={"cache_secret": "c" * 20}))
    assert one.cache_identity == again.cache_identity
    assert len({one.cache_identity, rotated.cache_identity, sealed_apart.cache_identity}) == 3
    # One-way: no run of six characters of a secret shows in the identity.
    for settings, secret in ((one, HEX_SECRET), (sealed_apart, HEX_SECRET), (sealed_apart, "c" * 20)):
        assert re.fullmatch("[0-9a-f]{16}", settings.cache_identity)
        assert not any(secret[i : i + 6] in settings.cache_identity for i in range(len(secret) - 5))
