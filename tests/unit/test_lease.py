"""The cross-process exchange lease, with worker processes played by threads sharing one store.

Where one worker is enough, time is a fake clock that ``sleep`` advances: the outcome cannot depend on how
fast a loaded machine runs the test. The cold starts of twenty threads run on real time, and assert what
the product promises for them (at most two exchanges), not the usual case (one).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable

import pytest

from airflow_provider_odc.cache.lease import ExchangeLease, exchange_lease_ttl
from airflow_provider_odc.cache.token_cache import TokenCache
from airflow_provider_odc.exceptions import OdcAuthError
from airflow_provider_odc.retries import RetryPolicy

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


class FakeTime(Clock):
    """A clock for the lease and the cache; ``sleep`` advances it, and may run ``on_sleep`` (another worker
    acting while this one sleeps). It is every worker's monotonic clock; ``wall(skew)`` is a host's wall clock."""

    def __init__(self) -> None:
        super().__init__(time.time())
        self.slept: list[float] = []
        self.on_sleep: Callable[[], None] = lambda: None

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        self.on_sleep()

    def wall(self, skew: float) -> Clock:
        fake = self

        class Wall(Clock):
            def __call__(self) -> float:
                return fake.now + skew

        return Wall()


def held(owner: str, seq: int = 0) -> str:
    """A lease record as a holder writes it (a claim or a renewal)."""
    return json.dumps({"owner": owner, "seq": seq, "held": True})


def released(owner: str, seq: int = 1, cooldown: float = 0.0) -> str:
    body: dict[str, object] = {"owner": owner, "seq": seq, "held": False}
    if cooldown:
        body["cooldown_s"] = cooldown
    return json.dumps(body)


def worker_cache(
    table: dict[str, str], lock: threading.Lock, *, write_delay: float = 0.0, ttl: float = 5.0,
    fake: FakeTime | None = None, skew: float = 0.0, heartbeat: float = 2.0,
    renewals: list[Callable[[], None]] | None = None,
) -> TokenCache:  # fmt: skip
    """The TokenCache one worker process would build: its own memory, the shared Variables, the product's
    settle delay. On real time, unless ``fake`` is given: then its wall clock is ``skew`` seconds off, and
    its renewal thread is not started but appended to ``renewals`` (a test runs it when it wants).

    ``write_delay``: each lease write takes up to that many seconds, at random (a loaded machine or database).
    """
    lease_store = SlowStore("lease", table, lock, write_delay) if write_delay else SharedStore("lease", table, lock)
    lease = ExchangeLease(lease_store, ttl=ttl, poll=0.01, heartbeat=heartbeat)
    wall: Clock = Clock(time.time())
    if fake is not None:
        wall = fake.wall(skew)
        lease.clock, lease.monotonic, lease.sleep = wall, fake, fake.sleep
        lease.spawn = (renewals if renewals is not None else []).append
    return TokenCache(
        store=SharedStore("odc_access_token__odc_default", table, lock), codec=codec(), refresh_margin=300, jitter=0,
        lease=lease, clock=wall,
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


def test_a_slow_lease_write_waits_long_enough_to_find_the_winners_token() -> None:
    """Writes of up to 0.6 s against the 0.5 s settle delay: the delay grows to three writes, so a slow writer
    still settling finds the winner's token instead of exchanging too. The promise is at most two exchanges
    (one in the usual case; a fixed settle delay made two in 5 of 12 runs with writes of up to 0.6 s)."""
    table: dict[str, str] = {}
    lock = threading.Lock()
    exchanges, tokens = cold_start([worker_cache(table, lock, write_delay=0.6) for _ in range(20)])
    assert len(tokens) == 20
    assert exchanges.calls <= 2


def test_twenty_waiters_of_a_dead_holder_elect_one_new_holder() -> None:
    """The holder died: its record stops changing. The waiters judge it dead and elect one new holder, not
    all at once (a 0.05 s heartbeat here: dead after 0.5 s without a change)."""
    table: dict[str, str] = {"lease": held("dead-worker")}
    lock = threading.Lock()
    exchanges, tokens = cold_start([worker_cache(table, lock, heartbeat=0.05) for _ in range(20)])
    assert len(tokens) == 20
    assert exchanges.calls <= 2


@pytest.mark.parametrize("skew", [-90.0, 0.0, 90.0], ids=["reader-90s-behind", "no-skew", "reader-90s-ahead"])
def test_a_dead_holder_is_replaced_after_stale_seconds_on_the_waiters_own_clock(skew: float) -> None:
    """Whatever the waiter's wall clock says (the record carries no time), it takes over once it has seen the
    record unchanged for ``stale`` seconds (10 heartbeats: 20 s), not after a lease lifetime of minutes."""
    fake = FakeTime()
    table: dict[str, str] = {"lease": held("dead-worker", seq=7)}
    started = fake.now
    exchanges = Exchanges(fake)
    renewals: list[Callable[[], None]] = []
    cache = worker_cache(table, threading.Lock(), fake=fake, skew=skew, renewals=renewals)
    assert cache.lease is not None and cache.lease.stale == 20.0
    assert cache.get(exchanges).value == "token-number-1"
    assert exchanges.calls == 1
    assert len(renewals) == 1  # it held the lease (and would have renewed it while fetching)
    # The first poll saw the record; 20 s later it claimed (one settle delay) and exchanged.
    waited = fake.now - started
    assert 20.0 <= waited <= 0.01 + 20.0 + 0.01 + 0.5 + 1e-6, waited
    assert json.loads(table["lease"])["held"] is False  # and released it


@pytest.mark.parametrize("skew", [-90.0, 90.0], ids=["reader-90s-behind", "reader-90s-ahead"])
def test_a_renewing_holder_is_never_taken_over_however_long_it_takes(skew: float) -> None:
    """A holder that renews every heartbeat keeps its waiters waiting (here 5 minutes of retries), on any clock."""
    fake = FakeTime()
    table: dict[str, str] = {"lease": held("slow-holder")}
    renewed_at = [fake.now]

    def holder_renews_then_finishes() -> None:
        if fake.now - renewed_at[0] >= 2.0:
            renewed_at[0] = fake.now
            table["lease"] = held("slow-holder", seq=json.loads(table["lease"])["seq"] + 1)
        if fake.now >= renewed_at[0] and len(fake.slept) == 30_000:  # 300 s of 0.01 s polls
            table["odc_access_token__odc_default"] = codec().seal(Exchanges(fake)(None))
            table["lease"] = released("slow-holder", seq=999)

    fake.on_sleep = holder_renews_then_finishes
    exchanges = Exchanges(fake)
    assert worker_cache(table, threading.Lock(), fake=fake, skew=skew).get(exchanges).value == "token-number-1"
    assert exchanges.calls == 0
    assert len(fake.slept) == 30_000 and set(fake.slept) == {0.01}  # polls only: it never claimed


def test_a_holder_that_gives_up_releases_the_others_at_once() -> None:
    fake = FakeTime()
    table: dict[str, str] = {"lease": held("failing-worker")}
    started = fake.now

    def give_up_on_third_poll() -> None:
        if len(fake.slept) == 3:
            table["lease"] = released("failing-worker")

    fake.on_sleep = give_up_on_third_poll
    exchanges = Exchanges(fake)
    assert worker_cache(table, threading.Lock(), fake=fake).get(exchanges).value == "token-number-1"
    assert exchanges.calls == 1
    assert fake.slept == [0.01] * 3  # three polls, then straight to the exchange (no claim, no settle)
    assert fake.now - started == pytest.approx(0.03)


class RacingStore(SharedStore):
    """The lease Variable; just before the ``at``-th read of it, ``action`` runs (another worker acting)."""

    def __init__(self, key: str, table: dict[str, str], lock: threading.Lock, at: int, action: Callable[[], None]):
        super().__init__(key, table, lock)
        self.reads, self.at, self.action = 0, at, action

    def read(self) -> str | None:
        self.reads += 1
        if self.reads == self.at:
            self.action()
        return super().read()


def test_a_waiter_that_sees_the_release_looks_for_the_token_once_more() -> None:
    """The holder stores its token and releases between a waiter's token read and its lease read: the waiter
    must take the token, not read the release as a failure and exchange (a third exchange under load)."""
    fake = FakeTime()
    lock = threading.Lock()
    table: dict[str, str] = {"lease": held("holder")}

    def holder_finishes() -> None:
        table["odc_access_token__odc_default"] = codec().seal(Exchanges(fake)(None))
        table["lease"] = released("holder")

    cache = worker_cache(table, lock, fake=fake)
    assert cache.lease is not None
    # Reads of the lease: the claim's, then one per poll; the third poll's read comes after its token read.
    cache.lease.store = RacingStore("lease", table, lock, at=4, action=holder_finishes)
    exchanges = Exchanges(fake)
    assert cache.get(exchanges).value == "token-number-1"
    assert exchanges.calls == 0
    assert fake.slept == [0.01] * 3


def test_a_waiter_leaves_the_lease_alone() -> None:
    """Only the process that claimed the lease releases it: a waiter that got the holder's token writes nothing."""
    fake = FakeTime()
    table: dict[str, str] = {"lease": held("holder")}

    def holder_finishes() -> None:  # stores its token, then releases, as TokenCache does
        if "odc_access_token__odc_default" not in table:
            table["odc_access_token__odc_default"] = codec().seal(Exchanges(fake)(None))
            table["lease"] = released("holder")

    fake.on_sleep = holder_finishes
    exchanges = Exchanges(fake)
    assert worker_cache(table, threading.Lock(), fake=fake).get(exchanges).value == "token-number-1"
    assert exchanges.calls == 0
    assert table["lease"] == released("holder")


