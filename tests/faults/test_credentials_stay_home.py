"""Fault matrix, part 2: nothing secret leaves the portal's origin.

A second server plays "another host" and counts what it received (``recent_requests()``): every row
asserts it received nothing at all, so neither the client secret (token request) nor a token (API call)
reached it.

The https rows need a portal that is *not* a loopback address, since the provider allows plain http only
for loopback hosts. The emulator app is served over TLS by uvicorn on 127.0.0.1 under the name
``acme.odc.test``, which this test process resolves to 127.0.0.1 (RFC 6761 ``.test`` names exist
nowhere else); the certificate is self-signed for that name and given as the connection's
``ca_bundle_path``, so TLS verification stays on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_odc.auth.discovery import validate_token_endpoint
from airflow_provider_odc.emulator.server import OdcEmulator
from airflow_provider_odc.exceptions import OdcApiError, OdcAuthError, OdcConfigError, OdcError
from airflow_provider_odc.hooks.odc import OdcHook
from airflow_provider_odc.retries import RetryPolicy

from ._servers import OTHER_NAME, PORTAL_NAME, LoopbackServer, MisbehavingRoutes, self_signed_certificate
from ._servers import resolve_to_loopback as _resolve
from ._support import HookFactory, Matrix, outcome_of

ENVIRONMENTS = "/api/portfolios/v2/environments"


@pytest.fixture
def other_host() -> Iterator[OdcEmulator]:
    """'Another host': a second emulator that must receive nothing."""
    with OdcEmulator() as other:
        yield other


def assert_received_nothing(other: Any) -> None:
    assert other.recent_requests() == [], other.recent_requests()
    stats = other.stats()
    assert (stats["discovery_requests"], stats["token_requests"], stats["api_calls_total"]) == (0, 0, 0)


def test_discovery_points_the_token_endpoint_at_another_host(
    make_hook: HookFactory, odc_emulator: Any, other_host: OdcEmulator, matrix: Matrix
) -> None:
    odc_emulator.configure(discovery={"mode": "override", "document": {"token_endpoint": other_host.token_url}})
    with pytest.raises(OdcAuthError) as caught:
        make_hook().request("GET", ENVIRONMENTS)
    stats = odc_emulator.stats()
    matrix.record(outcome_of(caught.value), stats)
    assert "not on the portal's origin" in str(caught.value) and "No credentials were sent" in str(caught.value)
    assert (stats["discovery_requests"], stats["token_requests"], stats["api_calls_total"]) == (1, 0, 0)
    assert_received_nothing(other_host)


def test_token_endpoint_redirects_to_another_host(
    make_hook: HookFactory, odc_emulator: Any, other_host: OdcEmulator, matrix: Matrix
) -> None:
    odc_emulator.configure(token_redirect_to=other_host.token_url)
    with pytest.raises(OdcAuthError) as caught:
        make_hook().request("GET", ENVIRONMENTS)
    stats = odc_emulator.stats()
    matrix.record(outcome_of(caught.value), stats)
    assert "redirect" in str(caught.value) and "not followed" in str(caught.value)
    assert (stats["token_requests"], stats["token_exchanges"], stats["api_calls_total"]) == (1, 0, 0)
    assert make_hook.sleeps == [], "a redirect is an answer, not a transient failure"
    assert_received_nothing(other_host)


def test_absolute_api_url_on_another_host(
    make_hook: HookFactory, odc_emulator: Any, other_host: OdcEmulator, matrix: Matrix
) -> None:
    hook = make_hook()
    with pytest.raises(OdcError) as caught:
        hook.request("GET", other_host.base_url + ENVIRONMENTS)
    stats = odc_emulator.stats()
    matrix.record(outcome_of(caught.value), stats)
    assert "only ever sent to the connection's own origin" in str(caught.value)
    assert stats["api_calls_total"] == 0
    assert_received_nothing(other_host)


def test_api_redirect_to_another_host_is_not_followed(
    monkeypatch: pytest.MonkeyPatch, other_host: OdcEmulator, matrix: Matrix
) -> None:
    """An API answer 302 -> another host: the bearer token must not follow it."""
    with LoopbackServer(wrap=MisbehavingRoutes) as portal:
        routes: MisbehavingRoutes = portal.app  # type: ignore[assignment]
        moved = routes.answer("/api/moved", 302, headers={"Location": other_host.base_url + ENVIRONMENTS})
        monkeypatch.setenv("AIRFLOW_CONN_ODC_DEFAULT", json.dumps(portal.connection()))
        with pytest.raises(OdcApiError) as caught:
            OdcHook(retry_policy=RetryPolicy(sleep=lambda seconds: None)).request("GET", "/api/moved")
        stats = {**portal.stats(), "api_calls_total": moved.hits}
    matrix.record(outcome_of(caught.value), stats)
    assert caught.value.status == 302 and "not followed" in str(caught.value)
    assert (stats["token_exchanges"], moved.hits, moved.authorized_hits) == (1, 1, 1)
    assert_received_nothing(other_host)


# -- https portals on a non-loopback name -----------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_certificate(tmp_path_factory.mktemp("tls"), PORTAL_NAME, OTHER_NAME)


@pytest.fixture
def names_resolve_to_loopback(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with _resolve(monkeypatch, PORTAL_NAME, OTHER_NAME):
        yield


@pytest.fixture
def https_portal(certificate: tuple[Path, Path], names_resolve_to_loopback: None) -> Iterator[LoopbackServer]:
    """The emulator over TLS as ``https://acme.odc.test:<port>`` (certificate trusted via ca_bundle_path)."""
    with LoopbackServer(public_name=PORTAL_NAME, tls=certificate) as portal:
        yield portal


