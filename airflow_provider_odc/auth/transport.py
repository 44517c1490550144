"""The requests adapter: how the provider's sync calls meet requests, and nothing else.

Which requests exceptions mean "never sent" or "maybe sent" (``unanswered``), a session that never
parses a ``Location`` (``NoRedirectSession``), and ``send`` for discovery and the token exchange. The
decisions (retries, waits) are ``retries.RetryPolicy``'s, made from plain values.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from airflow_provider_odc.exceptions import OdcAuthError
from airflow_provider_odc.request_core import transport_failure
from airflow_provider_odc.retries import RetryPolicy, Unanswered


class NoRedirectSession(requests.Session):
    """A session that never reads a ``Location``: redirects are not followed anyway.

    With ``allow_redirects=False`` requests still parses the ``Location`` of every 3xx (to offer
    ``response.next``), and a malformed one (``http://[::1``, a non-UTF-8 byte) raises a bare
    ``ValueError`` out of ``Session.request``. Here a 3xx is just an answer, which the caller refuses.
    """

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        return None


def unanswered(exc: BaseException) -> Unanswered | None:
    """A requests failure as the retry policy reads it; None for an exception that is not requests'.

    Only a request that surely never reached the server (refused, DNS, connect timeout) may be sent again
    whatever its method; a read timeout or a dropped connection may come after the server acted on it.
    """
    if not isinstance(exc, requests.RequestException):
        return None
    not_sent = isinstance(exc, requests.exceptions.ConnectTimeout)
    if not not_sent and isinstance(exc, requests.exceptions.ConnectionError):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        not_sent = isinstance(reason, (NewConnectionError, ConnectTimeoutError))
    transient = isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout))
    return Unanswered(exc, not_sent=not_sent, transient=transient)


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    timeout: float,
    verify: bool | str,
    retry: RetryPolicy,
    describe: str,
    conn_id: str,
    step: str,
    advice: str,
    data: dict[str, Any] | None = None,
    secrets: Iterable[str] = (),
) -> requests.Response:
    """Send an identity request; both kinds change nothing on the server, so every failure is retryable.

    Redirects are not followed (a redirect would carry the client secret wherever it points). When
    every attempt fails without an answer, raises OdcAuthError naming ``step``, the error's class and
    its reason scrubbed of ``secrets``, and ``advice``; the original exception is not chained (its text
    holds the URL and, for some errors, what was sent).
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
            classify=unanswered,
        )
    except requests.RequestException as exc:
        failure = transport_failure(exc, secrets)
    raise OdcAuthError(f"failed: {failure}.", conn_id=conn_id, step=step, hint=advice, retryable=True)


__all__ = ["NoRedirectSession", "send", "transport_failure", "unanswered"]
