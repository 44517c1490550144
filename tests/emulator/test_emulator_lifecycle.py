"""Starting and stopping the emulator: in-process, as a context manager and through the ``python -m`` CLI."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

import pytest
import requests

from airflow_provider_odc.emulator.seed import build_seed
from airflow_provider_odc.emulator.server import OdcEmulator

ASSETS = "/api/asset-repository/v1/assets"
TIMEOUT = 10


def port_is_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_start_binds_a_free_loopback_port_and_stop_releases_it_quickly() -> None:
    emulator = OdcEmulator()
    emulator.start()
    try:
        port = emulator.port
        assert port > 0
        assert emulator.base_url == f"http://127.0.0.1:{port}"
        assert emulator.control_url == f"http://127.0.0.1:{port}/_emulator"
        session = requests.Session()  # leaves an idle keep-alive connection open across stop()
        assert session.get(f"{emulator.control_url}/stats", timeout=TIMEOUT).status_code == 200
    finally:
        started = time.monotonic()
        emulator.stop()
        elapsed = time.monotonic() - started
    assert elapsed < 3
    assert not emulator.running
    assert not port_is_open(port)
    emulator.stop()  # idempotent


def test_context_manager_and_default_credentials() -> None:
    with OdcEmulator() as first, OdcEmulator() as second:
        assert first.running and second.running
        assert first.port != second.port
        assert first.client_id == "odc-emulator-client"
        for character in "+/=&":
            assert character in first.client_secret
        assert first.client_secret != second.client_secret
        assert first.state.realm != second.state.realm
        uuid.UUID(first.state.realm)
    assert not first.running and not second.running


def test_seed_is_deterministic_across_instances() -> None:
    assert build_seed(25) == build_seed(25)
    assert build_seed(40).assets[:25] != build_seed(25).assets  # names are padded to the count's width
    seed = build_seed(25)
    assert len({asset["assetKey"] for asset in seed.assets}) == 25
    assert seed.assets[0]["name"].endswith(" 001")
    assert {asset["assetType"] for asset in seed.assets} >= {
        "WebApplication",
        "MobileApplication",
        "LowCodeLibrary",
        "Workflow",
    }
    assert any(asset["tag"] for asset in seed.assets) and any(asset["tag"] is None for asset in seed.assets)
    assert all(asset["isExternal"] is False for asset in seed.assets)


def test_constructor_options_are_honoured(make_client: Any) -> None:
    with OdcEmulator(client_id="my-client", client_secret="s3cret+&=", token_lifetime=90, asset_count=3) as emu:
        client = make_client(emu)
        token_body = client.request_token().json()
        assert token_body["expires_in"] == 90
        assert emu.client_id == "my-client" and emu.client_secret == "s3cret+&="
        assert client.get(ASSETS).json()["page"]["totalResults"] == 3


def test_a_port_in_use_is_reported() -> None:
    with OdcEmulator() as running, pytest.raises(OSError):
        OdcEmulator(port=running.port).start()


def test_connection_helpers_describe_an_airflow_connection() -> None:
    from airflow.models.connection import Connection

    with OdcEmulator() as emu:
        expected = {"conn_type": "odc", "host": emu.base_url, "login": emu.client_id, "password": emu.client_secret}
        assert emu.connection_dict() == expected
        assert emu.connection_dict(conn_type="http")["conn_type"] == "http"
        assert json.loads(emu.connection_json()) == expected

        parsed = Connection(conn_id="odc_uri", uri=emu.connection_uri())
        assert (parsed.conn_type, parsed.host, parsed.login, parsed.password) == (
            "odc",
            emu.base_url,
            emu.client_id,
            emu.client_secret,
        )
        from_json = Connection.from_json(emu.connection_json(), conn_id="odc_json")
        assert from_json.host == emu.base_url and from_json.password == emu.client_secret


def read_line(stream: Any, timeout: float) -> str:
    """readline() with a deadline, so a broken CLI fails the test instead of hanging it."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    assert lines, f"no line on stdout within {timeout} s"
    return lines[0]


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_cli_prints_one_json_line_serves_and_exits_zero_on_signal(stop_signal: signal.Signals) -> None:
    command = [
        sys.executable,
        "-m",
        "airflow_provider_odc.emulator",
        "--port",
        "0",
        "--host",
        "127.0.0.1",
        "--client-id",
        "cli-client",
        "--token-lifetime",
        "120",
        "--assets",
        "7",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        info = json.loads(read_line(process.stdout, timeout=30))
        assert set(info) == {"base_url", "client_id", "client_secret", "control_url", "pid"}
        assert info["pid"] == process.pid
        assert info["client_id"] == "cli-client"
        assert info["base_url"].startswith("http://127.0.0.1:")
        assert info["control_url"] == info["base_url"] + "/_emulator"

        session = requests.Session()
        discovery = session.get(f"{info['base_url']}/identity/.well-known/openid-configuration", timeout=TIMEOUT)
        form = {"grant_type": "client_credentials", "client_id": "cli-client", "client_secret": info["client_secret"]}
        token = session.post(discovery.json()["token_endpoint"], data=form, timeout=TIMEOUT).json()
        assert token["expires_in"] == 120
        assets = session.get(
            info["base_url"] + ASSETS, headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=TIMEOUT
        )
        assert assets.json()["page"]["totalResults"] == 7
        stats = session.get(info["control_url"] + "/stats", timeout=TIMEOUT).json()
        assert stats["token_exchanges"] == 1 and stats["api_calls_total"] == 1
        session.close()

        os.kill(process.pid, stop_signal)
        assert process.wait(timeout=15) == 0
        assert process.stdout is not None and process.stdout.read() == ""  # exactly one line in total
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
