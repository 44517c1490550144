"""ODC's documented rate limits (odc-api.md section 1.7), as the emulator enforces them by default.

Per organization (one emulator): a domain-wide limit per API domain (100 a minute; 10 for environment
configurations) and the documented per-endpoint limits (build and deployment POSTs 10 each, POST /assets 10,
POST /code-analyses 10, POST /users/bulk 5, external-library POSTs 10, native-build POSTs 5 and PATCHes 10),
which also count toward their domain. A 429 is a ProblemDetails and carries no ``Retry-After`` (ODC promises
none) unless a test opts in. Windows slide over 60 s of the emulator clock, so ``advance()`` replaces waiting.
Responses on routes the specs know are validated against them by the ``client`` fixture.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from airflow_provider_odc.emulator.server import OdcEmulator

BUILDS = "/api/builds/v1/build-operations"
DEPLOYMENTS = "/api/deployments/v1/deployment-operations"
PUBLISHES = "/api/deployments/v1/publish-operations"
ENVIRONMENTS = "/api/portfolios/v2/environments"
DEPLOYED_ASSETS = "/api/portfolios/v2/deployed-assets"
ASSETS = "/api/asset-repository/v1/assets"
TIMEOUT = 10


def build_body(kit: Any) -> dict[str, Any]:
    app = kit.apps(2)[0]
    return {"assetKey": app["assetKey"], "assetRevision": 1, "buildType": "Release"}


def test_the_eleventh_post_in_a_minute_is_a_429_problem_without_retry_after(
    client: Any, kit: Any, odc_emulator: OdcEmulator, openapi_contract: Any
) -> None:
    body = build_body(kit)
    assert [client.post(BUILDS, body).status_code for _ in range(10)] == [201] * 10
    limited = client.post(BUILDS, body)  # validated against the spec's 429 (ProblemDetails) by the client
    problem = kit.problem(limited, 429, "OS-GATEWAY-42901")
    assert problem["title"] == "Too Many Requests" and problem["instance"] == BUILDS
    assert limited.headers["content-type"].startswith("application/problem+json")
    assert "retry-after" not in limited.headers, "ODC documents no Retry-After: the emulator must not promise one"
    stats = odc_emulator.stats()
    assert stats["rate_limited"] == 1 and stats["operations_started"]["build"] == 10  # the 11th started nothing
    assert stats["api_calls"][f"POST {BUILDS}"] == 11 and stats["rate_limited_calls"] == {f"POST {BUILDS}": 1}
    if openapi_contract is not None:
        openapi_contract.validate(BUILDS, "POST", 429, limited.json())

    odc_emulator.advance(59)
    assert client.post(BUILDS, body).status_code == 429
    odc_emulator.advance(1.5)  # a full minute after the ten: they have all left the window
    assert client.post(BUILDS, body).status_code == 201
    assert odc_emulator.stats()["rate_limited"] == 2


def test_the_window_slides(client: Any, kit: Any, odc_emulator: OdcEmulator) -> None:
    body = build_body(kit)
    assert [client.post(BUILDS, body).status_code for _ in range(4)] == [201] * 4
    odc_emulator.advance(40)
    assert [client.post(BUILDS, body).status_code for _ in range(6)] == [201] * 6
    assert client.post(BUILDS, body).status_code == 429
    odc_emulator.advance(21)  # the first four are now older than 60 s, the last six are not
    assert [client.post(BUILDS, body).status_code for _ in range(5)] == [201] * 4 + [429]


def test_each_post_endpoint_has_its_own_limit(client: Any, kit: Any, odc_emulator: OdcEmulator) -> None:
    body = build_body(kit)
    for _ in range(10):
        client.post(BUILDS, body)
    assert client.post(BUILDS, body).status_code == 429
    app = kit.apps(2)[0]
    publish = {"operation": "Publish", "assetKey": app["assetKey"], "revision": 1}
    assert [client.post(PUBLISHES, publish).status_code for _ in range(10)] == [201] * 10
    assert client.post(PUBLISHES, publish).status_code == 429
    # Rejected requests count as well: the gateway limits before the service validates.
    assert [client.post(DEPLOYMENTS, {}).status_code for _ in range(11)] == [400] * 10 + [429]
    assert all(client.get(BUILDS).status_code == 200 for _ in range(25))  # GETs: only the domain-wide 100
    assert odc_emulator.stats()["rate_limited"] == 3


def test_the_domain_wide_limit_counts_every_endpoint_of_the_domain(
    client: Any, kit: Any, odc_emulator: OdcEmulator
) -> None:
    """100 a minute per API domain, shared by its endpoints, POSTs included; other domains are not affected."""
    odc_emulator.configure(build_durations={"pending": 0, "running": 0})
    body = build_body(kit)
    assert {client.post(BUILDS, body).status_code for _ in range(10)} == {201}
    statuses = [client.get(BUILDS).status_code for _ in range(90)]
    assert statuses == [200] * 90
    limited = client.get(BUILDS)  # the 101st request to /api/builds/v1 in this minute
    kit.problem(limited, 429, "OS-GATEWAY-42901")
    assert "retry-after" not in limited.headers
    assert client.get(f"{BUILDS}/{odc_emulator.inventory()['assets'][0]['builds'][0]['buildKey']}").status_code == 429
    assert client.get(ENVIRONMENTS).status_code == 200  # another domain, another budget
    odc_emulator.advance(60)
    assert client.get(BUILDS).status_code == 200
    assert odc_emulator.stats()["rate_limited_calls"] == {
        f"GET {BUILDS}": 1,
        "GET /api/builds/v1/build-operations/{operationKey}": 1,
    }


def test_portfolio_gets_share_one_budget(client: Any, odc_emulator: OdcEmulator) -> None:
    odc_emulator.configure(domain_limit_per_minute=6)
    assert [client.get(ENVIRONMENTS).status_code for _ in range(3)] == [200] * 3
    assert [client.get(DEPLOYED_ASSETS).status_code for _ in range(3)] == [200] * 3
    assert client.get(ENVIRONMENTS).status_code == 429  # validated against the portfolio spec's 429
    assert client.get(DEPLOYED_ASSETS).status_code == 429


@pytest.mark.parametrize(
    ("method", "path", "limit"),
    [
        pytest.param("POST", "/api/identity/v1/users/bulk", 5, id="identity-POST-users-bulk-5"),
        pytest.param("POST", ASSETS, 10, id="asset-repository-POST-assets-10"),
        pytest.param("POST", "/api/code-quality/v1/code-analyses", 10, id="code-quality-POST-code-analyses-10"),
        pytest.param("POST", "/api/external-libraries/v1/generations", 10, id="external-libraries-POST-10"),
        pytest.param("POST", "/api/native-mobile-builds/v1/builds", 5, id="native-mobile-POST-5"),
        pytest.param("PATCH", "/api/native-mobile-builds/v1/builds/x", 10, id="native-mobile-PATCH-10"),
        pytest.param("GET", "/api/environment-configurations/v1/x", 10, id="environment-configurations-domain-10"),
        pytest.param("GET", "/api/subscription/v1/x", 100, id="subscription-domain-100"),
    ],
)
def test_every_documented_limit_is_enforced(
    client: Any, odc_emulator: OdcEmulator, method: str, path: str, limit: int
) -> None:
    """Every documented limit, on served routes and on routes the emulator does not serve (which still pass the
    gateway first: 404 until the limit, then 429)."""
    # A body the served routes answer with a documented status (an unknown asset: 404); others ignore it.
    body = {"assetKey": "00000000-0000-4000-8000-000000000000", "assetRevision": 1}
    statuses = [client.call(method, path, json=body).status_code for _ in range(limit + 1)]
    assert statuses[-1] == 429 and 429 not in statuses[:-1], statuses
    assert odc_emulator.stats()["rate_limited_calls"] == {f"{method} {path}": 1}


def test_the_limit_applies_before_authentication(client: Any, kit: Any, odc_emulator: OdcEmulator) -> None:
    odc_emulator.configure(post_limit_per_minute=1)
    url = f"{odc_emulator.base_url}{BUILDS}"
    assert requests.post(url, json=build_body(kit), timeout=TIMEOUT).status_code == 401
    assert requests.post(url, json=build_body(kit), timeout=TIMEOUT).status_code == 429


def test_retry_after_is_opt_in_fixed_or_auto(client: Any, kit: Any, odc_emulator: OdcEmulator) -> None:
    body = build_body(kit)
    assert odc_emulator.config()["rate_limit_retry_after"] is None
    odc_emulator.configure(post_limit_per_minute=2, rate_limit_retry_after=7)
    assert [client.post(BUILDS, body).status_code for _ in range(2)] == [201, 201]
    assert client.post(BUILDS, body).headers["retry-after"] == "7"
    odc_emulator.configure(rate_limit_retry_after=None)
    without = client.post(BUILDS, body)
    assert without.status_code == 429 and "retry-after" not in without.headers
    odc_emulator.configure(rate_limit_retry_after="auto")
    assert 55 <= int(client.post(BUILDS, body).headers["retry-after"]) <= 60
    odc_emulator.reset()
    assert odc_emulator.config()["rate_limit_retry_after"] is None


def test_retry_after_can_be_chosen_at_construction_and_survives_reset(make_client: Any) -> None:
    with OdcEmulator(rate_limit_retry_after="auto") as emulator:
        emulator.reset()
        odc = make_client(emulator)
        emulator.configure(domain_limit_per_minute=1)
        assert odc.get(ENVIRONMENTS).status_code == 200
        limited = odc.get(ENVIRONMENTS)
        assert limited.status_code == 429 and 59 <= int(limited.headers["retry-after"]) <= 60


def test_limits_are_configurable_and_can_be_lifted(client: Any, kit: Any, odc_emulator: OdcEmulator) -> None:
    body = build_body(kit)
    odc_emulator.configure(post_limit_per_minute=3)
    assert [client.post(BUILDS, body).status_code for _ in range(4)] == [201, 201, 201, 429]
    odc_emulator.configure(post_limit_per_minute=None)
    assert {client.post(BUILDS, body).status_code for _ in range(15)} == {201}
    assert odc_emulator.stats()["operations_started"]["build"] == 18
    odc_emulator.configure(rate_limits=False)
    assert {client.get(ENVIRONMENTS).status_code for _ in range(110)} == {200}
    odc_emulator.reset()
    client.token(fresh=True)
    config = odc_emulator.config()
    assert (config["rate_limits"], config["post_limit_per_minute"], config["domain_limit_per_minute"]) == (
        True,
        10,
        100,
    )
    assert [client.post(BUILDS, body).status_code for _ in range(11)][-2:] == [201, 429]


def test_reset_empties_the_windows(client: Any, odc_emulator: OdcEmulator) -> None:
    """The ``odc_emulator`` fixture resets before each test: one test's requests never limit the next."""
    odc_emulator.configure(domain_limit_per_minute=2)
    assert [client.get(ENVIRONMENTS).status_code for _ in range(3)] == [200, 200, 429]
    odc_emulator.reset()
    client.token(fresh=True)
    assert {client.get(ENVIRONMENTS).status_code for _ in range(100)} == {200}


