"""When and how long to wait before sending an HTTP request again: decided from plain values, no I/O.

Shared by discovery, the token exchange and the API calls, sync and async. tenacity's state machine
(``Retrying.iter``) keeps the count; this module only says which outcomes are worth another try and how
long to wait: ``Retry-After`` when the server sends it (seconds or HTTP-date, capped), else exponential
backoff with full jitter. It never sends or sleeps: ``RetryPolicy.attempts`` is a generator that yields
``SEND`` (send once more) or a ``Wait`` and receives each outcome: an answer (anything with
``status_code`` and ``headers``) or an ``Unanswered``, the transport's failure classified by its adapter
(``auth/transport.py`` for requests, ``hooks/odc_async.py`` for httpx). ``call`` and ``acall`` are the
two small loops that drive it with a sync or an async sender.

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

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Protocol, TypeVar

import tenacity

RETRY_AFTER_CAP = 120.0
RATE_LIMIT_WINDOW = 60.0  # ODC's limits are per minute
RATE_LIMIT_JITTER = 0.2  # a 429 without Retry-After waits the window plus up to this fraction of it
DEFAULT_RATE_LIMIT_WAIT = 300.0
RATE_LIMIT_MAX_RETRIES = 30  # even within the budget: a server that keeps sending "Retry-After: 0"
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

log = logging.getLogger(__name__)
A = TypeVar("A", bound="Answer")


class Answer(Protocol):
    """What the policy reads of a response: requests', httpx's and the core's ``Reply`` all have it."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...


class Unanswered(Exception):
    """A request that got no HTTP answer, as its transport adapter classified the failure.

    :param cause: the transport's own exception (adapters describe it; it is never chained or shown whole).
    :param not_sent: it surely never reached the server (refused, DNS, connect timeout): safe to send again
        whatever the method.
    :param transient: a later attempt may succeed (connection dropped, read timeout): sent again only when
        the request is idempotent, since the server may have acted on it.
    """

    def __init__(self, cause: BaseException, *, not_sent: bool, transient: bool) -> None:
        super().__init__(type(cause).__name__)
        self.cause = cause
        self.not_sent = not_sent
        self.transient = transient

    def worth_retrying(self, *, idempotent: bool) -> bool:
        return self.not_sent or (idempotent and self.transient)


@dataclass(frozen=True)
class Wait:
    """A step of ``RetryPolicy.attempts``: sleep this long, then send again."""

    seconds: float


class _Send:
    """A step of ``RetryPolicy.attempts``: send the request (once more) and hand back the outcome."""

    def __repr__(self) -> str:
        return "SEND"


