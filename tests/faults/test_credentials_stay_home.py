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

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_odc.auth.discovery import validate_token_endpoint
from airflow_provider_odc.auth.token import AccessToken
from airflow_provider_odc.cache.envelope import CachedToken
from airflow_provider_odc.cache.stores import variable_key_for
from airflow_provider_odc.emulator.server import OdcEmulator
from airflow_provider_odc.exceptions import (
    OdcApiError,
    OdcAuthError,
    OdcConfigError,
    OdcError,
    OdcTokenEndpointRefusedError,
    OdcUrlRefusedError,
)
from airflow_provider_odc.hooks.odc import OdcHook, envelope_codec_for
from airflow_provider_odc.hooks.odc_async import OdcAsyncHook
from airflow_provider_odc.retries import RetryPolicy
from airflow_provider_odc.triggers.odc import OdcOperationTrigger
from devtools.servers import (
    OTHER_NAME,
    PORTAL_NAME,
    CountingListener,
    LoopbackServer,
    MisbehavingRoutes,
    self_signed_certificate,
)
from devtools.servers import resolve_to_loopback as _resolve

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


# -- the URL gate: what requests/urllib3 and httpx connect to, not what urlsplit reads -------------------
#
# ``https://evil.example\@acme.outsystems.dev/x`` is on acme for urlsplit, but urllib3 connects to
# evil.example. Here "evil.example" is a bare TCP listener on another loopback port that counts every
# connection; the portal is the emulator. Every URL below puts the listener's address next to the
# portal's, joined by each ASCII character and a set of Unicode look-alikes of separators.

LOOKALIKES = (
    "\uff0f\u2215\u2044\u29f8\ufe68\uff3c\uff20\ufe6b\u3002\uff0e\uff61\ufe52\uff1a\u2236\uff03\uff1f\u200b\u00a0"
)
SEPARATORS = [chr(code) for code in range(0x80)] + list(LOOKALIKES)
ABSOLUTE_SHAPES = (
    "http://{other}{c}@{portal}{path}",  # the reproduced shape, with c = backslash
    "http://{portal}{c}@{other}{path}",
    "http://{other}{c}{portal}{path}",
    "http://{portal}{c}{other}{path}",
    "http:{c}//{other}{path}",
)
RELATIVE_SHAPES = ("{c}//{other}{path}", "/{c}/{other}{path}", "{c}{other}{path}")


@pytest.fixture(scope="module")
def listener() -> Iterator[CountingListener]:
    """The other loopback port: it must see no connection at all, across every test of this module."""
    with CountingListener() as other:
        yield other
    assert other.connections == 0, other.received.split(b"\r\n", 1)[0]  # the request line, not its token


def hostile(shapes: tuple[str, ...], portal: str, other: str, path: str) -> list[str]:
    return [shape.format(c=char, portal=portal, other=other, path=path) for shape in shapes for char in SEPARATORS]


def reproduced(portal_url: str, other: CountingListener, path: str) -> str:
    """``http://127.0.0.1:<other>\\@127.0.0.1:<portal><path>``: urlsplit reads the portal, urllib3 the other."""
    return f"http://{other.address}\\@{portal_url.split('://', 1)[1]}{path}"


def test_endpoint_argument_backslash_userinfo(
    make_hook: HookFactory, odc_emulator: Any, listener: CountingListener, matrix: Matrix
) -> None:
    endpoint = reproduced(odc_emulator.base_url, listener, ENVIRONMENTS)
    with pytest.raises(OdcUrlRefusedError) as caught:
        make_hook().request("GET", endpoint)
    stats = odc_emulator.stats()
    matrix.record(outcome_of(caught.value), stats)
    assert "backslash" in str(caught.value) and "Nothing was sent" in str(caught.value)
    assert "'odc_default'" in str(caught.value) and odc_emulator.client_secret not in str(caught.value)
    assert (stats["token_requests"], stats["api_calls_total"], listener.connections) == (0, 0, 0)


def test_endpoint_argument_backslash_userinfo_async(
    make_hook: HookFactory, odc_emulator: Any, listener: CountingListener, matrix: Matrix
) -> None:
    make_hook.connection()
    endpoint = reproduced(odc_emulator.base_url, listener, ENVIRONMENTS)

    async def call() -> None:
        async with OdcAsyncHook(retry_policy=RetryPolicy(sleep=lambda seconds: None)) as hook:
            await hook.get(endpoint)

    with pytest.raises(OdcUrlRefusedError) as caught:
        asyncio.run(call())
    stats = odc_emulator.stats()
    matrix.record(outcome_of(caught.value), stats)
    assert "backslash" in str(caught.value)
    assert (stats["token_requests"], stats["api_calls_total"], listener.connections) == (0, 0, 0)