def test_concurrent_posts_are_limited_exactly(client: Any, kit: Any, odc_emulator: OdcEmulator) -> None:
    token, body = client.token(), build_body(kit)

    def post(_: int) -> int:
        return requests.post(
            f"{odc_emulator.base_url}{BUILDS}", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT
        ).status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(post, range(30)))
    assert statuses.count(201) == 10 and statuses.count(429) == 20
    stats = odc_emulator.stats()
    assert stats["operations_started"]["build"] == 10 and stats["rate_limited"] == 20


@pytest.mark.parametrize(
    "body",
    [
        {"post_limit_per_minute": 0},
        {"post_limit_per_minute": "ten"},
        {"domain_limit_per_minute": 0},
        {"rate_limits": "yes"},
        {"rate_limit_retry_after": "soon"},
        {"rate_limit_retry_after": -1},
    ],
)
def test_invalid_rate_limit_settings_are_rejected(odc_emulator: OdcEmulator, body: dict[str, Any]) -> None:
    response = requests.post(f"{odc_emulator.control_url}/config", json=body, timeout=TIMEOUT)
    assert response.status_code == 400 and response.json()["error"]
    config = odc_emulator.config()
    assert (config["post_limit_per_minute"], config["domain_limit_per_minute"], config["rate_limits"]) == (
        10,
        100,
        True,
    )
    assert config["rate_limit_retry_after"] is None


