"""Find the token endpoint through ODC's OIDC discovery document, and refuse one we must not trust.

The token endpoint receives the client secret, so it must be on the portal's own origin and use https
(plain http only when the portal itself is a loopback address, i.e. the local emulator), judged by the
URL gate (``auth/urls.py``) the way requests and httpx will connect. A document
that is not JSON or lacks ``token_endpoint`` is refused before any credential is sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

import requests

from airflow_provider_odc.auth.transport import send
from airflow_provider_odc.auth.urls import UrlRefused, display_url, on_origin
from airflow_provider_odc.exceptions import OdcAuthError, OdcTokenEndpointRefusedError
from airflow_provider_odc.retries import RetryPolicy
from airflow_provider_odc.settings import is_loopback_host

DISCOVERY_PATH = "/identity/.well-known/openid-configuration"


def discovery_url(origin: str) -> str:
    return origin + DISCOVERY_PATH


def fetch_token_endpoint(
    session: requests.Session,
    origin: str,
    *,
    conn_id: str,
    timeout: float,
    verify: bool | str,
    retry: RetryPolicy,
) -> str:
    """GET the discovery document of ``origin`` and return its validated ``token_endpoint``."""
    url = discovery_url(origin)
    step = f"OIDC discovery at {url}"
    response = send(
        session,
        "GET",
        url,
        timeout=timeout,
        verify=verify,
        retry=retry,
        describe=f"OIDC discovery for connection '{conn_id}'",
        conn_id=conn_id,
        step=step,
        advice="Check the Portal domain (host) and that the workers can reach it.",
    )
    if response.status_code != 200:
        raise OdcAuthError(
            f"answered HTTP {response.status_code}.",
            conn_id=conn_id,
            step=step,
            hint="Check that the Portal domain (host) is your ODC portal domain, e.g. acme.outsystems.dev.",
            retryable=response.status_code >= 500 or response.status_code == 429,
        )
    try:
        document = response.json()
    except ValueError:
        raise OdcAuthError(
            "did not return JSON.",
            conn_id=conn_id,
            step=step,
            hint="Check that the Portal domain (host) is your ODC portal domain.",
        ) from None
    if not isinstance(document, dict) or not isinstance(document.get("token_endpoint"), str):
        raise OdcAuthError(
            "returned a document without a 'token_endpoint'; no credentials were sent.", conn_id=conn_id, step=step
        )
    return validate_token_endpoint(document["token_endpoint"], origin, conn_id=conn_id)


def validate_token_endpoint(
    token_endpoint: str, origin: str, *, conn_id: str, source: str = "discovery", secrets: Iterable[str | None] = ()
) -> str:
    """Return ``token_endpoint`` if every transport would send it to ``origin`` (https unless loopback).

    Otherwise raise OdcTokenEndpointRefusedError naming the connection, the URL (quoted safely) and
    ``source`` (where the endpoint came from); the client secret goes nowhere.
    """
    refused = f"refused the token endpoint {display_url(token_endpoint, secrets)} from {source}"
    try:
        parts = urlsplit(token_endpoint)
        scheme, hostname = parts.scheme, parts.hostname or ""
    except (TypeError, ValueError):
        scheme = hostname = ""
    if scheme != "https" and not (scheme == "http" and is_loopback_host(hostname)):
        raise OdcTokenEndpointRefusedError(f"{refused}: it is not https. No credentials were sent.", conn_id=conn_id)
    try:
        on_origin(token_endpoint, origin)
    except UrlRefused as reason:
        raise OdcTokenEndpointRefusedError(
            f"{refused}: it is not on the portal's origin {origin} ({reason}). No credentials were sent; check "
            "the Portal domain (host) of the connection.",
            conn_id=conn_id,
        ) from None
    return token_endpoint
