"""The OAuth 2.0 client-credentials exchange with ODC's token endpoint.

The form is encoded once, by requests (ODC secrets contain ``+``, ``/`` and ``=``; pre-encoding them
is a classic cause of ``invalid_client``). Redirects are not followed: a redirect would carry the
secret wherever it points. OAuth errors fail at once with what to check; 429, 5xx and connection
errors are retried, which is safe here because a token request changes nothing on the server.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import requests

from airflow_provider_odc.auth.token import LIFETIME_RANGE, AccessToken, lifetime_from
from airflow_provider_odc.auth.transport import send
from airflow_provider_odc.exceptions import OdcAuthError
from airflow_provider_odc.retries import RetryPolicy
from airflow_provider_odc.scrub import quoted, scrub

_CREDENTIALS_HINT = (
    "Check the Client ID (login) and Client secret (password) of the connection, and in the ODC Portal "
    "(Management > Govern > API clients) that the API client is Available: not Revoked (suspended) or "
    "Expired, and that its secret was not regenerated."
)
_REQUEST_HINT = (
    "The token endpoint refused the request itself; check that the Portal domain (host) is an ODC "
    "portal and that no proxy alters requests to it."
)
OAUTH_HINTS = {
    "invalid_client": _CREDENTIALS_HINT,
    "unauthorized_client": _CREDENTIALS_HINT,
    "invalid_grant": _CREDENTIALS_HINT,
    "invalid_request": _REQUEST_HINT,
    "unsupported_grant_type": _REQUEST_HINT,
    "invalid_scope": _REQUEST_HINT,
}
_MAX_DESCRIPTION = 300
_MAX_ERROR = 80


def exchange_client_credentials(
    session: requests.Session,
    token_endpoint: str,
    *,
    client_id: str,
    client_secret: str,
    conn_id: str,
    timeout: float,
    verify: bool | str,
    retry: RetryPolicy,
    clock: Callable[[], float] = time.time,
) -> AccessToken:
    """POST the client credentials and return the access token, or raise OdcAuthError."""
    step = f"token request to {token_endpoint}"
    response = send(
        session,
        "POST",
        token_endpoint,
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret},
        timeout=timeout,
        verify=verify,
        retry=retry,
        describe=f"Token request for connection '{conn_id}'",
        conn_id=conn_id,
        step=step,
        advice="Check that the workers can reach the portal.",
        secrets=[client_secret],
    )
    received_at = clock()
    status = response.status_code
    if 300 <= status < 400:
        raise OdcAuthError(
            f"answered with a redirect (HTTP {status}); redirects are not followed, so the client secret goes "
            "nowhere else.",
            conn_id=conn_id,
            step=step,
            hint="Check the Portal domain (host).",
        )
    body = _json_or_none(response)
    if status != 200:
        raise _error_for(step, status, body, client_secret, client_id, conn_id=conn_id)
    return token_from_body(body, step, received_at, conn_id=conn_id)


def _json_or_none(response: requests.Response) -> object:
    try:
        return response.json()
    except ValueError:
        return None


def _error_for(
    step: str, status: int, body: object, client_secret: str, client_id: str = "", *, conn_id: str | None = None
) -> OdcAuthError:
    """The OAuth error of a refused token request, with ``error`` and ``error_description`` scrubbed and cut:
    a token endpoint may echo the form it received, the client secret included, in any encoding."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, str) and 400 <= status < 500 and status != 429:
        basic = (client_id, client_secret)
        shown_error = scrub(error, [client_secret], basic=basic, limit=_MAX_ERROR)
        description = body.get("error_description") if isinstance(body, dict) else None
        text = f"was refused (HTTP {status}): {shown_error}"
        if isinstance(description, str) and description:
            text += f" ({scrub(description, [client_secret], basic=basic, limit=_MAX_DESCRIPTION)})"
        hint = OAUTH_HINTS.get(error, _CREDENTIALS_HINT if status == 401 else _REQUEST_HINT)
        return OdcAuthError(f"{text}.", conn_id=conn_id, step=step, hint=hint, oauth_error=shown_error)
    retryable = status == 429 or status >= 500
    advice = "ODC's identity service is unavailable; try again later." if retryable else _REQUEST_HINT
    return OdcAuthError(f"answered HTTP {status}.", conn_id=conn_id, step=step, hint=advice, retryable=retryable)


def token_from_body(body: object, step: str, received_at: float, *, conn_id: str | None = None) -> AccessToken:
    """The access token of a 200 answer; a field that is missing, of the wrong type or out of range is
    an OdcAuthError (what the server sent is quoted scrubbed and short: it sits next to the token)."""
    if not isinstance(body, dict):
        raise OdcAuthError("answered 200 without a JSON object.", conn_id=conn_id, step=step, retryable=True)
    value = body.get("access_token")
    token_type = body.get("token_type")
    expires_in = body.get("expires_in")
    if not isinstance(value, str) or not value:
        raise OdcAuthError("answered 200 without an access_token.", conn_id=conn_id, step=step)
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        shown = scrub(quoted(token_type, limit=10_000), [value], limit=_MAX_ERROR)
        raise OdcAuthError(
            f"returned token_type {shown}; only Bearer tokens are supported.", conn_id=conn_id, step=step
        )
    lifetime = lifetime_from(expires_in)
    if lifetime is None:
        low, high = LIFETIME_RANGE
        shown = scrub(quoted(expires_in, limit=10_000), [value], limit=_MAX_ERROR)
        raise OdcAuthError(
            f"returned expires_in {shown}; a number of seconds from {low:g} to {high:g} is required "
            "(ODC issues 43200).",
            conn_id=conn_id,
            step=step,
        )
    return AccessToken(value=value, token_type="Bearer", expires_at=received_at + lifetime, issued_at=received_at)
