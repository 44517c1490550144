"""A mass redeploy on a virtual clock: the real pacing ledger, retry policy and emulator windows, no sleeping.

``simulate`` runs ``deploys`` deploy tasks over ``workers`` worker slots as a discrete-event simulation. What
is real: the ledger protocol (``airflow_provider_odc.pacing.reserve``), ODC's clock estimate
(``ServerClock``, fed whole-second ``Date`` headers), the retry policy's decisions after a 429
(``RetryPolicy.attempts``, 60 s plus jitter, re-sent) and ODC's limits (``emulator.rate_limits``:
``limits_for`` and ``SlidingWindows``, the code the emulator enforces). What is simulated: time, the network
(latency each way), the shared Variable store (latency on every read and write; now and then a write stalls
for seconds, longer than the settle delay, so a reservation is really lost) and worker clocks that are off
by up to 90 s. Each task is a new process (as an Airflow task is): its clock estimate starts unknown and
is learnt from the unlimited discovery GET, as the hook does.

A deploy task sends what ``OdcDeployOperator`` sends (measured on the emulator): two asset-repository GETs,
one portfolio GET, one build-operations GET and the deployment POST.

Used by ``tests/pacing/test_simulation.py`` (counts) and ``benchmarks/pacing.py`` (the figures).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import random
from collections import Counter
from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

from airflow_provider_odc.emulator.rate_limits import RATE_WINDOW, LimitSettings, SlidingWindows, limits_for
from airflow_provider_odc.pacing import (
    DEFAULT_MARGIN,
    Grant,
    Ledger,
    Now,
    Pause,
    Read,
    ServerClock,
    Write,
    ledgers_for,
    reserve,
    route_of,
)
from airflow_provider_odc.retries import SEND, RetryPolicy, Wait

EPOCH = 1_800_000_000.0  # virtual time starts here (a plausible Date)
DEPLOY = "/api/deployments/v1/deployment-operations"
#: The requests of one deploy task, in order (as the emulator logged them for OdcDeployOperator).
DEPLOY_TASK_REQUESTS = (
    ("GET", "/api/asset-repository/v1/assets"),
    ("GET", "/api/portfolios/v2/environments"),
    ("GET", "/api/asset-repository/v1/assets/00000000-0000-0000-0000-000000000001/latest-revision"),
    ("GET", "/api/builds/v1/build-operations"),
    ("POST", DEPLOY),
)
DISCOVERY = ("GET", "/identity/.well-known/openid-configuration")


@dataclass(frozen=True)
class SimSettings:
    """The simulated world. Latencies in seconds; ``skews`` are the worker clocks' offsets, cycled."""

    deploys: int = 1000
    workers: int = 20
    paced: bool = True
    seed: int = 7
    skews: tuple[float, ...] = (0.0, 90.0, -45.0, 30.0)
    task_start: tuple[float, float] = (1.0, 3.0)  # a task process starting, before its first request
    network: tuple[float, float] = (0.005, 0.05)  # one way
    store_read: tuple[float, float] = (0.005, 0.05)
    store_write: tuple[float, float] = (0.01, 0.1)
    stalled_write_share: float = 0.02  # a write that lands 1-4 s late: past the settle delay
    stalled_write: tuple[float, float] = (1.0, 4.0)
    rate_limit_wait: float = 300.0
    margin: float = DEFAULT_MARGIN


@dataclass
class _Answer:
    status_code: int
    headers: dict[str, str]


