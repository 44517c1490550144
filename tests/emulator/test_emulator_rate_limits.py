"""ODC's documented POST limits: 10 per minute per endpoint on build-, deployment- and publish-operations.

The window is 60 s on the emulator clock, so ``advance()`` replaces waiting a minute.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from airflow_provider_odc.emulator.server import OdcEmulator

BUILDS = "/api/builds/v1/build-operations"
DEPLOYMENTS = "/api/deployments/v1/deployment-operations"
PUBLISHES = "/api/deployments/v1/publish-operations"
TIMEOUT = 10


def build_body(kit: Any) -> dict[str, Any]:
    app = kit.apps(2)[0]
    return {"assetKey": app["assetKey"], "assetRevision": 1, "buildType": "Release"}


def test_the_eleventh_post_in_a_minute_is_429_with_retry_after(
    client: Any, kit: Any, odc_emulator: OdcEmulator
) -> None:
    body = build_body(kit)
    assert [client.post(BUILDS, body).status_code for _ in range(10)] == [201] * 10
    limited = client.post(BUILDS, body)
    problem = kit.problem(limited, 429, "OS-GATEWAY-42901")
    assert problem["title"] == "Too Many Requests"
    assert 55 <= int(limited.headers["retry-after"]) <= 60
    stats = odc_emulator.stats()
    assert stats["rate_limited"] == 1 and stats["operations_started"]["build"] == 10  # the 11th started nothing
    assert stats["api_calls"][f"POST {BUILDS}"] == 11

    odc_emulator.advance(30)
    again = client.post(BUILDS, body)
    kit.problem(again, 429)
    retry_after = int(again.headers["retry-after"])
    assert 25 <= retry_after <= 30  # counts down on the emulator clock
    odc_emulator.advance(retry_after)
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


def test_each_post_endpoint_has_its_own_limit_and_gets_are_unlimited(
    client: Any, kit: Any, odc_emulator: OdcEmulator
) -> None:
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
    assert all(client.get(BUILDS).status_code == 200 for _ in range(25))
    assert odc_emulator.stats()["rate_limited"] == 3


def test_the_limit_applies_before_authentication(client: Any, kit: Any, odc_emulator: OdcEmulator) -> None:
    odc_emulator.configure(post_limit_per_minute=1)
    url = f"{odc_emulator.base_url}{BUILDS}"
    assert requests.post(url, json=build_body(kit), timeout=TIMEOUT).status_code == 401
    assert requests.post(url, json=build_body(kit), timeout=TIMEOUT).status_code == 429


def test_retry_after_can_be_fixed_or_switched_off(client: Any, kit: Any, odc_emulator: OdcEmulator) -> None:
    body = build_body(kit)
    odc_emulator.configure(post_limit_per_minute=2, rate_limit_retry_after=7)
    assert [client.post(BUILDS, body).status_code for _ in range(2)] == [201, 201]
    assert client.post(BUILDS, body).headers["retry-after"] == "7"
    odc_emulator.configure(rate_limit_retry_after=None)
    without = client.post(BUILDS, body)
    assert without.status_code == 429 and "retry-after" not in without.headers
    assert odc_emulator.config()["rate_limit_retry_after"] is None
    odc_emulator.configure(rate_limit_retry_after="auto")
    assert client.post(BUILDS, body).headers["retry-after"].isdigit()


def test_the_limit_is_configurable_and_can_be_switched_off(client: Any, kit: Any, odc_emulator: OdcEmulator) -> None:
    body = build_body(kit)
    odc_emulator.configure(post_limit_per_minute=3)
    assert [client.post(BUILDS, body).status_code for _ in range(4)] == [201, 201, 201, 429]
    odc_emulator.configure(post_limit_per_minute=None)
    assert {client.post(BUILDS, body).status_code for _ in range(15)} == {201}
    assert odc_emulator.stats()["operations_started"]["build"] == 18
    odc_emulator.reset()
    client.token(fresh=True)
    assert odc_emulator.config()["post_limit_per_minute"] == 10
    assert [client.post(BUILDS, body).status_code for _ in range(11)][-2:] == [201, 429]


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
        {"rate_limit_retry_after": "soon"},
        {"rate_limit_retry_after": -1},
    ],
)
def test_invalid_rate_limit_settings_are_rejected(odc_emulator: OdcEmulator, body: dict[str, Any]) -> None:
    response = requests.post(f"{odc_emulator.control_url}/config", json=body, timeout=TIMEOUT)
    assert response.status_code == 400 and response.json()["error"]
    assert odc_emulator.config()["post_limit_per_minute"] == 10
    assert odc_emulator.config()["rate_limit_retry_after"] == "auto"


def test_retry_after_counts_until_a_slot_really_frees(client: Any, kit: Any, odc_emulator: OdcEmulator) -> None:
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