def test_a_worker_with_a_valid_token_does_not_wait_for_another_workers_refresh() -> None:
    """Its token is due but valid for minutes: it keeps using it while the holder refreshes (no poll, no exchange)."""
    fake = FakeTime()
    table: dict[str, str] = {}
    cache = worker_cache(table, threading.Lock(), fake=fake)
    first = cache.get(Exchanges(fake))
    fake.now = first.expires_at - 200
    table["lease"] = held("refreshing-worker")
    fake.slept.clear()
    exchanges = Exchanges(fake)
    assert cache.get(exchanges) == first
    assert exchanges.calls == 0 and fake.slept == []


def test_a_failed_refresh_is_noted_in_the_lease_for_the_other_workers() -> None:
    fake = FakeTime()
    table: dict[str, str] = {}
    lock = threading.Lock()
    worker_a, worker_b = worker_cache(table, lock, fake=fake), worker_cache(table, lock, fake=fake)
    first = worker_a.get(Exchanges(fake))
    assert worker_b.get(Exchanges(fake)) == first  # from the Variable
    fake.now = first.expires_at - 200
    failing = Exchanges(fake)
    failing.error = OdcAuthError("token endpoint down", retryable=True)
    assert worker_a.get(failing) == first
    note = json.loads(table["lease"])
    assert note["held"] is False and note["cooldown_s"] == pytest.approx(worker_a.retry_not_before - fake.now)
    assert note["cooldown_s"] > 0
    assert worker_b.get(failing) == first
    assert failing.calls == 1  # worker B backed off too
    assert worker_b.retry_not_before <= worker_a.retry_not_before


