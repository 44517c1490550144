"""Fault injection: status codes with Retry-After, counts, FIFO order, targets, path prefixes and latency."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import pytest
import requests

from airflow_provider_odc.emulator.server import OdcEmulator

ASSETS = "/api/asset-repository/v1/assets"
ENVIRONMENTS = "/api/portfolios/v2/environments"
BUILDS = "/api/builds/v1/build-operations"
TIMEOUT = 10


def test_429_with_retry_after_then_success(client: Any, odc_emulator: OdcEmulator) -> None:
    token = client.token()
    odc_emulator.add_fault(target="api", status=429, count=1, retry_after="2")
    limited = client.get(ASSETS, token=token)
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "2"
    problem = limited.json()
    assert problem["status"] == 429 and problem["title"] == "Too Many Requests"
    assert problem["errorCode"] and problem["traceId"]
    assert client.get(ASSETS, token=token).status_code == 200
    stats = odc_emulator.stats()
    assert stats["faults_served"] == 1 and stats["api_calls"][f"GET {ASSETS}"] == 2


def test_retry_after_http_date_is_sent_verbatim(client: Any, odc_emulator: OdcEmulator) -> None:
    when = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=3), usegmt=True)
    odc_emulator.add_fault(status=503, retry_after=when)
    assert client.get(ASSETS).headers["retry-after"] == when


def test_503_is_served_count_times(client: Any, odc_emulator: OdcEmulator) -> None:
    token = client.token()
    odc_emulator.add_fault(target="api", status=503, count=3)
    assert [client.get(ASSETS, token=token).status_code for _ in range(4)] == [503, 503, 503, 200]
    assert odc_emulator.pending_faults() == []
    assert odc_emulator.stats()["faults_served"] == 3


def test_faults_are_consumed_in_fifo_order(client: Any, odc_emulator: OdcEmulator) -> None:
    token = client.token()
    odc_emulator.add_fault(status=429, count=1)
    odc_emulator.add_fault(status=502, count=2)
    odc_emulator.add_fault(status=500, count=1)
    statuses = [client.get(ASSETS, token=token).status_code for _ in range(5)]
    assert statuses == [429, 502, 502, 500, 200]


def test_path_prefix_limits_a_fault_to_matching_paths(client: Any, odc_emulator: OdcEmulator) -> None:
    token = client.token()
    odc_emulator.add_fault(status=503, count=1, path_prefix=ENVIRONMENTS)
    assert client.get(ASSETS, token=token).status_code == 200
    assert client.get(ENVIRONMENTS, token=token, check=False).status_code == 503
    assert client.get(ENVIRONMENTS, token=token).status_code == 200


def test_api_faults_come_before_authentication(client: Any, odc_emulator: OdcEmulator) -> None:
    odc_emulator.add_fault(status=401, count=1)
    response = client.get(ASSETS, token=client.token())
    assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer")
    odc_emulator.add_fault(status=429, count=1)
    assert client.get(ASSETS, authorize=False).status_code == 429  # the gateway limits before auth
    assert odc_emulator.stats()["unauthorized"] == 1


def test_token_fault_answers_oauth_style_then_recovers(client: Any, odc_emulator: OdcEmulator) -> None:
    odc_emulator.add_fault(target="token", status=503, count=1, retry_after=1)
    failed = client.request_token()
    assert failed.status_code == 503
    assert failed.json()["error"] == "temporarily_unavailable"
    assert failed.headers["retry-after"] == "1"
    assert client.request_token().status_code == 200
    stats = odc_emulator.stats()
    assert (stats["token_requests"], stats["token_exchanges"], stats["faults_served"]) == (2, 1, 1)


def test_discovery_fault_and_any_target(client: Any, odc_emulator: OdcEmulator) -> None:
    odc_emulator.add_fault(target="discovery", status=500, count=1)
    assert client.session.get(odc_emulator.discovery_url, timeout=TIMEOUT).status_code == 500
    assert client.discover()["token_endpoint"]

    odc_emulator.add_fault(target="any", status=502, count=2)
    assert client.session.get(odc_emulator.discovery_url, timeout=TIMEOUT).status_code == 502
    assert client.session.post(odc_emulator.token_url, data={}, timeout=TIMEOUT).status_code == 502
    assert client.get(ASSETS).status_code == 200


def test_latency_only_fault_delays_then_answers_normally(client: Any, odc_emulator: OdcEmulator) -> None:
    token = client.token()
    odc_emulator.add_fault(target="api", latency=0.6, count=2)
    with pytest.raises(requests.exceptions.ReadTimeout):
        client.get(ASSETS, token=token, timeout=0.2)
    started = time.monotonic()
    delayed = client.get(ASSETS, token=token)
    assert delayed.status_code == 200 and time.monotonic() - started >= 0.55
    started = time.monotonic()
    assert client.get(ASSETS, token=token).status_code == 200
    assert time.monotonic() - started < 0.5
    assert odc_emulator.stats()["faults_served"] == 2


def test_a_slow_response_does_not_block_other_clients(odc_emulator: OdcEmulator, make_client: Any) -> None:
    slow_client, fast_client = make_client(odc_emulator), make_client(odc_emulator)
    slow_token, fast_token = slow_client.token(), fast_client.token()
    odc_emulator.add_fault(target="api", latency=1.5, path_prefix=ENVIRONMENTS)
    slow_result: dict[str, Any] = {}

    def slow_call() -> None:
        started = time.monotonic()
        slow_result["status"] = slow_client.get(ENVIRONMENTS, token=slow_token).status_code
        slow_result["elapsed"] = time.monotonic() - started

    thread = threading.Thread(target=slow_call)
    thread.start()
    while not odc_emulator.stats()["faults_served"]:
        time.sleep(0.01)
    started = time.monotonic()
    assert fast_client.get(ASSETS, token=fast_token).status_code == 200
    assert time.monotonic() - started < 0.5
    thread.join(TIMEOUT)
    assert slow_result["status"] == 200 and slow_result["elapsed"] >= 1.4


def test_faults_over_http_control(client: Any, odc_emulator: OdcEmulator) -> None:
    body: dict[str, Any] = {"target": "api", "status": 429, "count": 2, "retry_after": "1", "path_prefix": ASSETS}
    added = requests.post(f"{odc_emulator.control_url}/faults", json=body, timeout=TIMEOUT)
    assert added.status_code == 200
    defaults = {"latency": 0.0, "method": None, "drop_response": False}
    assert added.json()["fault"] == {**body, **defaults}
    pending = requests.get(f"{odc_emulator.control_url}/faults", timeout=TIMEOUT).json()["pending"]
    assert pending == [{**body, **defaults, "remaining": 2}]
    assert client.get(ASSETS).status_code == 429
    assert odc_emulator.pending_faults()[0]["remaining"] == 1
    assert requests.delete(f"{odc_emulator.control_url}/faults", timeout=TIMEOUT).json() == {"pending": []}
    assert client.get(ASSETS).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"target": "everything", "status": 500},
        {"status": 500, "count": 0},
        {"target": "api"},  # neither status nor latency
        {"status": 200},
        {"status": 500, "latency": -1},
        {"status": 500, "colour": "red"},
        {"status": 503, "drop_response": True},  # a dropped answer is processed: no status to answer
        {"drop_response": "yes"},
        {"status": 500, "method": "FETCH"},
        ["not", "an", "object"],
    ],
)
def test_invalid_fault_requests_are_rejected(odc_emulator: OdcEmulator, body: Any) -> None:
    response = requests.post(f"{odc_emulator.control_url}/faults", json=body, timeout=TIMEOUT)
    assert response.status_code == 400 and response.json()["error"]
    assert odc_emulator.pending_faults() == []


def test_drop_response_processes_the_post_then_cuts_the_answer(client: Any, odc_emulator: OdcEmulator) -> None:
    """ODC accepted the POST; the client never reads the answer: the build exists, its key was lost."""
    token = client.token()
    app = next(a for a in odc_emulator.inventory()["assets"] if a["deployable"])
    body = {"assetKey": app["assetKey"], "assetRevision": app["latestRevision"], "buildType": "Release"}
    odc_emulator.add_fault(path_prefix=BUILDS, method="POST", drop_response=True)
    assert client.get(BUILDS, {"assetKey": app["assetKey"]}, token=token).status_code == 200  # GET: not its method
    with pytest.raises(requests.exceptions.ChunkedEncodingError, match="IncompleteRead"):
        client.post(BUILDS, body, token=token, check=False)
    assert odc_emulator.stats()["operations_started"]["build"] == 1 and odc_emulator.pending_faults() == []
    listed = client.get(BUILDS, {"assetKey": app["assetKey"], "assetRevision": app["latestRevision"]}, token=token)
    assert listed.json()["builds"][0]["status"] == "Pending"  # newest first: the build the lost answer named
    assert client.post(BUILDS, body, token=token).status_code == 201  # the fault was used up
    assert odc_emulator.stats()["faults_served"] == 1


def test_drop_response_over_http_control(odc_emulator: OdcEmulator) -> None:
    body = {"path_prefix": BUILDS, "method": "post", "drop_response": True}
    added = requests.post(f"{odc_emulator.control_url}/faults", json=body, timeout=TIMEOUT)
    assert added.status_code == 200
    assert added.json()["fault"] == {
        "target": "api",
        "status": None,
        "count": 1,
        "retry_after": None,
        "latency": 0.0,
        "path_prefix": BUILDS,
        "method": "POST",
        "drop_response": True,
    }


def test_reset_clears_pending_faults(client: Any, odc_emulator: OdcEmulator) -> None:
    odc_emulator.add_fault(status=500, count=5)
    assert requests.post(f"{odc_emulator.control_url}/reset", timeout=TIMEOUT).json() == {"reset": True}
    assert odc_emulator.pending_faults() == []
    assert client.get(ASSETS).status_code == 200
