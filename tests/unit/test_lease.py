"""The cross-process exchange lease, with worker processes played by threads sharing one store."""

from __future__ import annotations

import json
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


def worker_cache(table: dict[str, str], lock: threading.Lock, *, settle: float = 0.05) -> TokenCache:
    """The TokenCache one worker process would build: its own memory, the shared Variables."""
    lease = ExchangeLease(SharedStore("lease", table, lock), ttl=5, settle=settle, poll=0.01)
    return TokenCache(
        store=SharedStore("odc_access_token__odc_default", table, lock), codec=codec(), refresh_margin=300, jitter=0,
        lease=lease,
    )  # fmt: skip


def test_twenty_cold_workers_make_at_most_two_exchanges() -> None:
    table: dict[str, str] = {}
    lock = threading.Lock()
    exchanges = Exchanges(Clock(time.time()), delay=0.1)
    workers = [worker_cache(table, lock) for _ in range(20)]
    barrier = threading.Barrier(20)
    tokens: list[str] = []

    def run(cache: TokenCache) -> None:
        barrier.wait()
        tokens.append(cache.get(exchanges).value)

    threads = [threading.Thread(target=run, args=(cache,)) for cache in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
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