@pytest.mark.parametrize("skew", [-90.0, 90.0], ids=["reader-90s-behind", "reader-90s-ahead"])
def test_a_cooldown_note_means_the_same_on_a_skewed_host(skew: float) -> None:
    """Worker B's clock is 90 s off: it backs off for the note's duration all the same (an absolute moment
    from A's clock would be over already for a host ahead, and 90 s longer for one behind)."""
    fake = FakeTime()
    table: dict[str, str] = {}
    lock = threading.Lock()
    worker_a = worker_cache(table, lock, fake=fake)
    worker_b = worker_cache(table, lock, fake=fake, skew=skew)
    worker_a.cooldown_jitter = lambda: 0.0
    first = worker_a.get(Exchanges(fake))
    assert worker_b.get(Exchanges(fake)) == first
    fake.now = first.expires_at - 200  # due on both clocks (B's 90 s off: 110 or 290 s left, both inside 300)
    failing = Exchanges(fake)
    failing.error = OdcAuthError("token endpoint down", retryable=True)
    assert worker_a.get(failing) == first
    cooldown = worker_a.retry_not_before - fake.now
    assert cooldown == pytest.approx(0.2 * (first.expires_at - fake.now))  # about 40 s: min(60, 0.2 * 200)
    assert worker_b.get(failing) == first
    assert failing.calls == 1
    b_now = fake.now + skew
    own_rule = 0.2 * (first.expires_at - b_now)  # B caps the note by its own rule for the time it sees left
    assert worker_b.retry_not_before - b_now == pytest.approx(min(cooldown, own_rule))
    assert worker_b.retry_not_before - b_now > 20  # about 110 s left on the clock ahead: 0.2 * 110