def test_discovery_token_endpoint_backslash_userinfo(
    make_hook: HookFactory, odc_emulator: Any, listener: CountingListener, matrix: Matrix
) -> None:
    token_endpoint = reproduced(odc_emulator.base_url, listener, odc_emulator.state.token_path)
    odc_emulator.configure(discovery={"mode": "override", "document": {"token_endpoint": token_endpoint}})
    with pytest.raises(OdcTokenEndpointRefusedError) as caught:
        make_hook().request("GET", ENVIRONMENTS)
    stats = odc_emulator.stats()
    matrix.record(outcome_of(caught.value), stats)
    assert isinstance(caught.value, OdcConfigError) and isinstance(caught.value, OdcAuthError)
    assert "from discovery" in str(caught.value) and "No credentials were sent" in str(caught.value)
    assert (stats["discovery_requests"], stats["token_requests"], stats["api_calls_total"]) == (1, 0, 0)
    assert listener.connections == 0


def test_cache_sealed_token_endpoint_backslash_userinfo(
    make_hook: HookFactory,
    odc_emulator: Any,
    listener: CountingListener,
    variables: dict[str, str],
    matrix: Matrix,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An envelope sealed by a provider without the gate holds the bad endpoint and an expired token: the
    next refresh refuses the cached endpoint, rediscovers, and seals the portal's own endpoint instead."""
    hook = make_hook()
    codec = envelope_codec_for(hook.settings)
    expired = AccessToken(value="expired-token", token_type="Bearer", expires_at=time.time() - 60, issued_at=0.0)
    bad_endpoint = reproduced(odc_emulator.base_url, listener, odc_emulator.state.token_path)
    key = variable_key_for("odc_default")
    variables[key] = codec.seal(CachedToken(token=expired, token_endpoint=bad_endpoint))
    caplog.set_level(logging.WARNING, logger="airflow.task")  # where hooks log (structlog may print them instead)
    assert hook.request("GET", ENVIRONMENTS).status_code == 200
    logged = caplog.text + "\n".join(capsys.readouterr())
    stats = odc_emulator.stats()
    matrix.record("ok", stats)
    assert (stats["discovery_requests"], stats["token_exchanges"], stats["api_calls_total"]) == (1, 1, 1)
    assert listener.connections == 0
    assert codec.open(variables[key]).token_endpoint == odc_emulator.token_url  # resealed, good endpoint
    assert "from the token cache" in logged and "Discovering the token endpoint again" in logged
    assert odc_emulator.client_secret not in logged


def _sweep(send: Any, urls: list[str], refused_type: type[BaseException]) -> tuple[int, int]:
    """(refused, sent to the portal) over ``urls``; ``send`` raises on a refusal or an error answer."""
    refused = sent = 0
    for url in urls:
        try:
            send(url)
        except refused_type:
            refused += 1
            continue
        except OdcError:
            pass
        sent += 1
    return refused, sent


def test_endpoint_sweep_sync(
    make_hook: HookFactory, odc_emulator: Any, listener: CountingListener, matrix: Matrix
) -> None:
    portal = odc_emulator.base_url.split("://", 1)[1]
    urls = hostile(ABSOLUTE_SHAPES, portal, listener.address, ENVIRONMENTS)
    urls += hostile(RELATIVE_SHAPES, portal, listener.address, ENVIRONMENTS)
    hook = make_hook()
    refused, sent = _sweep(lambda url: hook.request("GET", url), urls, OdcUrlRefusedError)
    stats = odc_emulator.stats()
    matrix.record(f"{len(urls)} URLs: {refused} refused, {sent} sent to the portal, 0 elsewhere", stats)
    assert listener.connections == 0
    assert refused + sent == len(urls) and refused > 0 and sent > 0
    assert stats["token_exchanges"] <= 1


def test_endpoint_sweep_async(
    make_hook: HookFactory, odc_emulator: Any, listener: CountingListener, matrix: Matrix
) -> None:
    make_hook.connection()
    portal = odc_emulator.base_url.split("://", 1)[1]
    urls = hostile(ABSOLUTE_SHAPES, portal, listener.address, ENVIRONMENTS)
    urls += hostile(RELATIVE_SHAPES, portal, listener.address, ENVIRONMENTS)

    async def sweep() -> tuple[int, int]:
        refused = sent = 0
        async with OdcAsyncHook(retry_policy=RetryPolicy(sleep=lambda seconds: None)) as hook:
            for url in urls:
                try:
                    await hook.get(url)
                except OdcUrlRefusedError:
                    refused += 1
                    continue
                except OdcError:
                    pass
                sent += 1
        return refused, sent

    refused, sent = asyncio.run(sweep())
    stats = odc_emulator.stats()
    matrix.record(f"{len(urls)} URLs: {refused} refused, {sent} sent to the portal, 0 elsewhere", stats)
    assert listener.connections == 0
    assert refused + sent == len(urls) and refused > 0 and sent > 0


def test_discovery_token_endpoint_sweep(
    make_hook: HookFactory, odc_emulator: Any, listener: CountingListener, matrix: Matrix
) -> None:
    """Every hostile shape as discovery's ``token_endpoint``: refused, or sent to the portal (never elsewhere)."""
    portal = odc_emulator.base_url.split("://", 1)[1]
    urls = hostile(ABSOLUTE_SHAPES, portal, listener.address, odc_emulator.state.token_path)

    def discover_and_exchange(token_endpoint: str) -> None:
        odc_emulator.configure(discovery={"mode": "override", "document": {"token_endpoint": token_endpoint}})
        make_hook(extra={"cache_mode": "off"}).get_access_token()

    refused, sent = _sweep(discover_and_exchange, urls, OdcTokenEndpointRefusedError)
    stats = odc_emulator.stats()
    matrix.record(f"{len(urls)} URLs: {refused} refused, {sent} sent to the portal, 0 elsewhere", stats)
    assert listener.connections == 0
    assert stats["discovery_requests"] == len(urls) and refused + sent == len(urls)
    assert refused > 0 and sent > 0  # the few that stay on the portal (a '/', '?' or '#' ends its authority)


def test_discovery_token_endpoint_sweep_async(
    make_hook: HookFactory, odc_emulator: Any, listener: CountingListener, matrix: Matrix
) -> None:
    """The same through OdcAsyncHook (a trigger's token comes from the same gated exchange)."""
    make_hook.connection(extra={"cache_mode": "off"})
    portal = odc_emulator.base_url.split("://", 1)[1]
    urls = hostile(ABSOLUTE_SHAPES, portal, listener.address, odc_emulator.state.token_path)

    async def sweep() -> tuple[int, int]:
        """One hook: no variant yields a token, so each call runs discovery again (counted below)."""
        refused = sent = 0
        async with OdcAsyncHook(retry_policy=RetryPolicy(sleep=lambda seconds: None)) as hook:
            for token_endpoint in urls:
                odc_emulator.configure(discovery={"mode": "override", "document": {"token_endpoint": token_endpoint}})
                try:
                    await hook.get(ENVIRONMENTS)
                except OdcTokenEndpointRefusedError:
                    refused += 1
                    continue
                except OdcError:
                    pass
                sent += 1
        return refused, sent

    refused, sent = asyncio.run(sweep())
    stats = odc_emulator.stats()
    matrix.record(f"{len(urls)} URLs: {refused} refused, {sent} sent to the portal, 0 elsewhere", stats)
    assert listener.connections == 0
    assert stats["discovery_requests"] == len(urls) and refused + sent == len(urls)
    assert refused > 0 and sent > 0  # the few that stay on the portal (a '/', '?' or '#' ends its authority)


def test_trigger_with_a_hostile_operation_key(
    make_hook: HookFactory, odc_emulator: Any, listener: CountingListener, matrix: Matrix
) -> None:
    """A trigger's operation key lands in the status path: one that makes the URL ambiguous is refused
    by the same gate, and the event says so without a secret (events are stored unmasked)."""
    make_hook.connection()
    key = f"\\@{listener.address}/x"
    trigger = OdcOperationTrigger(odc_conn_id="odc_default", kind="build", operation_key=key, end_time=time.time() + 30)

    async def first_event() -> dict[str, Any]:
        async for event in trigger.run():
            return dict(event.payload)
        raise AssertionError("the trigger ended without an event")

    event = asyncio.run(first_event())
    stats = odc_emulator.stats()
    matrix.record(f"{event['status']}: {event['message'][:60]}...", stats)
    assert event["status"] == "error" and "refused the endpoint" in event["message"]
    assert odc_emulator.client_secret not in json.dumps(event)
    assert (stats["token_requests"], stats["api_calls_total"], listener.connections) == (0, 0, 0)