SEND = _Send()
Step = _Send | Wait


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
        path (``asyncio.sleep`` when None); ``uniform`` draws the jitter.
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

    def rate_limit_delay(self, retry_after: float | None) -> float:
        """How long to wait after a 429: its Retry-After, else ODC's window plus jitter."""
        if retry_after is not None:
            return retry_after
        return self.rate_limit_window + self.uniform(0.0, self.rate_limit_window * self.rate_limit_jitter)

    def attempts(self, *, idempotent: bool, describe: str) -> Generator[Step, A | Unanswered, A | Unanswered]:
        """The retry loop without I/O: yields ``SEND`` (send and hand back the outcome) or a ``Wait``; returns
        the last outcome: an answer not worth retrying (the caller judges its status), or the last
        ``Unanswered`` once no retry is left or allowed."""
        retrying = self._retrying(idempotent=idempotent, describe=describe)
        retrying.begin()
        state = tenacity.RetryCallState(retrying, fn=None, args=(), kwargs={})
        while True:
            try:
                action = retrying.iter(state)
            except Unanswered as unanswered:  # an outcome the predicate does not retry: tenacity re-raises it
                return unanswered
            if isinstance(action, tenacity.DoAttempt):
                outcome = yield SEND
                if isinstance(outcome, Unanswered):
                    state.set_exception((Unanswered, outcome, None))
                else:
                    state.set_result(outcome)
            elif isinstance(action, tenacity.DoSleep):
                state.prepare_for_next_attempt()
                yield Wait(float(action))
            else:
                last: A | Unanswered = action
                return last

    def call(
        self,
        send: Callable[[], A],
        *,
        idempotent: bool,
        describe: str,
        classify: Callable[[BaseException], Unanswered | None] = lambda exc: None,
    ) -> A:
        """Call ``send`` until it gives a response that is not worth retrying, or retries run out.

        Returns the last response (the caller turns an error status into an exception); an exception
        ``classify`` turns into an ``Unanswered`` is retried as the policy says, and when every attempt
        failed without a response the last one is raised again (any other exception at once).
        """
        steps = self.attempts(idempotent=idempotent, describe=describe)
        step = next(steps)
        while True:
            if isinstance(step, Wait):
                self.sleep(step.seconds)
                outcome: A | Unanswered | None = None
            else:
                try:
                    outcome = send()
                except Exception as exc:
                    outcome = classify(exc)
                    if outcome is None:
                        raise
            try:
                step = steps.send(outcome)  # type: ignore[arg-type]  # None resumes after a Wait
            except StopIteration as done:
                if isinstance(done.value, Unanswered):
                    raise done.value.cause from None
                answer: A = done.value
                return answer

    async def acall(
        self,
        send: Callable[[], Awaitable[A]],
        *,
        idempotent: bool,
        describe: str,
        classify: Callable[[BaseException], Unanswered | None] = lambda exc: None,
    ) -> A:
        """The same as ``call`` for an async sender (httpx), sleeping with ``async_sleep``."""
        steps = self.attempts(idempotent=idempotent, describe=describe)
        step = next(steps)
        while True:
            if isinstance(step, Wait):
                await (self.async_sleep or asyncio.sleep)(step.seconds)
                outcome: A | Unanswered | None = None
            else:
                try:
                    outcome = await send()
                except Exception as exc:
                    outcome = classify(exc)
                    if outcome is None:
                        raise
            try:
                step = steps.send(outcome)  # type: ignore[arg-type]  # None resumes after a Wait
            except StopIteration as done:
                if isinstance(done.value, Unanswered):
                    raise done.value.cause from None
                answer: A = done.value
                return answer

    def _retry_after(self, outcome: Any) -> tuple[int | None, float | None]:
        """The status of a response outcome and its Retry-After in seconds (None: not a response / no header)."""
        if outcome is None or outcome.failed:
            return None, None
        answer = outcome.result()
        return answer.status_code, parse_retry_after(answer.headers.get("Retry-After"), cap=self.retry_after_cap)

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

    def _retrying(self, *, idempotent: bool, describe: str) -> tenacity.Retrying:
        budget = _CallBudget()  # one per call: the policy itself is shared and immutable

        def before_sleep(state: tenacity.RetryCallState) -> None:
            outcome = state.outcome
            if outcome is None:
                return
            wait = state.next_action.sleep if state.next_action else 0.0
            if outcome.failed:
                exc = outcome.exception()
                what = type(exc.cause if isinstance(exc, Unanswered) else exc).__name__
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

        def worth_retrying(exc: BaseException) -> bool:
            return isinstance(exc, Unanswered) and exc.worth_retrying(idempotent=idempotent)

        return tenacity.Retrying(
            stop=lambda state: self._decide(budget, state)[1],
            wait=lambda state: self._decide(budget, state)[0],
            retry=(
                tenacity.retry_if_exception(worth_retrying)
                | tenacity.retry_if_result(lambda answer: retryable_status(answer.status_code, idempotent=idempotent))
            ),
            before_sleep=before_sleep,
            # Out of attempts: the last outcome as it is (an answer, or the Unanswered), not a RetryError.
            retry_error_callback=lambda state: (
                (state.outcome.exception() or state.outcome.result()) if state.outcome else None
            ),
        )
