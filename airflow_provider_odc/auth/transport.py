"""The one way discovery and the token exchange talk HTTP: retried, bounded, never redirected."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import requests

from airflow_provider_odc.exceptions import OdcAuthError
from airflow_provider_odc.retries import RetryPolicy
from airflow_provider_odc.scrub import scrub

_REASON_LIMIT = 160
_OBJECT_PREFIX = re.compile(r"^(?:<[^>]*>|\w+\([^()]*\)):\s*")


class NoRedirectSession(requests.Session):
    """A session that never reads a ``Location``: redirects are not followed anyway.

    With ``allow_redirects=False`` requests still parses the ``Location`` of every 3xx (to offer
    ``response.next``), and a malformed one (``http://[::1``, a non-UTF-8 byte) raises a bare
    ``ValueError`` out of ``Session.request``. Here a 3xx is just an answer, which the caller refuses.
    """

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        return None


def transport_failure(exc: BaseException, secrets: Iterable[str | None] = ()) -> str:
    """A transport error as a message fragment: its class and, scrubbed and short, its innermost reason.

    requests' own text names the pool, the URL with its query and the wrapped errors; the innermost
    reason (``[Errno 111] Connection refused``, ``certificate verify failed``) is what a user acts on.
    """
    reason: BaseException = exc
    for _ in range(8):
        inner = getattr(reason, "reason", None)
        if not isinstance(inner, BaseException):
            inner = reason.args[0] if reason.args and isinstance(reason.args[0], BaseException) else None
        if inner is None:
            break
        reason = inner
    text = _OBJECT_PREFIX.sub("", str(reason)) if reason is not exc or reason.args else ""
    text = scrub(text, secrets, limit=_REASON_LIMIT) if text else ""
    return f"{type(exc).__name__} ({text})" if text else type(exc).__name__


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
    secrets: Iterable[str] = (),
) -> requests.Response:
    """Send an identity request; both kinds change nothing on the server, so every failure is retryable.

    Redirects are not followed (a redirect would carry the client secret wherever it points). When
    every attempt fails without an answer, raises OdcAuthError naming ``where``, the error's class and
    its reason scrubbed of ``secrets``, and ``advice``; the original exception is not chained (its text holds the URL
    and, for some errors, what was sent).
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
        failure = transport_failure(exc, secrets)
    raise OdcAuthError(f"{where} failed: {failure}. {advice}", retryable=True)
