"""OdcHook against the local ODC emulator over loopback sockets: tokens, requests, paging, errors."""

from __future__ import annotations

import dataclasses
import socket
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_odc.exceptions import OdcApiError, OdcAuthError, OdcConfigError, OdcError
from airflow_provider_odc.hooks.odc import OdcHook

ASSETS = "/api/asset-repository/v1/assets"
ENVIRONMENTS = "/api/portfolios/v2/environments"


def test_one_exchange_serves_every_call_and_every_hook(make_hook: Any, odc_emulator: Any) -> None:
    hook = make_hook()
    assert hook.request("GET", ENVIRONMENTS).json()["results"]
    hook.request("GET", ASSETS)
    OdcHook("odc_default").request("GET", ENVIRONMENTS)  # another hook instance, same process
    stats = odc_emulator.stats()
    assert stats["discovery_requests"] == 1
    assert stats["token_exchanges"] == 1
    assert stats["api_calls_total"] == 3


def test_session_keeps_one_connection_alive(make_hook: Any, odc_emulator: Any) -> None:
    hook = make_hook()
    for _ in range(10):
        hook.request("GET", ENVIRONMENTS)
    assert odc_emulator.stats()["connections"] == 1


def test_paginate_walks_every_page(make_hook: Any, odc_emulator: Any) -> None:
    hook = make_hook()
    assets = list(hook.paginate(ASSETS, page_size=10))
    assert len(assets) == 25
    assert len({asset["assetKey"] for asset in assets}) == 25
    assert odc_emulator.stats()["api_calls"][f"GET {ASSETS}"] == 3


def test_paginate_respects_filters_and_max_items(make_hook: Any) -> None:
    hook = make_hook()
    web_apps = list(hook.paginate(ASSETS, {"assetTypes": "WebApplication"}, page_size=2))
    assert web_apps and all(asset["assetType"] == "WebApplication" for asset in web_apps)
    assert len(list(hook.paginate(ASSETS, page_size=10, max_items=12))) == 12


def test_paginate_reads_unpaginated_wrappers(make_hook: Any, odc_emulator: Any) -> None:
    stages = list(make_hook().paginate(ENVIRONMENTS))
    assert [stage["name"] for stage in sorted(stages, key=lambda s: s["order"])] == ["Development", "QA", "Production"]
    assert odc_emulator.stats()["api_calls"][f"GET {ENVIRONMENTS}"] == 1


def test_revoked_token_is_replaced_once(make_hook: Any, odc_emulator: Any) -> None:
    hook = make_hook()
    first = hook.get_access_token()
    odc_emulator.revoke_tokens()
    assert hook.request("GET", ENVIRONMENTS).status_code == 200
    assert hook.get_access_token() != first
    stats = odc_emulator.stats()
    assert stats["token_exchanges"] == 2 and stats["unauthorized"] == 1 and stats["api_calls_total"] == 2


def test_second_401_raises_after_exactly_one_refresh(make_hook: Any, odc_emulator: Any) -> None:
    hook = make_hook()
    odc_emulator.add_fault(target="api", status=401, count=5)
    with pytest.raises(OdcApiError) as caught:
        hook.request("GET", ENVIRONMENTS)
    assert caught.value.status == 401
    assert "not Revoked or Expired" in str(caught.value)
    stats = odc_emulator.stats()
    assert stats["token_exchanges"] == 2 and stats["api_calls_total"] == 2


def test_429_honours_retry_after_seconds(make_hook: Any, odc_emulator: Any) -> None:
    hook = make_hook()
    odc_emulator.add_fault(target="api", status=429, count=2, retry_after="7")
    assert hook.request("GET", ENVIRONMENTS).status_code == 200
    assert make_hook.sleeps == [7.0, 7.0]
    assert odc_emulator.stats()["api_calls_total"] == 3


def test_429_honours_retry_after_http_date(make_hook: Any, odc_emulator: Any) -> None:
    hook = make_hook()
    moment = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    odc_emulator.add_fault(target="api", status=429, count=1, retry_after=moment)
    hook.request("GET", ENVIRONMENTS)
    assert len(make_hook.sleeps) == 1 and 25 <= make_hook.sleeps[0] <= 30


def test_429_without_retry_after_waits_out_the_window_until_the_budget_is_spent(
    make_hook: Any, odc_emulator: Any
) -> None:
    """ODC sends no Retry-After: each wait is the one-minute window plus up to 20 % jitter, and 429s are
    retried (beyond max_retries) until one more wait would pass rate_limit_wait (300 s)."""
    hook = make_hook(max_retries=2)
    odc_emulator.add_fault(target="api", status=429, count=10)
    with pytest.raises(OdcApiError) as caught:
        hook.request("GET", ENVIRONMENTS)
    assert caught.value.status == 429 and "rate limit" in str(caught.value)
    assert "up to 300 s" in str(caught.value) and "rate_limit_wait_seconds" in str(caught.value)
    sleeps = make_hook.sleeps
    assert len(sleeps) == 4 and all(60 <= s <= 72 for s in sleeps) and sum(sleeps) <= 300, sleeps
    assert len(set(sleeps)) == 4, "jittered: a fleet must not come back in lockstep"
    assert odc_emulator.stats()["api_calls_total"] == 5