def test_auto_retry_after_counts_until_a_slot_really_frees(client: Any, kit: Any, odc_emulator: OdcEmulator) -> None:
    odc_emulator.configure(rate_limit_retry_after="auto")
    body = build_body(kit)
    assert client.post(BUILDS, body).status_code == 201  # t = 0
    odc_emulator.advance(20)
    assert [client.post(BUILDS, body).status_code for _ in range(4)] == [201] * 4  # t = 20
    odc_emulator.configure(post_limit_per_minute=2)  # 5 in the window: 4 must leave before one more fits
    limited = client.post(BUILDS, body)
    assert limited.status_code == 429 and 58 <= int(limited.headers["retry-after"]) <= 60
    odc_emulator.advance(41)  # the t = 0 request left, four remain
    assert client.post(BUILDS, body).status_code == 429
    odc_emulator.advance(int(limited.headers["retry-after"]) - 41)
    assert client.post(BUILDS, body).status_code == 201


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        pytest.param([], (True, None), id="documented-limits-no-header"),
        pytest.param(["--no-rate-limits", "--rate-limit-retry-after", "auto"], (False, "auto"), id="opted-in"),
    ],
)
def test_the_emulator_process_takes_the_rate_limit_settings(flags: list[str], expected: tuple[Any, Any]) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_odc.emulator", "--port", "0", *flags],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        started = json.loads(process.stdout.readline())
        requests.post(f"{started['control_url']}/reset", timeout=TIMEOUT).raise_for_status()  # defaults survive it
        config = requests.get(f"{started['control_url']}/config", timeout=TIMEOUT).json()
        assert (config["rate_limits"], config["rate_limit_retry_after"]) == expected
    finally:
        process.terminate()
        process.wait(timeout=30)
