"""The claim protocol under adversarial latencies: many worker processes on a virtual clock.

Each simulated process is a thread running the real ``TokenCache`` and ``ExchangeLease`` (and the lease's
real renewal thread), but only one runs at a time and time is virtual: every sleep, and every Variable read
or write, hands control to a scheduler that wakes the thread whose moment comes first. A Variable call takes
a random time (mostly quick, sometimes up to ``MAX_LATENCY``, as on a loaded api-server), and takes effect at
a random instant within it. Hosts' wall clocks are 90 s apart; their monotonic clocks start anywhere. The
outcome depends only on the seed, never on how fast the machine runs the test.

The property: 40 processes starting cold within a few seconds make exactly one token exchange, at most one
process holds the lease at any instant, and every process gets that token; a dead holder's record is taken
over by one process. The latencies stay inside what ``lease.py`` assumes (a renewal lands within a slow
claimant's extra settle), so any second exchange is a defect of the protocol.
"""

from __future__ import annotations

import heapq
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from airflow_provider_odc.auth.token import AccessToken
from airflow_provider_odc.cache.envelope import CachedToken
from airflow_provider_odc.cache.lease import ExchangeLease
from airflow_provider_odc.cache.token_cache import TokenCache

from .test_lease import held
from .test_token_cache import ENDPOINT, codec

PROCESSES = 40
#: The slowest Variable call: four times the shortest settle, the load the slow-claimant rule is built for.
MAX_LATENCY = 2.0
EPOCH = 1_800_000_000.0


class Stop(BaseException):
    """Ends a simulated thread still waiting when the simulation is over."""


class VirtualTime:
    """Threads that run one at a time on a virtual clock; they block only in ``sleep``."""

    def __init__(self) -> None:
        self.now = 0.0
        self.errors: list[BaseException] = []
        self._queue: list[tuple[float, int, threading.Event]] = []
        self._order = 0
        self._back = threading.Event()
        self._local = threading.local()
        self._over = False

    def spawn(self, target: Callable[[], None], delay: float = 0.0) -> None:
        gate = threading.Event()

        def body() -> None:
            gate.wait()
            self._local.gate = gate
            try:
                if not self._over:
                    target()
            except Stop:
                pass
            except BaseException as exc:  # reported by run()
                self.errors.append(exc)
            finally:
                self._back.set()

        threading.Thread(target=body, daemon=True).start()
        self._push(self.now + delay, gate)

    def sleep(self, seconds: float) -> None:
        gate: threading.Event = self._local.gate
        gate.clear()
        self._push(self.now + max(seconds, 0.0), gate)
        self._back.set()
        gate.wait()
        if self._over:
            raise Stop

    def run(self, until: float) -> None:
        try:
            while self._queue and self._queue[0][0] <= until:
                when, _, gate = heapq.heappop(self._queue)
                self.now = when
                self._back.clear()
                gate.set()
                if not self._back.wait(timeout=60):
                    raise RuntimeError("a simulated thread blocked outside the simulation")
        finally:
            self._over = True
            for _, _, gate in self._queue:
                gate.set()
        if self.errors:
            raise self.errors[0]

    def _push(self, when: float, gate: threading.Event) -> None:
        heapq.heappush(self._queue, (when, self._order, gate))
        self._order += 1


class SimStore:
    """One Variable: each call takes a random time and takes effect at a random instant within it."""

    def __init__(
        self, sim: VirtualTime, table: dict[str, str], key: str, rng: random.Random, slow_share: float
    ) -> None:
        self.sim, self.values, self.key, self.rng, self.slow_share = sim, table, key, rng, slow_share

    def _latency(self) -> tuple[float, float]:
        slow = self.rng.random() < self.slow_share
        total = self.rng.uniform(0.0, MAX_LATENCY) if slow else self.rng.uniform(0.0, 0.1)
        return (at := self.rng.uniform(0.0, total)), total - at

    def read(self) -> str | None:
        before, after = self._latency()
        self.sim.sleep(before)
        value = self.values.get(self.key)
        self.sim.sleep(after)
        return value

    def write(self, value: str) -> bool:
        before, after = self._latency()
        self.sim.sleep(before)
        self.values[self.key] = value
        self.sim.sleep(after)
        return True


@dataclass
class Fleet:
    """What the simulated processes share: the Variables, the exchanges made, who holds the lease when."""

    sim: VirtualTime
    table: dict[str, str] = field(default_factory=dict)
    exchanges: int = 0
    holders: list[str] = field(default_factory=list)
    most_holders: int = 0
    tokens: list[str] = field(default_factory=list)