def test_a_cooldown_note_counts_from_when_the_reader_first_saw_it() -> None:
    fake = FakeTime()
    store = DictStore("lease")
    store.values["lease"] = released("x", cooldown=40)
    lease = ExchangeLease(store, ttl=60, clock=fake.wall(90), monotonic=fake)
    assert lease.cooldown_until() == pytest.approx(fake.now + 90 + 40)
    fake.now += 30
    assert lease.cooldown_until() == pytest.approx(fake.now + 90 + 10)
    fake.now += 10
    assert lease.cooldown_until() == 0.0
    store.values["lease"] = released("x", seq=2, cooldown=40)  # a new note (a later failure): counted anew
    assert lease.cooldown_until() == pytest.approx(fake.now + 90 + 40)


@pytest.mark.parametrize(
    "note",
    ['{"owner": "x", "seq": 1, "held": false, "cooldown_s": "soon"}', "[1]", "null",
     '{"owner": "x", "seq": 1, "held": false, "cooldown_s": NaN}'],
)  # fmt: skip
def test_a_garbage_cooldown_note_is_no_note(note: str) -> None:
    store = DictStore("lease")
    store.values["lease"] = note
    assert ExchangeLease(store, ttl=60).cooldown_until() == 0.0


def test_an_absurd_cooldown_note_is_capped_by_the_workers_own_rule() -> None:
    fake = FakeTime()
    table: dict[str, str] = {}
    cache = worker_cache(table, threading.Lock(), fake=fake)
    first = cache.get(Exchanges(fake))
    fake.now = first.expires_at - 200
    table["lease"] = released("x", cooldown=1e9)
    assert cache.get(Exchanges(fake)) == first
    assert cache.retry_not_before == pytest.approx(fake.now + 40)  # min(60, 0.2 * 200), not the note's 1e9


def test_the_lease_outlives_a_whole_retried_fetch() -> None:
    """Discovery and exchange, each 4 attempts of 60 s with backoffs of at most 1, 2 and 4 s between them."""
    assert exchange_lease_ttl(60, RetryPolicy(max_retries=3)) == 2 * (4 * 60 + 1 + 2 + 4)
    assert exchange_lease_ttl(10, RetryPolicy(max_retries=0)) == 2 * 10
    assert exchange_lease_ttl(5, RetryPolicy(max_retries=10, backoff_max=30)) == 2 * (
        11 * 5 + 1 + 2 + 4 + 8 + 16 + 30 * 5
    )
    lease = ExchangeLease(DictStore("lease"), ttl=100, settle_max=10)
    assert lease.lifetime == 110


def test_no_writable_store_means_no_waiting() -> None:
    slept: list[float] = []
    spawned: list[Callable[[], None]] = []
    lease = ExchangeLease(DictStore("lease", fail_writes=True), ttl=60, sleep=slept.append, spawn=spawned.append)
    assert lease.claim() is True
    assert slept == [] and spawned == []


