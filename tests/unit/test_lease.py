"""The cross-process exchange lease, with worker processes played by threads sharing one store."""

from __future__ import annotations

import json
import random
import threading
import time

from airflow_provider_odc.cache.lease import ExchangeLease
from airflow_provider_odc.cache.token_cache import TokenCache

from .test_token_cache import Clock, DictStore, Exchanges, codec


class SharedStore(DictStore):
    """One 'Variable table' for several keys, like Airflow's, safe for threads."""

    def __init__(self, key: str, table: dict[str, str], lock: threading.Lock) -> None:
        super().__init__(key)
        self.values, self._lock = table, lock

    def read(self) -> str | None:
        with self._lock:
            return self.values.get(self.key)

    def write(self, value: str) -> bool:
        with self._lock:
            self.values[self.key] = value
        return True


class SlowStore(SharedStore):
    """A loaded machine or database: every write takes up to ``write_delay`` seconds, at random."""

    def __init__(self, key: str, table: dict[str, str], lock: threading.Lock, write_delay: float) -> None:
        super().__init__(key, table, lock)
        self.write_delay = write_delay

    def write(self, value: str) -> bool:
        time.sleep(random.uniform(0, self.write_delay))
        return super().write(value)


def worker_cache(
    table: dict[str, str], lock: threading.Lock, *, settle: float = 0.05, write_delay: float = 0.0
) -> TokenCache:
    """The TokenCache one worker process would build: its own memory, the shared Variables.

    ``write_delay``: each lease write takes up to that many seconds, at random (a loaded machine or database).
    """
    lease_store = SlowStore("lease", table, lock, write_delay) if write_delay else SharedStore("lease", table, lock)
    lease = ExchangeLease(lease_store, ttl=5, settle=settle, poll=0.01)
    return TokenCache(
        store=SharedStore("odc_access_token__odc_default", table, lock), codec=codec(), refresh_margin=300, jitter=0,
        lease=lease,
    )  # fmt: skip


def cold_start(workers: list[TokenCache]) -> tuple[Exchanges, list[str]]:
    """Release every worker at once on an empty cache; the exchanges made and the tokens they got."""
    exchanges = Exchanges(Clock(time.time()), delay=0.1)
    barrier = threading.Barrier(len(workers))
    tokens: list[str] = []

    def run(cache: TokenCache) -> None:
        barrier.wait()
        tokens.append(cache.get(exchanges).value)

    threads = [threading.Thread(target=run, args=(cache,)) for cache in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return exchanges, tokens


def test_twenty_cold_workers_make_at_most_two_exchanges() -> None:
    table: dict[str, str] = {}
    lock = threading.Lock()
    exchanges, tokens = cold_start([worker_cache(table, lock) for _ in range(20)])
    assert len(tokens) == 20
    assert exchanges.calls <= 2
    assert set(tokens) <= {f"token-number-{n}" for n in range(1, exchanges.calls + 1)}


def test_a_dead_holder_delays_the_others_only_until_its_lease_expires() -> None:
    table: dict[str, str] = {"lease": json.dumps({"owner": "dead-worker", "expires_at": time.time() + 0.3})}
    lock = threading.Lock()
    exchanges = Exchanges(Clock(time.time()))
    started = time.monotonic()
    assert worker_cache(table, lock).get(exchanges).value == "token-number-1"
    assert 0.25 <= time.monotonic() - started < 2
    assert exchanges.calls == 1


def test_a_holder_that_gives_up_releases_the_others_at_once() -> None:
    table: dict[str, str] = {"lease": json.dumps({"owner": "failing-worker", "expires_at": time.time() + 60})}
    lock = threading.Lock()
    releaser = threading.Timer(
        0.1, lambda: table.update(lease=json.dumps({"owner": "failing-worker", "expires_at": 0}))
    )
    releaser.start()
    started = time.monotonic()
    worker_cache(table, lock).get(Exchanges(Clock(time.time())))
    assert time.monotonic() - started < 1


def test_no_writable_store_means_no_waiting() -> None:
    slept: list[float] = []
    lease = ExchangeLease(DictStore("lease", fail_writes=True), ttl=60, sleep=slept.append)
    assert lease.claim() is True
    assert slept == []


def test_garbage_lease_is_no_lease() -> None:
    store = DictStore("lease")
    store.values["lease"] = "not json"
    lease = ExchangeLease(store, ttl=60, settle=0)
    assert lease.claim() is True
    assert json.loads(store.values["lease"])["owner"] == lease.owner


def test_the_settle_delay_grows_with_a_slow_lease_write() -> None:
    class SlowWrites(DictStore):
        def write(self, value: str) -> bool:
            time.sleep(0.2)
            return super().write(value)

    slept: list[float] = []
    lease = ExchangeLease(SlowWrites("lease"), ttl=60, settle=0.05, sleep=slept.append)
    assert lease.claim() is True
    assert 0.6 <= slept[0] <= 15  # three times the write rather than the fixed 0.05, at most a quarter of the ttl


def test_a_slow_lease_write_waits_long_enough_to_find_the_winners_token() -> None:
    """Writes of up to 0.6 s against a 0.05 s settle delay. Measured in this simulation: with a fixed settle
    delay, 2 exchanges in 5 of 12 runs; with the delay grown to three writes, 1 exchange in 36 of 36 runs
    (a slow writer still settling finds the fast winner's token instead of exchanging too)."""
    table: dict[str, str] = {}
    lock = threading.Lock()
    exchanges, tokens = cold_start([worker_cache(table, lock, write_delay=0.6) for _ in range(20)])
    assert len(tokens) == 20
    assert exchanges.calls == 1


def test_a_waiter_leaves_the_lease_alone() -> None:
    """Only the process that claimed the lease releases it: a waiter that got the holder's token writes nothing."""
    table: dict[str, str] = {"lease": json.dumps({"owner": "holder", "expires_at": time.time() + 60})}
    lock = threading.Lock()
    released = json.dumps({"owner": "holder", "expires_at": 0})

    def holder_finishes() -> None:  # stores its token, then releases, as TokenCache does
        fetched = Exchanges(Clock(time.time()))(None)
        with lock:
            table["odc_access_token__odc_default"] = codec().seal(fetched)
            table["lease"] = released

    threading.Timer(0.1, holder_finishes).start()
    exchanges = Exchanges(Clock(time.time()))
    assert worker_cache(table, lock).get(exchanges).value == "token-number-1"
    assert exchanges.calls == 0
    assert table["lease"] == released
