"""When and how long to wait before sending an HTTP request again.

Shared by discovery, the token exchange and the API calls. tenacity does the looping; this module only
says which outcomes are worth another try and how long to wait: ``Retry-After`` when the server sends
it (seconds or HTTP-date, capped), else exponential backoff with full jitter.

A 429 is different from the other failures. ODC's limits are per organization and per minute (100 requests
a minute per API, 10 build or deployment POSTs a minute) and ODC promises no ``Retry-After``: a few seconds
of backoff would only be refused again, by the same budget every worker of the fleet shares. So a 429
without ``Retry-After`` waits out ODC's one-minute window plus up to 20 % jitter (a fleet does not return
in lockstep), and 429s are retried for as long as the call's total wait stays within ``rate_limit_wait``
(the connection's ``rate_limit_wait_seconds``), whatever ``max_retries`` says; ``max_retries`` bounds the
other retries. A 429 was not processed, so even a POST may be sent again.
No Airflow imports: the auth package uses it too.
"""

from __future__ import annotations

import logging
import random
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
RATE_LIMIT_WINDOW = 60.0  # ODC's limits are per minute
RATE_LIMIT_JITTER = 0.2  # a 429 without Retry-After waits the window plus up to this fraction of it
DEFAULT_RATE_LIMIT_WAIT = 300.0
RATE_LIMIT_MAX_RETRIES = 30  # even within the budget: a server that keeps sending "Retry-After: 0"
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


@dataclass
class _CallBudget:
    """What one call has spent: retries after errors, and waits after 429s (each attempt decided once)."""

    error_retries: int = 0
    rate_limited_retries: int = 0
    rate_limited_wait: float = 0.0
    decided: dict[int, tuple[float, bool]] = field(default_factory=dict)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries: Retry-After when sent; ODC's one-minute window for a bare 429; else full-jitter backoff.

    :param max_retries: retries after 5xx and transport errors (where a retry is safe).
    :param rate_limit_wait: the longest one call waits in total after 429s (0: fail at the first 429).
    :param sleep: how the sync path waits (tests record the waits instead); ``async_sleep`` for the async
        path (tenacity's ``asyncio.sleep`` when None); ``uniform`` draws the jitter.
    """

    max_retries: int = 3
    backoff_base: float = 1.0
    backoff_max: float = 30.0
    retry_after_cap: float = RETRY_AFTER_CAP
    rate_limit_wait: float = DEFAULT_RATE_LIMIT_WAIT
    rate_limit_window: float = RATE_LIMIT_WINDOW
    rate_limit_jitter: float = RATE_LIMIT_JITTER
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)
    async_sleep: Callable[[float], Awaitable[None]] | None = field(default=None, repr=False, compare=False)
    uniform: Callable[[float, float], float] = field(default=random.uniform, repr=False, compare=False)

    def _retry_after(self, outcome: Any) -> tuple[int | None, float | None]:
        """The status of a response outcome and its Retry-After in seconds (None: not a response / no header)."""
        if outcome is None or outcome.failed:
            return None, None
        response = outcome.result()
        if not isinstance(response, (requests.Response, httpx.Response)):
            return None, None
        return response.status_code, parse_retry_after(response.headers.get("Retry-After"), cap=self.retry_after_cap)

    def rate_limit_delay(self, retry_after: float | None) -> float:
        """How long to wait after a 429: its Retry-After, else ODC's window plus jitter."""
        if retry_after is not None:
            return retry_after
        return self.rate_limit_window + self.uniform(0.0, self.rate_limit_window * self.rate_limit_jitter)

    def _decide(self, budget: _CallBudget, retry_state: tenacity.RetryCallState) -> tuple[float, bool]:
        """``(seconds to wait, stop now)`` for the outcome of this attempt; decided once per attempt."""
        attempt = retry_state.attempt_number
        if attempt in budget.decided:
            return budget.decided[attempt]
        status, retry_after = self._retry_after(retry_state.outcome)
        if status == 429:
            wait = self.rate_limit_delay(retry_after)
            stop = (
                budget.rate_limited_retries >= RATE_LIMIT_MAX_RETRIES
                or budget.rate_limited_wait + wait > self.rate_limit_wait
            )
            if not stop:
                budget.rate_limited_retries += 1
                budget.rate_limited_wait += wait
        else:
            if retry_after is not None:
                wait = retry_after
            else:
                backoff = tenacity.wait_random_exponential(multiplier=self.backoff_base, max=self.backoff_max)
                wait = float(backoff(retry_state))
            stop = budget.error_retries >= self.max_retries
            if not stop:
                budget.error_retries += 1
        budget.decided[attempt] = (wait, stop)
        return wait, stop

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
        budget = _CallBudget()  # one per call: the policy itself is shared and immutable

        def before_sleep(state: tenacity.RetryCallState) -> None:
            outcome = state.outcome
            if outcome is None:
                return
            wait = state.next_action.sleep if state.next_action else 0.0
            if outcome.failed:
                exc = outcome.exception()
                what = type(exc).__name__ if exc is not None else "an error"
            else:
                what = f"HTTP {outcome.result().status_code}"
            if not outcome.failed and outcome.result().status_code == 429:
                log.warning(
                    "%s got HTTP 429 (ODC rate limit); retrying in %.1f s (%.0f of at most %.0f s waited).",
                    describe,
                    wait,
                    budget.rate_limited_wait,
                    self.rate_limit_wait,
                )
                return
            log.warning(
                "%s got %s; retrying in %.1f s (retry %d of %d).",
                describe,
                what,
                wait,
                budget.error_retries,
                self.max_retries,
            )

        options: dict[str, Any] = {}
        if kind is tenacity.Retrying:
            options["sleep"] = self.sleep
        elif self.async_sleep is not None:
            options["sleep"] = self.async_sleep
        return kind(
            stop=lambda state: self._decide(budget, state)[1],
            wait=lambda state: self._decide(budget, state)[0],
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