@dataclass
class SimResult:
    settings: SimSettings
    wall_s: float = 0.0
    tasks_succeeded: int = 0
    tasks_failed: int = 0
    posts_sent: int = 0
    posts_rate_limited: int = 0
    requests_sent: int = 0
    requests_rate_limited: int = 0
    accepted: Counter[str] = field(default_factory=Counter)  # window key -> accepted requests
    deploys_accepted: Counter[int] = field(default_factory=Counter)  # deploy number -> accepted POSTs
    lock_claims: int = 0
    store_writes: int = 0
    store_reads: int = 0
    pacing_wait_s: float = 0.0

    @property
    def floor_s(self) -> float:
        """The least time the limits allow for what was accepted: a key that accepted ``n`` requests at
        ``limit`` a minute needs its last one at least ``(ceil(n / limit) - 1) * 60 s`` after its first."""
        limits = {key: limit for _, key, limit in _all_limits()}
        return max(
            ((math.ceil(count / limits[key]) - 1) * RATE_WINDOW for key, count in self.accepted.items()), default=0.0
        )

    def summary(self) -> dict[str, Any]:
        floor = self.floor_s
        return {
            "paced": self.settings.paced,
            "deploys": self.settings.deploys,
            "workers": self.settings.workers,
            "clock_skews_s": list(self.settings.skews),
            "stalled_write_share": self.settings.stalled_write_share,
            "tasks_succeeded": self.tasks_succeeded,
            "tasks_failed": self.tasks_failed,
            "posts_sent": self.posts_sent,
            "posts_accepted": sum(self.deploys_accepted.values()),
            "deploys_accepted_once": sum(count == 1 for count in self.deploys_accepted.values()),
            "posts_rate_limited": self.posts_rate_limited,
            "post_429_share": round(self.posts_rate_limited / max(self.posts_sent, 1), 4),
            "requests_sent": self.requests_sent,
            "requests_rate_limited": self.requests_rate_limited,
            "lock_claims": self.lock_claims,
            "variable_reads_per_request": round(self.store_reads / max(self.requests_sent, 1), 2),
            "variable_writes_per_request": round(self.store_writes / max(self.requests_sent, 1), 2),
            "wall_s": round(self.wall_s, 1),
            "floor_s": floor,
            "ratio": round(self.wall_s / floor, 3) if floor else None,
        }


def _all_limits() -> Iterable[tuple[str, str, int]]:
    for method, path in DEPLOY_TASK_REQUESTS:
        yield from limits_for(method, route_of(path), LimitSettings())


Delay = Generator[float, None, Any]


