"""Counters, the request log, keep-alive accounting and exact counts under concurrent clients."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from airflow_provider_odc.emulator.server import OdcEmulator

ASSETS = "/api/asset-repository/v1/assets"
ASSET = "/api/asset-repository/v1/assets/{assetKey}"
ENVIRONMENTS = "/api/portfolios/v2/environments"
TIMEOUT = 10
STATS_KEYS = {
    "token_requests",
    "token_exchanges",
    "discovery_requests",
    "api_calls",
    "api_calls_total",
    "unauthorized",
    "connections",
    "faults_served",
    "operations_started",
    "rate_limited",
    "rate_limited_calls",
}
NO_OPERATIONS = {"build": 0, "deploy": 0, "apply_configs": 0, "undeploy": 0, "publish": 0}


def test_stats_count_by_route_template(client: Any, odc_emulator: OdcEmulator) -> None:
    assets = client.all_assets()
    for asset in assets[:3]:
        client.get(f"{ASSETS}/{asset['assetKey']}", route=ASSET)
    client.get(ENVIRONMENTS)
    client.get(ENVIRONMENTS, authorize=False)
    stats = odc_emulator.stats()
    assert set(stats) == STATS_KEYS
    assert stats["api_calls"] == {f"GET {ASSETS}": 1, f"GET {ASSET}": 3, f"GET {ENVIRONMENTS}": 2}
    assert stats["api_calls_total"] == 6
    assert (stats["discovery_requests"], stats["token_requests"], stats["token_exchanges"]) == (1, 1, 1)
    assert stats["unauthorized"] == 1
    assert requests.get(f"{odc_emulator.control_url}/stats", timeout=TIMEOUT).json() == stats


def test_reset_zeroes_everything(client: Any, odc_emulator: OdcEmulator) -> None:
    client.get(ASSETS)
    odc_emulator.reset()
    zeroed = {key: ({} if key in ("api_calls", "rate_limited_calls") else 0) for key in STATS_KEYS}
    assert odc_emulator.stats() == {**zeroed, "operations_started": NO_OPERATIONS}
    assert odc_emulator.recent_requests() == []


def test_connections_count_distinct_tcp_connections(odc_emulator: OdcEmulator, make_client: Any) -> None:
    keep_alive = make_client(odc_emulator)
    token = keep_alive.token()
    for _ in range(5):
        keep_alive.get(ENVIRONMENTS, token=token)
    assert odc_emulator.stats()["connections"] == 1  # discovery, token and 5 calls on one socket

    for _ in range(4):
        requests.get(
            f"{odc_emulator.base_url}{ENVIRONMENTS}",
            headers={"Authorization": f"Bearer {token}", "Connection": "close"},
            timeout=TIMEOUT,
        )
    assert odc_emulator.stats()["connections"] == 5
    requests.get(f"{odc_emulator.control_url}/stats", timeout=TIMEOUT)
    assert odc_emulator.stats()["connections"] == 5  # control calls are not counted


def test_request_log_never_contains_secrets(client: Any, odc_emulator: OdcEmulator) -> None:
    token = client.token()
    client.get(ASSETS, {"limit": 3, "sort": "-name"})
    client.get(ENVIRONMENTS, authorize=False)
    log = requests.get(f"{odc_emulator.control_url}/requests", params={"limit": 10}, timeout=TIMEOUT).json()
    entries = log["requests"]
    assert [(e["method"], e["path"], e["status"]) for e in entries] == [
        ("GET", "/identity/.well-known/openid-configuration", 200),
        ("POST", odc_emulator.state.token_path, 200),
        ("GET", ASSETS, 200),
        ("GET", ENVIRONMENTS, 401),
    ]
    assert entries[1]["form_fields"] == ["grant_type", "client_id", "client_secret"]
    assert entries[2]["query"] == "limit=3&sort=-name" and entries[2]["authorization"] is True
    assert entries[3]["authorization"] is False
    dumped = json.dumps(log)
    assert token not in dumped and token.split(".")[2] not in dumped
    assert odc_emulator.client_secret not in dumped
    assert [e["path"] for e in odc_emulator.recent_requests(limit=2)] == [ASSETS, ENVIRONMENTS]


def test_twenty_threads_at_once_get_exact_counts(odc_emulator: OdcEmulator, make_client: Any) -> None:
    clients = [make_client(odc_emulator) for _ in range(20)]

    def work(client: Any) -> tuple[str, int, int]:
        token = client.token()
        assets = client.get(ASSETS, {"limit": 5}, token=token)
        stages = client.get(ENVIRONMENTS, token=token)
        return token, assets.status_code, stages.status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(work, clients))
    assert {(assets, stages) for _, assets, stages in results} == {(200, 200)}
    assert len({token for token, _, _ in results}) == 20
    stats = odc_emulator.stats()
    assert (stats["discovery_requests"], stats["token_requests"], stats["token_exchanges"]) == (20, 20, 20)
    assert stats["api_calls"] == {f"GET {ASSETS}": 20, f"GET {ENVIRONMENTS}": 20}
    assert stats["api_calls_total"] == 40 and stats["unauthorized"] == 0
    assert stats["connections"] == 20


def test_concurrent_clients_share_a_fault_budget_exactly(client: Any, odc_emulator: OdcEmulator) -> None:
    token = client.token()
    odc_emulator.add_fault(status=429, count=7)

    def call(_: int) -> int:
        return requests.get(
            f"{odc_emulator.base_url}{ASSETS}", headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT
        ).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(call, range(30)))
    assert statuses.count(429) == 7 and statuses.count(200) == 23
    assert odc_emulator.stats()["faults_served"] == 7


CHILD = """
import sys, requests
base, client_id, secret, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
session = requests.Session()
token_url = session.get(base + "/identity/.well-known/openid-configuration", timeout=10).json()["token_endpoint"]
for _ in range(rounds):
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    token = session.post(token_url, data=form, timeout=10).json()["access_token"]
    response = session.get(base + "/api/asset-repository/v1/assets", headers={"Authorization": "Bearer " + token})
    assert response.status_code == 200, response.text
print("ok")
"""


def test_several_processes_at_once_get_exact_counts(odc_emulator: OdcEmulator) -> None:
    args = [odc_emulator.base_url, odc_emulator.client_id, odc_emulator.client_secret, "3"]
    children = [
        subprocess.Popen([sys.executable, "-c", CHILD, *args], stdout=subprocess.PIPE, text=True) for _ in range(4)
    ]
    outputs = [child.communicate(timeout=60)[0] for child in children]
    assert [child.returncode for child in children] == [0, 0, 0, 0]
    assert all(output.strip() == "ok" for output in outputs)
    stats = odc_emulator.stats()
    assert (stats["discovery_requests"], stats["token_exchanges"]) == (4, 12)
    assert stats["api_calls"] == {f"GET {ASSETS}": 12}
    assert stats["connections"] == 4