@pytest.fixture
def http_other_host(names_resolve_to_loopback: None) -> Iterator[LoopbackServer]:
    """A plain-http server under the non-loopback name ``elsewhere.odc.test``."""
    with LoopbackServer(public_name=OTHER_NAME) as other:
        yield other


def https_hook(portal: LoopbackServer, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> OdcHook:
    conn = portal.connection(extra={"ca_bundle_path": str(certificate[0])})
    monkeypatch.setenv("AIRFLOW_CONN_ODC_DEFAULT", json.dumps(conn))
    return OdcHook(retry_policy=RetryPolicy(sleep=lambda seconds: None))


def test_https_portal_on_a_non_loopback_name_works(
    https_portal: LoopbackServer, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, matrix: Matrix
) -> None:
    """The control row: the set-up the next rows attack is a working, verified https portal."""
    hook = https_hook(https_portal, certificate, monkeypatch)
    assert hook.settings.origin == f"https://{PORTAL_NAME}:{https_portal.port}"
    assert hook.request("GET", ENVIRONMENTS).status_code == 200
    stats = https_portal.stats()
    matrix.record("ok", stats)
    assert (stats["token_requests"], stats["token_exchanges"], stats["api_calls_total"]) == (1, 1, 1)


@pytest.mark.parametrize(
    ("target", "words"),
    [
        pytest.param("other-host-http", "it is not https", id="https-portal-discovery-gives-http-endpoint-elsewhere"),
        pytest.param("same-host-http", "it is not https", id="https-portal-discovery-gives-http-endpoint-same-name"),
        pytest.param("loopback-http", "not on the portal's origin", id="https-portal-discovery-gives-loopback-http"),
    ],
)
def test_https_portal_discovery_downgrades_the_token_endpoint(
    target: str,
    words: str,
    https_portal: LoopbackServer,
    http_other_host: LoopbackServer,
    certificate: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    matrix: Matrix,
) -> None:
    """Discovery of an https portal names a plain-http token endpoint: the secret must not go there.

    ``same-host-http`` is the classic downgrade (``http://acme.odc.test:<port>``, same name); its port is
    the other server's, so that a (wrong) request would be seen there.
    """
    path = http_other_host.state.token_path
    endpoint = {
        "other-host-http": f"http://{OTHER_NAME}:{http_other_host.port}{path}",
        "same-host-http": f"http://{PORTAL_NAME}:{http_other_host.port}{path}",
        "loopback-http": f"http://127.0.0.1:{http_other_host.port}{path}",
    }[target]
    https_portal.state.configure(discovery={"mode": "override", "document": {"token_endpoint": endpoint}})
    with pytest.raises(OdcAuthError) as caught:
        https_hook(https_portal, certificate, monkeypatch).request("GET", ENVIRONMENTS)
    stats = https_portal.stats()
    matrix.record(outcome_of(caught.value), stats)
    assert words in str(caught.value) and "No credentials were sent" in str(caught.value)
    assert (stats["discovery_requests"], stats["token_requests"], stats["api_calls_total"]) == (1, 0, 0)
    assert_received_nothing(http_other_host)


def test_plain_http_portal_on_a_non_loopback_name_is_refused(
    http_other_host: LoopbackServer, monkeypatch: pytest.MonkeyPatch, matrix: Matrix
) -> None:
    """``http://elsewhere.odc.test:<port>`` as the Portal domain: refused before any request is made."""
    monkeypatch.setenv("AIRFLOW_CONN_ODC_DEFAULT", json.dumps(http_other_host.connection()))
    with pytest.raises(OdcConfigError) as caught:
        OdcHook().request("GET", ENVIRONMENTS)
    matrix.record(outcome_of(caught.value), http_other_host.stats())
    assert "plain http" in str(caught.value)
    assert_received_nothing(http_other_host)


@pytest.mark.parametrize(
    ("endpoint", "origin", "refused"),
    [
        ("https://acme.outsystems.dev/auth/realms/r/protocol/openid-connect/token", "https://acme.outsystems.dev", ""),
        ("http://acme.outsystems.dev/auth/realms/r/token", "https://acme.outsystems.dev", "not https"),
        ("https://evil.example/auth/realms/r/token", "https://acme.outsystems.dev", "not on the portal's origin"),
        ("https://acme.outsystems.dev:8443/token", "https://acme.outsystems.dev", "not on the portal's origin"),
        ("https://acme.outsystems.dev.evil.example/token", "https://acme.outsystems.dev", "not on the portal's origin"),
        ("https://acme.outsystems.dev@evil.example/token", "https://acme.outsystems.dev", "not on the portal's origin"),
        ("//evil.example/token", "https://acme.outsystems.dev", "not https"),
        ("/auth/realms/r/token", "https://acme.outsystems.dev", "not https"),
        ("javascript:alert(1)", "https://acme.outsystems.dev", "not https"),
        ("http://127.0.0.1:8080/token", "http://127.0.0.1:8080", ""),
        ("http://127.0.0.1:8080/token", "https://127.0.0.1:8080", "not on the portal's origin"),
    ],
    ids=[
        "https-same-origin-accepted",
        "http-non-loopback-refused",
        "other-host-refused",
        "other-port-refused",
        "suffix-lookalike-refused",
        "userinfo-trick-refused",
        "scheme-relative-refused",
        "relative-path-refused",
        "javascript-scheme-refused",
        "loopback-http-emulator-accepted",
        "https-to-http-downgrade-on-loopback-refused",
    ],
)
def test_validate_token_endpoint(endpoint: str, origin: str, refused: str) -> None:
    if not refused:
        assert validate_token_endpoint(endpoint, origin, conn_id="c") == endpoint
        return
    with pytest.raises(OdcAuthError, match=refused):
        validate_token_endpoint(endpoint, origin, conn_id="c")
