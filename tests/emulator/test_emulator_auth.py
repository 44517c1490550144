"""OIDC discovery, the client-credentials token endpoint and bearer-token enforcement on the API."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
import requests

from airflow_provider_odc.emulator.server import OdcEmulator

ASSETS = "/api/asset-repository/v1/assets"
ENVIRONMENTS = "/api/portfolios/v2/environments"
TIMEOUT = 10
INVALID_CLIENT = {"error": "invalid_client", "error_description": "Invalid client or Invalid client credentials"}


def jwt_part(token: str, index: int) -> dict[str, Any]:
    part = token.split(".")[index]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return claims


# Discovery -------------------------------------------------------------------------------------------


def test_discovery_document_is_keycloak_shaped(client: Any, odc_emulator: OdcEmulator) -> None:
    response = client.session.get(odc_emulator.discovery_url, headers={"Accept": "application/json"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    document = response.json()
    realm = document["issuer"].removeprefix(f"{odc_emulator.base_url}/auth/realms/")
    uuid.UUID(realm)
    oidc = f"{document['issuer']}/protocol/openid-connect"
    assert document["token_endpoint"] == f"{oidc}/token"
    assert document["authorization_endpoint"] == f"{oidc}/auth"
    assert document["jwks_uri"] == f"{oidc}/certs"
    assert "client_credentials" in document["grant_types_supported"]
    assert document["token_endpoint_auth_methods_supported"] == ["client_secret_post", "client_secret_basic"]
    assert client.discover()["issuer"] == document["issuer"]  # the realm is fixed for the instance
    assert odc_emulator.stats()["discovery_requests"] == 2


def test_discovery_modes_simulate_broken_identity_setups(client: Any, odc_emulator: OdcEmulator) -> None:
    odc_emulator.configure(discovery={"mode": "not_json"})
    response = client.session.get(odc_emulator.discovery_url, timeout=TIMEOUT)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    with pytest.raises(ValueError):
        response.json()

    odc_emulator.configure(discovery={"mode": "missing_token_endpoint"})
    document = client.discover()
    assert "token_endpoint" not in document and "issuer" in document

    override = {"issuer": "https://elsewhere.example/auth/realms/x", "token_endpoint": "https://elsewhere.example/t"}
    changed = requests.post(
        f"{odc_emulator.control_url}/config", json={"discovery": {"mode": "override", "document": override}}
    )
    assert changed.status_code == 200 and changed.json()["discovery"]["mode"] == "override"
    assert client.discover() == override

    odc_emulator.reset()
    assert client.discover()["token_endpoint"] == odc_emulator.token_url


# Token endpoint --------------------------------------------------------------------------------------


def test_token_exchange_returns_a_bearer_jwt(client: Any, odc_emulator: OdcEmulator) -> None:
    response = client.request_token()
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "expires_in", "token_type", "not-before-policy", "scope"}
    assert (body["expires_in"], body["token_type"], body["not-before-policy"], body["scope"]) == (
        43200,
        "Bearer",
        0,
        "profile email",
    )
    header, payload = jwt_part(body["access_token"], 0), jwt_part(body["access_token"], 1)
    assert header["alg"] == "HS256" and header["typ"] == "JWT"
    assert payload["iss"] == client.discover()["issuer"]
    assert payload["sub"] == payload["azp"] == odc_emulator.client_id
    assert payload["exp"] - payload["iat"] == 43200
    assert abs(payload["iat"] - time.time()) < 5

    second = client.request_token().json()["access_token"]
    assert jwt_part(second, 1)["jti"] != payload["jti"]
    stats = odc_emulator.stats()
    assert (stats["token_requests"], stats["token_exchanges"]) == (2, 2)


def test_client_secret_basic_is_accepted(client: Any, odc_emulator: OdcEmulator) -> None:
    headers = {"Authorization": basic(odc_emulator.client_id, odc_emulator.client_secret)}
    response = client.request_token(form={"grant_type": "client_credentials"}, headers=headers)
    assert response.status_code == 200, response.text
    assert client.get(ENVIRONMENTS, token=response.json()["access_token"]).status_code == 200

    wrong = {"Authorization": basic(odc_emulator.client_id, "nope")}
    rejected = client.request_token(form={"grant_type": "client_credentials"}, headers=wrong)
    assert rejected.status_code == 401 and rejected.json() == INVALID_CLIENT
    assert rejected.headers["www-authenticate"].startswith("Basic")


def basic(client_id: str, client_secret: str) -> str:
    return "Basic " + base64.b64encode(f"{quote_plus(client_id)}:{quote_plus(client_secret)}".encode()).decode()


def test_secret_must_be_form_encoded_exactly_once(client: Any, odc_emulator: OdcEmulator) -> None:
    token_url = client.discover()["token_endpoint"]
    form_header = {"Content-Type": "application/x-www-form-urlencoded"}
    prefix = f"grant_type=client_credentials&client_id={odc_emulator.client_id}&client_secret="

    def post_raw(encoded_secret: str) -> requests.Response:
        response: requests.Response = client.session.post(
            token_url, data=prefix + encoded_secret, headers=form_header, timeout=TIMEOUT
        )
        return response

    secret = odc_emulator.client_secret
    assert post_raw(quote(secret, safe="")).status_code == 200  # once: correct
    twice = post_raw(quote(quote(secret, safe=""), safe=""))
    assert twice.status_code == 401 and twice.json() == INVALID_CLIENT
    never = post_raw(secret)  # '+' turns into a space and '&' starts a new field
    assert never.status_code == 401 and never.json() == INVALID_CLIENT
    stats = odc_emulator.stats()
    assert (stats["token_requests"], stats["token_exchanges"]) == (3, 1)


def good_form(emulator: OdcEmulator) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_id": emulator.client_id,
        "client_secret": emulator.client_secret,
    }


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        pytest.param({"grant_type": None}, 400, "invalid_request", id="missing-grant-type"),
        pytest.param({"client_id": None}, 400, "invalid_request", id="missing-client-id"),
        pytest.param({"client_secret": None}, 400, "invalid_request", id="missing-client-secret"),
        pytest.param({"grant_type": "password"}, 400, "unsupported_grant_type", id="unsupported-grant"),
        pytest.param({"grant_type": "authorization_code"}, 400, "unsupported_grant_type", id="auth-code-grant"),
        pytest.param({"client_secret": "wrong"}, 401, "invalid_client", id="wrong-secret"),
        pytest.param({"client_id": "someone-else"}, 401, "invalid_client", id="unknown-client"),
    ],
)
def test_oauth_errors(
    client: Any, odc_emulator: OdcEmulator, change: dict[str, str | None], status: int, error: str
) -> None:
    form = {key: value for key, value in {**good_form(odc_emulator), **change}.items() if value is not None}
    response = client.request_token(form=form)
    assert response.status_code == status
    assert response.json()["error"] == error
    assert response.headers["cache-control"] == "no-store"
    if error == "invalid_client":
        assert response.json() == INVALID_CLIENT
    assert odc_emulator.stats()["token_exchanges"] == 0


def test_token_endpoint_rejects_json_and_duplicate_fields(client: Any, odc_emulator: OdcEmulator) -> None:
    token_url = client.discover()["token_endpoint"]
    as_json = client.session.post(token_url, json=good_form(odc_emulator), timeout=TIMEOUT)
    assert as_json.status_code == 400 and as_json.json()["error"] == "invalid_request"
    duplicated = [*good_form(odc_emulator).items(), ("client_id", odc_emulator.client_id)]
    response = client.session.post(token_url, data=duplicated, timeout=TIMEOUT)
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


def test_unknown_realm_is_not_a_token_endpoint(client: Any, odc_emulator: OdcEmulator) -> None:
    url = f"{odc_emulator.base_url}/auth/realms/{uuid.uuid4()}/protocol/openid-connect/token"
    response = client.session.post(url, data=good_form(odc_emulator), timeout=TIMEOUT)
    assert response.status_code == 404 and response.json() == {"error": "Realm does not exist"}


def test_token_redirect_answers_307(client: Any, odc_emulator: OdcEmulator) -> None:
    odc_emulator.configure(token_redirect_to="https://login.example.invalid/token")
    response = client.request_token(allow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == "https://login.example.invalid/token"
    odc_emulator.configure(token_redirect_to=None)
    assert client.request_token().status_code == 200


# Bearer enforcement ----------------------------------------------------------------------------------


def assert_unauthorized(response: requests.Response, detail_fragment: str) -> None:
    assert response.status_code == 401
    problem = response.json()
    assert problem["title"] == "Unauthorized" and problem["status"] == 401
    assert problem["errorCode"] == "OS-IDENTITY-40101" and problem["traceId"]
    assert problem["instance"] == response.request.path_url.split("?")[0]
    assert detail_fragment in problem["detail"]
    assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')


def test_api_requires_a_bearer_token_from_this_emulator(client: Any, odc_emulator: OdcEmulator) -> None:
    assert_unauthorized(client.get(ASSETS, authorize=False), "No access token")
    assert_unauthorized(client.get(ASSETS, headers={"Authorization": "Basic abc"}), "Bearer scheme")
    assert_unauthorized(client.get(ASSETS, token="not-a-jwt"), "malformed")

    token = client.token()
    header, _, signature = token.split(".")
    claims = jwt_part(token, 1) | {"exp": 4102444800}
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert_unauthorized(client.get(ASSETS, token=f"{header}.{forged_payload}.{signature}"), "signature")

    with OdcEmulator() as other:
        foreign = requests.post(other.token_url, data=good_form(other), timeout=TIMEOUT).json()["access_token"]
    assert_unauthorized(client.get(ENVIRONMENTS, token=foreign), "signature")

    assert client.get(ASSETS).status_code == 200
    stats = odc_emulator.stats()
    assert stats["unauthorized"] == 5
    assert stats["api_calls"] == {f"GET {ASSETS}": 5, f"GET {ENVIRONMENTS}": 1}


def test_token_expiry_is_enforced(client: Any, odc_emulator: OdcEmulator) -> None:
    odc_emulator.configure(token_lifetime=60)
    response = client.request_token()
    assert response.json()["expires_in"] == 60
    token = response.json()["access_token"]
    assert client.get(ENVIRONMENTS, token=token).status_code == 200
    odc_emulator.advance(60)  # the emulator's clock, not a sleep: a loaded machine cannot make it flaky
    assert_unauthorized(client.get(ENVIRONMENTS, token=token), "expired")
    assert client.get(ENVIRONMENTS, token=client.token(fresh=True)).status_code == 200


def test_token_lifetime_can_be_changed_over_http(client: Any, odc_emulator: OdcEmulator) -> None:
    response = requests.post(f"{odc_emulator.control_url}/config", json={"token_lifetime": 5}, timeout=TIMEOUT)
    assert response.status_code == 200 and response.json()["token_lifetime"] == 5
    assert client.request_token().json()["expires_in"] == 5
    bad = requests.post(f"{odc_emulator.control_url}/config", json={"token_lifetime": 0}, timeout=TIMEOUT)
    assert bad.status_code == 400


def test_revoke_invalidates_every_issued_token(client: Any, odc_emulator: OdcEmulator) -> None:
    first, second = client.token(), client.token(fresh=True)
    assert client.get(ASSETS, token=first).status_code == 200
    revoked = requests.post(f"{odc_emulator.control_url}/revoke", timeout=TIMEOUT)
    assert revoked.json() == {"revoked": 2}
    assert_unauthorized(client.get(ASSETS, token=first), "revoked")
    assert_unauthorized(client.get(ASSETS, token=second), "revoked")
    assert client.get(ASSETS, token=client.token(fresh=True)).status_code == 200
    assert odc_emulator.revoke_tokens() == 1  # the in-process helper does the same


def test_minted_tokens_lists_every_issued_token_across_resets(client: Any, odc_emulator: OdcEmulator) -> None:
    """Leak scans search for these, so a reset between tests must not forget the earlier ones."""
    first = client.token(fresh=True)
    odc_emulator.reset()
    second = client.token(fresh=True)
    assert odc_emulator.minted_tokens()[-2:] == [first, second]
    assert "minted" not in json.dumps(odc_emulator.stats())  # never served over HTTP or put in stats


def test_secret_rotation_rejects_the_old_secret_but_keeps_issued_tokens(client: Any, odc_emulator: OdcEmulator) -> None:
    old_secret, old_token = odc_emulator.client_secret, client.token()
    odc_emulator.configure(client_secret="rotated+/=&secret")
    assert odc_emulator.client_secret == "rotated+/=&secret"
    stale = client.request_token(form={**good_form(odc_emulator), "client_secret": old_secret})
    assert stale.status_code == 401
    assert client.request_token().status_code == 200
    assert client.get(ASSETS, token=old_token).status_code == 200  # ODC: old tokens stay valid for a while
    odc_emulator.reset()
    assert odc_emulator.client_secret == old_secret


def test_clock_offset_makes_the_emulator_run_ahead(client: Any, odc_emulator: OdcEmulator) -> None:
    token = client.token()
    odc_emulator.configure(clock_offset=43200 + 5)  # the server thinks 12 h have passed
    assert_unauthorized(client.get(ASSETS, token=token), "expired")
    fresh = client.token(fresh=True)
    assert jwt_part(fresh, 1)["iat"] - time.time() > 43000
    assert client.get(ASSETS, token=fresh).status_code == 200