def test_429_from_the_documented_limit_is_waited_out(make_hook: Any, odc_emulator: Any) -> None:
    """The emulator's real limit (no fault): the 101st GET in a minute waits one window and then succeeds."""
    policy = make_hook(rate_limit_wait=100).retry_policy
    odc_emulator.configure(domain_limit_per_minute=3)
    waited: list[float] = []

    def advance(seconds: float) -> None:  # the wait passes on the emulator's clock
        waited.append(seconds)
        odc_emulator.advance(seconds)

    hook = OdcHook("odc_default", retry_policy=dataclasses.replace(policy, sleep=advance))
    for _ in range(4):
        assert hook.request("GET", ENVIRONMENTS).status_code == 200
    assert len(waited) == 1 and 60 <= waited[0] <= 72
    stats = odc_emulator.stats()
    assert stats["rate_limited"] == 1 and stats["api_calls_total"] == 5


def test_5xx_is_retried_for_get(make_hook: Any, odc_emulator: Any) -> None:
    hook = make_hook()
    odc_emulator.add_fault(target="api", status=503, count=2)
    assert hook.request("GET", ENVIRONMENTS).status_code == 200
    assert odc_emulator.stats()["api_calls_total"] == 3


def test_5xx_is_not_retried_for_post(make_hook: Any, odc_emulator: Any) -> None:
    hook = make_hook()
    odc_emulator.add_fault(target="api", status=502, count=1)
    with pytest.raises(OdcApiError) as caught:
        hook.request("POST", "/api/asset-repository/v1/assets/search", json={"assetVersionFilters": []})
    assert caught.value.status == 502
    assert make_hook.sleeps == []
    assert odc_emulator.stats()["faults_served"] == 1


def test_429_is_retried_for_post(make_hook: Any, odc_emulator: Any) -> None:
    """A 429 means 'not processed': safe to send a POST again."""
    hook = make_hook()
    odc_emulator.add_fault(target="api", status=429, count=1, retry_after="1")
    with pytest.raises(OdcApiError) as caught:  # the emulator has no such POST route: 404 after the retry
        hook.request("POST", "/api/asset-repository/v1/assets/search", json={"assetVersionFilters": []})
    assert caught.value.status in (404, 405)
    assert make_hook.sleeps == [1.0]


def test_read_timeout_retried_for_get_not_for_post(make_hook: Any, odc_emulator: Any) -> None:
    hook = make_hook(extra={"timeout": 1})
    hook.get_access_token()
    odc_emulator.add_fault(target="api", latency=2.5, count=1)
    assert hook.request("GET", ENVIRONMENTS).status_code == 200
    odc_emulator.add_fault(target="api", latency=2.5, count=1)
    with pytest.raises(OdcApiError) as caught:
        hook.request("POST", ENVIRONMENTS, json={})
    assert "ReadTimeout" in str(caught.value) and "not sent again" in str(caught.value)
    assert len(make_hook.sleeps) == 1


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_connection_refused_is_retried_then_explained(make_hook: Any) -> None:
    hook = make_hook(host=f"http://127.0.0.1:{_closed_port()}", max_retries=2)
    with pytest.raises(OdcAuthError) as caught:
        hook.get_access_token()
    message = str(caught.value)
    assert "ODC connection 'odc_default'" in message and "ConnectionError" in message
    assert len(make_hook.sleeps) == 2


def test_wrong_secret_fails_fast_with_what_to_check(make_hook: Any, odc_emulator: Any) -> None:
    hook = make_hook(password="wrong-secret-value")
    with pytest.raises(OdcAuthError) as caught:
        hook.request("GET", ENVIRONMENTS)
    message = str(caught.value)
    assert caught.value.oauth_error == "invalid_client"
    assert "ODC connection 'odc_default'" in message and "invalid_client" in message
    assert "Client secret (password)" in message and "Revoked" in message
    assert "wrong-secret-value" not in message
    assert odc_emulator.stats()["token_requests"] == 1
    assert make_hook.sleeps == []


def test_unknown_client_id(make_hook: Any, odc_emulator: Any) -> None:
    hook = make_hook(login="someone-else")
    with pytest.raises(OdcAuthError, match="invalid_client"):
        hook.get_access_token()


def test_token_endpoint_5xx_twice_then_ok(make_hook: Any, odc_emulator: Any) -> None:
    hook = make_hook()
    odc_emulator.add_fault(target="token", status=503, count=2)
    hook.get_access_token()
    stats = odc_emulator.stats()
    assert stats["token_requests"] == 3 and stats["token_exchanges"] == 1


