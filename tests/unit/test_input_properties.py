"""Property-based: whatever JSON a connection or a token endpoint holds, the outcome is a valid, bounded
setting or our own error naming the connection and the field, never another exception.

hypothesis generates the values: every JSON type (nan, infinity and 1e308 included, as Python's json
module parses them), numeric-looking strings, huge integers, nested lists and objects.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_odc.auth.client_credentials import token_from_body
from airflow_provider_odc.auth.token import LIFETIME_RANGE
from airflow_provider_odc.exceptions import OdcAuthError, OdcConfigError
from airflow_provider_odc.settings import (
    CACHE_MODES,
    MAX_RETRIES_RANGE,
    MAX_TEXT_LENGTH,
    REFRESH_MARGIN_RANGE,
    TIMEOUT_RANGE,
    OdcConnectionSettings,
)

from .test_settings import CA, Conn

EXTRAS = ("timeout", "verify", "ca_bundle_path", "refresh_margin_seconds", "cache_mode", "cache_secret", "max_retries")
NUMERIC_TEXT = st.sampled_from(
    [
        *("nan", "NaN", "inf", "-Infinity", "Infinity", "1e12", "1e308", "-1", "0", "0.0001", "5", "60", " 300 "),
        *("2.5", "1_0", "0x10", "", "   ", "true", "false", "yes", "off", "variable", "memory", "Memory", CA),
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.integers(min_value=10**300, max_value=10**400)
    | st.builds(lambda: 10**5000)  # no repr (more than 4300 digits): not from JSON, but from a custom secrets backend
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | NUMERIC_TEXT
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
SECRET = "the-client-secret+/=&"


def check_settings(conn: Conn) -> None:
    try:
        result = OdcConnectionSettings.from_connection(conn)
    except OdcConfigError as exc:
        message = str(exc)
        assert message.startswith("ODC connection 'odc_test': "), message
        fields = [f"'{name}'" for name in (conn.extra if isinstance(conn.extra, dict) else {})]
        assert any(name in message for name in [*fields, "Port", "Extra"]), message
        assert SECRET not in message and len(message) < 400, message
        return
    assert math.isfinite(result.timeout) and TIMEOUT_RANGE[0] <= result.timeout <= TIMEOUT_RANGE[1]
    assert math.isfinite(result.refresh_margin)
    assert REFRESH_MARGIN_RANGE[0] <= result.refresh_margin <= REFRESH_MARGIN_RANGE[1]
    assert type(result.max_retries) is int and MAX_RETRIES_RANGE[0] <= result.max_retries <= MAX_RETRIES_RANGE[1]
    assert result.cache_mode in CACHE_MODES
    assert result.cache_secret is None or (isinstance(result.cache_secret, str) and result.cache_secret)
    assert result.cache_secret is None or len(result.cache_secret) <= MAX_TEXT_LENGTH
    assert result.verify in (True, False) or (isinstance(result.verify, str) and Path(result.verify).exists())
    port = result.origin.rsplit(":", 1)[-1]
    assert not port.isdigit() or 1 <= int(port) <= 65535


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(EXTRAS), JSON, max_size=len(EXTRAS)))
def test_any_json_in_the_extras(extra: dict[str, Any]) -> None:
    check_settings(Conn(password=SECRET, extra=extra))


@pytest.mark.parametrize("name", EXTRAS)
@settings(max_examples=150, deadline=None)
@given(value=JSON)
def test_any_json_in_each_extra(name: str, value: Any) -> None:
    check_settings(Conn(password=SECRET, extra={name: value}))


@settings(max_examples=200, deadline=None)
@given(JSON)
def test_any_json_in_the_port(port: Any) -> None:
    check_settings(Conn(password=SECRET, port=port))


@settings(max_examples=400, deadline=None)
@given(JSON)
def test_any_json_as_expires_in(expires_in: Any) -> None:
    token = "eyJhbGciOi.the-access-token-value.sig"
    body = {"access_token": token, "token_type": "Bearer", "expires_in": expires_in}
    now = time.time()
    try:
        result = token_from_body(body, "ODC connection 'odc_test': token request to <url>", now)
    except OdcAuthError as exc:
        message = str(exc)
        assert message.startswith("ODC connection 'odc_test': ") and "expires_in" in message, message
        assert token not in message and len(message) < 400, message
        return
    assert math.isfinite(result.expires_at) and LIFETIME_RANGE[0] <= result.lifetime <= LIFETIME_RANGE[1]


@pytest.mark.parametrize("expires_in", ["Infinity", 1e308, 0.0001, -5, 0, True, "soon", float("nan"), 10**400, [3600]])
def test_expires_in_out_of_range_is_an_auth_error(expires_in: Any) -> None:
    body = {"access_token": "t" * 40, "token_type": "Bearer", "expires_in": expires_in}
    with pytest.raises(
        OdcAuthError, match=r"^ODC connection 'c': token request returned expires_in .* from 1 to 604800"
    ):
        token_from_body(body, "ODC connection 'c': token request", time.time())


@pytest.mark.parametrize("expires_in", [43200, "3600", 1, 604800, 59.5])
def test_expires_in_in_range_is_accepted(expires_in: Any) -> None:
    body = {"access_token": "t" * 40, "token_type": "Bearer", "expires_in": expires_in}
    assert token_from_body(body, "where", 1000.0).lifetime == float(expires_in)
