"""The one way discovery and the token exchange talk HTTP: retried, bounded, never redirected."""

from __future__ import annotations

from typing import Any

import requests

from airflow_provider_odc.exceptions import OdcAuthError
from airflow_provider_odc.retries import RetryPolicy


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    timeout: float,
    verify: bool | str,
    retry: RetryPolicy,
    describe: str,
    where: str,
    advice: str,
    data: dict[str, Any] | None = None,
) -> requests.Response:
    """Send an identity request; both kinds change nothing on the server, so every failure is retryable.

    Redirects are not followed (a redirect would carry the client secret wherever it points). When
    every attempt fails without an answer, raises OdcAuthError naming ``where``, the error's class
    (requests' own messages can quote more than we want in a log) and ``advice``.
    """
    try:
        return retry.call(
            lambda: session.request(
                method,
                url,
                data=data,
                headers={"Accept": "application/json"},
                timeout=timeout,
                verify=verify,
                allow_redirects=False,
            ),
            idempotent=True,
            describe=describe,
        )
    except requests.RequestException as exc:
        raise OdcAuthError(f"{where} failed: {type(exc).__name__}. {advice}", retryable=True) from None
