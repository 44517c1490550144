"""When and how long to wait before sending an HTTP request again.

Shared by discovery, the token exchange and the API calls. tenacity does the looping; this module only
says which outcomes are worth another try and how long to wait: ``Retry-After`` when the server sends
it (seconds or HTTP-date, capped), else exponential backoff with full jitter.
No Airflow imports: the auth package uses it too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx
import requests
import tenacity
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

RETRY_AFTER_CAP = 120.0
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

log = logging.getLogger(__name__)
T = TypeVar("T")


def parse_retry_after(value: str | None, *, now: float | None = None, cap: float = RETRY_AFTER_CAP) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), capped; None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if moment is None or moment.tzinfo is None:
            return None
        seconds = moment.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), cap)


def surely_not_sent(exc: BaseException) -> bool:
    """True when the request never reached the server (refused, DNS, connect timeout).

    Only then may a non-idempotent request (POST, PATCH) be sent again: anything later, such as a
    read timeout or a dropped connection, may come after the server has acted on it.
    """
    if isinstance(exc, (requests.exceptions.ConnectTimeout, httpx.ConnectError, httpx.ConnectTimeout)):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        return isinstance(reason, (NewConnectionError, ConnectTimeoutError))
    return False


def transient(exc: BaseException, *, idempotent: bool) -> bool:
    """Is this exception worth another try for a request of this kind?"""
    if surely_not_sent(exc):
        return True
    failures = (requests.exceptions.ConnectionError, requests.exceptions.Timeout, httpx.TransportError)
    return idempotent and isinstance(exc, failures)


def retryable_status(status: int, *, idempotent: bool) -> bool:
    """429 means 'not processed, come back later' for every method; 5xx only for idempotent ones."""
    if status == 429:
        return True
    return idempotent and status in RETRYABLE_STATUSES


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with Retry-After and full-jitter exponential backoff."""

    max_retries: int = 3
    backoff_base: float = 1.0
    backoff_max: float = 30.0
    retry_after_cap: float = RETRY_AFTER_CAP
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)

    def wait_seconds(self, retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        if outcome is not None and not outcome.failed:
            response = outcome.result()
            if isinstance(response, (requests.Response, httpx.Response)):
                delay = parse_retry_after(response.headers.get("Retry-After"), cap=self.retry_after_cap)
                if delay is not None:
                    return delay
        backoff = tenacity.wait_random_exponential(multiplier=self.backoff_base, max=self.backoff_max)
        return float(backoff(retry_state))

    def call(
        self,
        send: Callable[[], requests.Response],
        *,
        idempotent: bool,
        describe: str,
    ) -> requests.Response:
        """Call ``send`` until it gives a response that is not worth retrying, or retries run out.

        Returns the last response (the caller turns an error status into an exception); re-raises the
        last exception when every attempt failed without a response.
        """
        response: requests.Response = self._retrying(tenacity.Retrying, idempotent=idempotent, describe=describe)(send)
        return response

    async def acall(
        self,
        send: Callable[[], Awaitable[httpx.Response]],
        *,
        idempotent: bool,
        describe: str,
    ) -> httpx.Response:
        """The same as ``call`` for an async sender (httpx), sleeping with ``asyncio.sleep``."""
        retrying = self._retrying(tenacity.AsyncRetrying, idempotent=idempotent, describe=describe)
        response: httpx.Response = await retrying(send)
        return response

    def _retrying(self, kind: Any, *, idempotent: bool, describe: str) -> Any:
        def before_sleep(state: tenacity.RetryCallState) -> None:
            outcome = state.outcome
            if outcome is None:
                return
            if outcome.failed:
                exc = outcome.exception()
                what = type(exc).__name__ if exc is not None else "an error"
            else:
                what = f"HTTP {outcome.result().status_code}"
            wait = state.next_action.sleep if state.next_action else 0.0
            log.warning(
                "%s got %s; retrying in %.1f s (retry %d of %d).",
                describe,
                what,
                wait,
                state.attempt_number,
                self.max_retries,
            )

        options: dict[str, Any] = {"sleep": self.sleep} if kind is tenacity.Retrying else {}
        return kind(
            stop=tenacity.stop_after_attempt(self.max_retries + 1),
            wait=self.wait_seconds,
            retry=(
                tenacity.retry_if_exception(lambda exc: transient(exc, idempotent=idempotent))
                | tenacity.retry_if_result(
                    lambda response: retryable_status(response.status_code, idempotent=idempotent)
                )
            ),
            before_sleep=before_sleep,
            # Out of attempts: the last response, or the last exception raised again (not a RetryError).
            retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
            **options,
        )