class WatchedLease(ExchangeLease):
    """The real lease, recording how many processes hold it at once."""

    fleet: Fleet

    def claim(self, dead: str | None = None) -> bool:
        won = super().claim(dead)
        if won:
            self.fleet.holders.append(self.owner)
            self.fleet.most_holders = max(self.fleet.most_holders, len(self.fleet.holders))
        return won

    def release(self, *, cooldown_until: float = 0.0) -> None:
        if self.owner in self.fleet.holders:
            self.fleet.holders.remove(self.owner)
        super().release(cooldown_until=cooldown_until)


def process(
    fleet: Fleet, rng: random.Random, skew: float, exchange_time: float, slow_share: float
) -> Callable[[], None]:
    """One worker process: its own cache and lease, its host's clocks, then one ``get``."""
    sim = fleet.sim
    origin = rng.uniform(0, 1e6)  # where this process's monotonic clock starts

    def wall() -> float:
        return EPOCH + sim.now + skew

    def monotonic() -> float:
        return origin + sim.now

    def wait_beat(stop: threading.Event, seconds: float) -> bool:
        sim.sleep(seconds)
        return stop.is_set()

    lease = WatchedLease(
        SimStore(sim, fleet.table, "lease", rng, slow_share), ttl=60, clock=wall, monotonic=monotonic, sleep=sim.sleep,
        spawn=sim.spawn, wait_beat=wait_beat,
    )  # fmt: skip
    lease.fleet = fleet
    cache = TokenCache(
        store=SimStore(sim, fleet.table, "token", rng, slow_share), codec=codec(), refresh_margin=300, jitter=0,
        lease=lease, clock=wall,
    )  # fmt: skip

    def fetch(known_endpoint: str | None) -> CachedToken:
        fleet.exchanges += 1
        number = fleet.exchanges
        sim.sleep(exchange_time)
        now = wall()
        return CachedToken(AccessToken(f"token-number-{number}", "Bearer", now + 43_200, now), ENDPOINT)

    return lambda: fleet.tokens.append(cache.get(fetch).value)


def simulate(seed: int, *, spread: float, slow_share: float = 0.2, lease_record: str | None = None) -> Fleet:
    """40 processes starting within ``spread`` seconds; ``slow_share`` of the Variable calls are slow ones."""
    rng = random.Random(seed)
    fleet = Fleet(VirtualTime())
    if lease_record is not None:
        fleet.table["lease"] = lease_record
    for index in range(PROCESSES):
        skew = 90.0 if index % 2 else 0.0  # two hosts, one 90 s ahead
        exchange_time = rng.uniform(0.05, 3.0)
        worker = process(fleet, random.Random(rng.random()), skew, exchange_time, slow_share)
        fleet.sim.spawn(worker, delay=rng.uniform(0.0, spread))
    fleet.sim.run(until=600.0)
    return fleet


@pytest.mark.parametrize("slow_share", [0.2, 0.6], ids=["some-calls-slow", "most-calls-slow"])
@pytest.mark.parametrize("seed", range(10))
def test_forty_cold_processes_under_adversarial_latencies_make_one_exchange(seed: int, slow_share: float) -> None:
    fleet = simulate(seed, spread=3.0, slow_share=slow_share)
    assert len(fleet.tokens) == PROCESSES, "a process never got a token"
    assert fleet.most_holders == 1
    assert fleet.exchanges == 1
    assert set(fleet.tokens) == {"token-number-1"}


@pytest.mark.parametrize("seed", range(4))
def test_forty_waiters_of_a_dead_holder_elect_one_new_holder(seed: int) -> None:
    fleet = simulate(seed, spread=3.0, lease_record=held("dead-worker"))
    assert len(fleet.tokens) == PROCESSES
    assert fleet.most_holders == 1
    assert fleet.exchanges == 1
    # Taken over after 20 s without a change (plus the polls and the new holder's claim), not minutes.
    assert fleet.sim.now < 60


def test_the_simulation_counts_what_it_claims_to() -> None:
    """With a lease that never makes anyone wait, every process exchanges: the counters see a stampede."""
    original = ExchangeLease.claim
    try:
        ExchangeLease.claim = lambda self, dead=None: True  # type: ignore[method-assign]
        fleet = simulate(0, spread=3.0)
    finally:
        ExchangeLease.claim = original  # type: ignore[method-assign]
    assert len(fleet.tokens) == PROCESSES
    assert fleet.exchanges > 2