def test_token_endpoint_429_honours_retry_after(make_hook: Any, odc_emulator: Any) -> None:
    hook = make_hook()
    odc_emulator.add_fault(target="token", status=429, count=1, retry_after="4")
    hook.get_access_token()
    assert make_hook.sleeps == [4.0]


@pytest.mark.parametrize("mode", ["not_json", "missing_token_endpoint"])
def test_bad_discovery_document_sends_no_credentials(make_hook: Any, odc_emulator: Any, mode: str) -> None:
    odc_emulator.configure(discovery={"mode": mode})
    with pytest.raises(OdcAuthError) as caught:
        make_hook().get_access_token()
    assert "ODC connection 'odc_default': OIDC discovery" in str(caught.value)
    assert odc_emulator.stats()["token_requests"] == 0


def test_token_endpoint_on_another_host_is_refused(make_hook: Any, odc_emulator: Any) -> None:
    from airflow_provider_odc.emulator.server import OdcEmulator

    with OdcEmulator() as other_host:
        odc_emulator.configure(
            discovery={"mode": "override", "document": {"token_endpoint": other_host.base_url + "/token"}}
        )
        with pytest.raises(OdcAuthError, match="not on the portal's origin"):
            make_hook().get_access_token()
        assert other_host.stats()["token_requests"] == 0
        assert other_host.recent_requests() == []


def test_redirect_from_token_endpoint_is_not_followed(make_hook: Any, odc_emulator: Any) -> None:
    from airflow_provider_odc.emulator.server import OdcEmulator

    with OdcEmulator() as other_host:
        odc_emulator.configure(token_redirect_to=other_host.base_url + "/steal")
        with pytest.raises(OdcAuthError, match="redirect"):
            make_hook().get_access_token()
        assert other_host.recent_requests() == []


def test_token_only_goes_to_the_connection_origin(make_hook: Any, odc_emulator: Any) -> None:
    from airflow_provider_odc.emulator.server import OdcEmulator

    hook = make_hook()
    with OdcEmulator() as other_host:
        with pytest.raises(OdcError, match="only ever sent to the connection's own origin"):
            hook.request("GET", other_host.base_url + ENVIRONMENTS)
        assert other_host.recent_requests() == []
    # An absolute URL on the connection's own origin is fine.
    assert hook.request("GET", odc_emulator.base_url + ENVIRONMENTS).status_code == 200


def test_problem_details_reach_the_error(make_hook: Any) -> None:
    with pytest.raises(OdcApiError) as caught:
        make_hook().request("GET", ASSETS + "/00000000-0000-0000-0000-000000000000")
    error = caught.value
    assert error.status == 404 and error.method == "GET" and error.path.endswith("0000")
    assert error.trace_id and error.title
    assert "HTTP 404" in str(error) and error.trace_id in str(error)


def test_bad_connection_field_is_a_config_error(make_hook: Any) -> None:
    with pytest.raises(OdcConfigError, match="ODC connection 'odc_default': extra 'cache_mode'"):
        make_hook(extra={"cache_mode": "redis"}).request("GET", ENVIRONMENTS)


def test_verify_is_passed_on_every_request(make_hook: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """REQUESTS_CA_BUNDLE in the environment must not override the connection's TLS setting."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/ca.pem")
    corp = tmp_path / "corp.pem"
    corp.write_text("")  # the settings check that the path exists; plain http never reads it
    hook = make_hook(extra={"ca_bundle_path": str(corp)})
    seen: list[Any] = []
    real_request = hook.session.request

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get("verify"))
        return real_request(*args, **kwargs)

    hook.session.request = spy  # type: ignore[method-assign]  # get() and post() go through request()
    hook.request("GET", ENVIRONMENTS)
    assert seen == [str(corp)] * 3  # discovery, token, API


def test_cache_mode_off_keeps_the_token_in_the_hook(make_hook: Any, odc_emulator: Any) -> None:
    make_hook(extra={"cache_mode": "off"}).request("GET", ENVIRONMENTS)
    OdcHook("odc_default").request("GET", ENVIRONMENTS)
    assert odc_emulator.stats()["token_exchanges"] == 2


def test_test_connection_reports_each_step(make_hook: Any, odc_emulator: Any) -> None:
    ok, message = make_hook().test_connection()
    assert ok and "discovery found the token endpoint" in message

    ok, message = make_hook(password="wrong-secret-value").test_connection()
    assert not ok and message.startswith("Step 2 of 2 (token request) failed") and "invalid_client" in message
    assert "wrong-secret-value" not in message

    ok, message = make_hook(host=f"http://127.0.0.1:{_closed_port()}", max_retries=0).test_connection()
    assert not ok and message.startswith("Step 1 of 2 (OIDC discovery) failed")

    ok, message = make_hook(host="").test_connection()
    assert not ok and "Portal domain (host) is empty" in message