class _World:
    """The shared pieces: the virtual clock, the store, ODC's windows, the event queue."""

    def __init__(self, settings: SimSettings) -> None:
        self.settings = settings
        self.rng = random.Random(settings.seed)
        self.now = EPOCH
        self.store: dict[str, str] = {}
        self.windows = SlidingWindows()
        self.result = SimResult(settings)
        self._queue: list[tuple[float, int, Delay]] = []
        self._order = itertools.count()

    def spawn(self, process: Delay, at: float) -> None:
        heapq.heappush(self._queue, (at, next(self._order), process))

    def run(self) -> None:
        while self._queue:
            at, _, process = heapq.heappop(self._queue)
            self.now = at
            try:
                delay = next(process)
            except StopIteration:
                continue
            self.spawn(process, at + max(delay, 0.0))

    def between(self, bounds: tuple[float, float]) -> float:
        return self.rng.uniform(*bounds)

    # -- one ledger step, as RequestPacer._perform does it, on the virtual clock -----------------------

    def reserve(self, ledgers: tuple[Ledger, ...], clock: ServerClock) -> Generator[float, None, Grant]:
        flow = reserve(
            ledgers, max_wait=self.settings.rate_limit_wait, margin=self.settings.margin, uniform=self.rng.uniform
        )
        answer: Any = None
        while True:
            try:
                step = flow.send(answer)
            except StopIteration as done:
                grant: Grant = done.value
                return grant
            if isinstance(step, Now):
                answer = clock.now()
            elif isinstance(step, Pause):
                yield step.seconds
                answer = None
            elif isinstance(step, Read):
                self.result.store_reads += 1
                yield self.between(self.settings.store_read)
                answer = self.store.get(step.key)
            elif isinstance(step, Write):
                self.result.store_writes += 1
                stalled = self.rng.random() < self.settings.stalled_write_share
                yield self.between(self.settings.stalled_write if stalled else self.settings.store_write)
                self.store[step.key] = step.value  # lands whole: last writer wins
                answer = True

    # -- one HTTP exchange with the emulator's windows -----------------------------------------------------

    def exchange(self, method: str, path: str, clock: ServerClock) -> Generator[float, None, _Answer]:
        yield self.between(self.settings.network)
        limits = limits_for(method, route_of(path), LimitSettings())
        refused = self.windows.admit(limits, self.now) if limits else None
        if refused is None:
            for _, key, _ in limits:
                self.result.accepted[key] += 1
        date = formatdate(math.floor(self.now), usegmt=True)
        yield self.between(self.settings.network)
        clock.observe(date)
        if limits:
            self.result.requests_sent += 1
            self.result.requests_rate_limited += refused is not None
        return _Answer(429 if refused else (201 if method == "POST" else 200), {"Date": date})

    # -- a deploy task, a worker slot -------------------------------------------------------------------

    def call(self, method: str, path: str, clock: ServerClock, policy: RetryPolicy) -> Generator[float, None, _Answer]:
        """One API call as the hook makes it: paced before each attempt, 429s waited out by the policy."""
        attempts = policy.attempts(idempotent=method == "GET", describe=f"{method} {path}")
        step = next(attempts)
        while True:
            if isinstance(step, Wait):
                yield step.seconds
                outcome: Any = None
            else:
                assert step is SEND
                ledgers = ledgers_for("sim", method, path)
                if self.settings.paced and ledgers:
                    if not clock.known:
                        clock.observe((yield from self.exchange(*DISCOVERY, clock)).headers["Date"])
                    grant = yield from self.reserve(ledgers, clock)
                    self.result.lock_claims += grant.claims
                    self.result.pacing_wait_s += grant.waited
                    if grant.refused:
                        raise _TaskFailed
                outcome = yield from self.exchange(method, path, clock)
                if method == "POST":
                    self.result.posts_sent += 1
                    self.result.posts_rate_limited += outcome.status_code == 429
            try:
                step = attempts.send(outcome)
            except StopIteration as done:
                answer: _Answer = done.value
                return answer

    def deploy_task(self, number: int, skew: float) -> Generator[float, None, bool]:
        clock = ServerClock(local=lambda: self.now + skew)  # a new process: nothing known yet
        policy = RetryPolicy(rate_limit_wait=self.settings.rate_limit_wait, uniform=self.rng.uniform)
        yield self.between(self.settings.task_start)
        for method, path in DEPLOY_TASK_REQUESTS:
            try:
                answer = yield from self.call(method, path, clock, policy)
            except _TaskFailed:
                return False
            if answer.status_code >= 300:
                return False
            if method == "POST":
                self.result.deploys_accepted[number] += 1
        return True

    def worker(self, tasks: list[int], skew: float) -> Delay:
        while tasks:
            ok = yield from self.deploy_task(tasks.pop(0), skew)
            self.result.tasks_succeeded += ok
            self.result.tasks_failed += not ok
            self.result.wall_s = max(self.result.wall_s, self.now - EPOCH)


class _TaskFailed(Exception):
    """The pacer refused: the slot lies beyond the call's wait (the hook raises OdcApiError then)."""


def simulate(settings: SimSettings | None = None) -> SimResult:
    """Run the mass redeploy on the virtual clock and return what was counted."""
    settings = settings or SimSettings()
    world = _World(settings)
    tasks = list(range(settings.deploys))  # one queue: a free worker slot takes the next task
    for index in range(settings.workers):
        world.spawn(world.worker(tasks, settings.skews[index % len(settings.skews)]), EPOCH)
    quiet = [logging.getLogger(name) for name in ("airflow_provider_odc.retries", "airflow_provider_odc.pacing")]
    levels = [logger.level for logger in quiet]
    for logger in quiet:  # a thousand simulated 429 warnings say nothing the counts do not
        logger.setLevel(logging.ERROR)
    try:
        world.run()
    finally:
        for logger, level in zip(quiet, levels, strict=True):
            logger.setLevel(level)
    return world.result