@pytest.mark.parametrize(
    "record", ["not json", json.dumps({"owner": "old-version", "expires_at": 4e9}), held("x")[:-1]],
    ids=["garbage", "another-format", "truncated"],
)  # fmt: skip
def test_garbage_lease_is_no_lease(record: str) -> None:
    store = DictStore("lease")
    store.values["lease"] = record
    lease = ExchangeLease(store, ttl=60, settle=0, spawn=lambda renew: None)
    assert lease.claim() is True
    assert json.loads(store.values["lease"])["owner"] == lease.owner


def test_the_settle_delay_grows_with_a_slow_lease_write() -> None:
    fake = FakeTime()

    class SlowWrites(DictStore):
        def write(self, value: str) -> bool:
            fake.now += 0.2  # the write takes 0.2 s
            return super().write(value)

    def lease(**kwargs: float) -> ExchangeLease:
        return ExchangeLease(
            SlowWrites("lease"), ttl=60, monotonic=fake, sleep=fake.sleep, spawn=lambda renew: None, **kwargs
        )

    assert lease(settle=0.25).claim() is True
    assert fake.slept == [pytest.approx(0.6)]  # three times the claim's read-write-read rather than 0.25
    fake.slept.clear()
    assert lease(settle=0.25, settle_max=0.3).claim() is True
    assert fake.slept == [0.3]  # at most settle_max


def test_a_slow_claimant_settles_a_heartbeat_longer() -> None:
    """Its claim took longer than the shortest settle: a rival may have won before it landed, so it waits for
    that rival's renewal (every heartbeat) to overwrite it."""
    fake = FakeTime()

    class SlowWrites(DictStore):
        def write(self, value: str) -> bool:
            fake.now += 0.8
            return super().write(value)

    lease = ExchangeLease(
        SlowWrites("lease"), ttl=60, heartbeat=2.0, monotonic=fake, sleep=fake.sleep, spawn=lambda renew: None
    )
    assert lease.claim() is True
    assert fake.slept == [pytest.approx(min(3 * 0.8, 10) + 2.0 + 0.8)]


def test_a_live_winners_renewal_beats_a_late_claim() -> None:
    """The race a settle delay cannot see: B read "nobody holds it" before A claimed, but B's claim landed
    after A had won. B's claim was slow, so B settles a heartbeat longer; A's renewal overwrites B's claim
    meanwhile, and B loses instead of exchanging beside A."""
    fake = FakeTime()
    store = DictStore("lease")
    renewals: list[Callable[[], None]] = []
    a = ExchangeLease(store, ttl=60, monotonic=fake, sleep=fake.sleep, spawn=renewals.append, owner="a")
    assert a.claim() is True  # A wins and starts renewing (its thread: renewals[0])
    beats = iter([False, True])  # A's renewal thread: one heartbeat, then released
    a.wait_beat = lambda stop, seconds: next(beats)

    class LateClaim(DictStore):
        """B's view: its first read happened before A claimed (empty), and its write takes 0.6 s to land."""

        first_read = True

        def read(self) -> str | None:
            if self.first_read:
                self.first_read = False
                return None
            return super().read()

        def write(self, value: str) -> bool:
            fake.now += 0.6
            return super().write(value)

    b_store = LateClaim("lease")
    b_store.values = store.values
    b = ExchangeLease(b_store, ttl=60, monotonic=fake, spawn=renewals.append, owner="b")
    b.sleep = lambda seconds: (fake.sleep(seconds), renewals[0]())[0]  # type: ignore[func-returns-value]
    assert b.claim() is False
    assert json.loads(store.values["lease"])["owner"] == "a"
    assert fake.slept[-1] == pytest.approx(min(3 * 0.6, 10) + 2.0 + 0.6)  # B's settle (after A's)
    assert len(renewals) == 1  # only A holds
