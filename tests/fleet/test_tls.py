"""The emulator over https with a CA made at run time: what the fleet's workers on other hosts talk to.

No root needed: served on loopback here. The hook's whole path (discovery, token exchange, API call)
goes over TLS and verifies the certificate against the connection's ``ca_bundle_path``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from airflow_provider_odc.emulator.server import OdcEmulator
from airflow_provider_odc.hooks.odc import OdcHook
from devtools.fleet.tls import make_server_certificate


def test_the_hook_speaks_https_to_an_emulator_with_a_run_time_ca(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    certificate = make_server_certificate(tmp_path, "127.0.0.1")
    with OdcEmulator(ssl_certfile=str(certificate.certfile), ssl_keyfile=str(certificate.keyfile)) as emulator:
        assert emulator.base_url.startswith("https://127.0.0.1:")
        assert emulator.connection_uri().startswith("odc://https://")
        with pytest.raises(requests.exceptions.SSLError):  # not trusted without the run's CA
            requests.get(f"{emulator.base_url}/api/portfolios/v2/environments", timeout=10)
        connection = {**emulator.connection_dict(), "extra": json.dumps({"ca_bundle_path": str(certificate.ca_bundle)})}
        monkeypatch.setenv("AIRFLOW_CONN_ODC_TLS", json.dumps(connection))
        response = OdcHook("odc_tls").request("GET", "/api/portfolios/v2/environments")
        assert response.status_code == 200
        assert emulator.stats()["token_exchanges"] == 1
