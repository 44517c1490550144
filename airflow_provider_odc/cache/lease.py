"""A lease so that workers starting cold together make one token exchange, not twenty.

Airflow Variables have no compare-and-set, and worker clocks disagree (a host may run minutes ahead), so
the lease compares no times across hosts: every duration is measured by one process on its own
``time.monotonic()``, and what crosses hosts is only *who* holds the lease and *whether it changed*.

The record in the lease Variable names its writer (``owner``), a per-writer counter (``seq``: every
write is new) and whether the lease is ``held``; a released record may carry a cool-down duration.

Claiming (Fischer's timed mutual exclusion, with each claimant checking the timing on itself):

1. read the record; if another process holds it (a record this process has not judged dead), wait;
2. otherwise write a claim and read it back at once; ``gap`` is the time from the first read's start to
   this read's end, so it bounds how stale the "nobody holds it" view was when the claim landed;
3. settle, then read back: the claim wins if it is still the record. The settle is at least ``settle``
   (longer when this process's own Variable calls were slow, up to ``settle_max``).

Why one winner: a rival that had won before our claim landed read its claim back at least ``settle``
after writing it, so our "nobody holds it" read came more than ``settle`` before our claim landed:
``gap > settle``. A claimant with ``gap < settle`` therefore never wins beside another, whatever the
latencies and clocks (only the rate of monotonic clocks matters, equal on every host). A claimant with a
longer ``gap`` (a loaded machine) cannot tell, so it settles ``heartbeat + gap`` longer: a live winner
renews its record every ``heartbeat`` seconds (below), and a renewal landing during the settle makes the
claim lose.

The holder renews the record from a daemon thread every ``heartbeat`` seconds while it fetches (a
fetch is blocked in HTTP calls for up to a whole ``timeout`` per attempt, so renewing between attempts
would leave gaps of minutes), for at most ``lifetime`` seconds, and stops before it releases. A waiter
judges the holder dead when it has seen the record unchanged for ``stale`` seconds (``stale_beats``
heartbeats) on its own monotonic clock, counted from when it first saw that record: a dead holder is
replaced in ``stale`` seconds (20 s by default) whatever the clocks say, and the waiters that took that
decision elect one new holder by claiming again. A waiter that sees the lease released reads the token
once more (a holder stores its token before it releases) and exchanges only if there is none.

What is guaranteed: one holder at a time, unless a live holder's renewals stop landing for longer than a
slow claimant's extra settle (``heartbeat + gap``) or a waiter's ``stale``: a process frozen, or a store
stalled, that long. Then two processes may exchange at once (each further stall of that kind admits one
more). What is not guaranteed: anything when the Variables cannot be written (every process exchanges:
the old behaviour), or across versions of this record format (a record of another format is no lease).

A holder whose refresh failed while its token is still valid releases the lease with a cool-down note
(a duration, not a moment: clocks differ): another worker with a still-valid token backs off for that
long from when it first read the note. The record holds no secret: an owner id, a counter, a flag and
a duration.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from airflow_provider_odc.cache.stores import TokenStore
from airflow_provider_odc.retries import RetryPolicy

log = logging.getLogger(__name__)
T = TypeVar("T")

#: How often a waiter takes over from a holder it judged dead, before it gives up coordinating.
MAX_TAKEOVERS = 2


def lease_key_for(conn_id: str) -> str:
    return f"odc_cache_lease__{conn_id}"


def exchange_lease_ttl(timeout: float, retry: RetryPolicy) -> float:
    """How long one token fetch may take under ``retry``: the holder renews its lease that long at most.

    A fetch is OIDC discovery (unless the endpoint is known) and the exchange; each is up to
    ``max_retries + 1`` attempts that may each run into ``timeout``, with the longest backoff the
    policy can choose between them (``min(backoff_max, backoff_base * 2**n)``; the jitter only shortens
    it). A ``Retry-After`` longer than that backoff is not covered: the holder then stops renewing during
    the wait and the waiters elect a new holder (see ``ExchangeLease.wait_for``).
    """
    attempts = retry.max_retries + 1
    backoff = sum(min(retry.backoff_max, retry.backoff_base * 2.0**n) for n in range(retry.max_retries))
    return 2 * (attempts * timeout + backoff)


def _daemon_thread(target: Callable[[], None]) -> None:
    threading.Thread(target=target, name="odc-token-lease-renewal", daemon=True).start()


def _wait(event: threading.Event, seconds: float) -> bool:
    return event.wait(seconds)


@dataclass(frozen=True)
class _Record:
    owner: str
    seq: int
    held: bool
    cooldown: float = 0.0

    @property
    def ident(self) -> tuple[str, int]:
        return self.owner, self.seq


@dataclass
class _Holding:
    """One held lease: the renewal thread stops when ``stop`` is set, and then leaves ``final`` as the record."""

    until: float
    stop: threading.Event = field(default_factory=threading.Event)
    final: str = ""


@dataclass
class ExchangeLease:
    """Cross-process single flight for the token exchange of one connection.

    ``ttl`` is how long the holder may take to fetch a token (``exchange_lease_ttl``). ``clock`` (wall
    time) only converts cool-downs for the token cache; every duration is measured on ``monotonic``.
    ``spawn`` and ``wait_beat`` run the renewal thread (tests replace them with simulated ones).
    """

    store: TokenStore
    ttl: float
    #: The shortest settle delay of any claimant; a claimant whose own read-write-read took longer settles
    #: ``heartbeat`` + that long more.
    settle: float = 0.5
    #: The settle delay is at least this many times as long as our own claim's read-write-read, up to
    #: ``settle_max`` seconds.
    settle_per_write: float = 3.0
    settle_max: float = 10.0
    poll: float = 0.2
    heartbeat: float = 2.0
    #: A holder whose record has not changed for this many heartbeats (on the waiter's clock) is dead.
    stale_beats: int = 10
    clock: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    spawn: Callable[[Callable[[], None]], None] = _daemon_thread
    wait_beat: Callable[[threading.Event, float], bool] = _wait
    owner: str = field(default_factory=lambda: uuid.uuid4().hex)
    _seq: itertools.count[int] = field(default_factory=itertools.count, init=False, repr=False)
    _holding: _Holding | None = field(default=None, init=False, repr=False)
    #: The cool-down note last read: its (owner, seq) and when this process first saw it.
    _note: tuple[tuple[str, int], float] | None = field(default=None, init=False, repr=False)

    @property
    def lifetime(self) -> float:
        """How long a holder renews its lease at most: the settle delay plus the whole fetch."""
        return self.settle_max + self.ttl

    @property
    def stale(self) -> float:
        """Seconds without a change of the record after which a waiter judges its holder dead."""
        return self.heartbeat * self.stale_beats

    def claim(self, dead: str | None = None) -> bool:
        """True when this process should exchange: it holds the lease, or no lease can be kept.

        ``dead``: the record a waiter judged dead (no change for ``stale`` seconds): it counts as no lease.
        """
        started = self.monotonic()
        seen = self.store.read()
        record = _parse(seen)
        if record is not None and record.held and record.owner != self.owner and seen != dead:
            return False
        mine, claim = self._record(held=True)
        if not self.store.write(claim):
            return True  # Variables are not writable here: nothing to coordinate with
        if _ident(self.store.read()) != mine:
            return False  # a later claim already replaced ours
        gap = max(self.monotonic() - started, 0.0)
        delay = min(max(self.settle, self.settle_per_write * gap), self.settle_max)
        if gap >= self.settle:
            # Our "nobody holds it" may predate a rival's win: give its renewal time to overwrite our claim.
            delay += self.heartbeat + gap
        self.sleep(delay)
        if _ident(self.store.read()) != mine:
            return False
        self._start_renewing()
        return True

    def wait_for(self, find: Callable[[], T | None]) -> tuple[T | None, bool]:
        """Poll ``find`` while another process holds the lease.

        Returns ``(found, False)`` when ``find`` found something, ``(None, False)`` when the holder gave
        up without a token (time to exchange here), and ``(None, True)`` when this process took over from
        a holder it judged dead (exchange here, then ``release``).
        """
        takeovers = 0
        seen: str | None = None
        changed = self.monotonic()
        while True:
            self.sleep(self.poll)
            found = find()
            if found is not None:
                return found, False
            raw = self.store.read()
            record = _parse(raw)
            if record is None or not record.held:
                # Released (or gone). A holder stores its token before it releases: look once more.
                found = find()
                if found is not None:
                    return found, False
                break  # released without a token: the holder failed
            now = self.monotonic()
            if raw != seen:
                seen, changed = raw, now
            elif now - changed >= self.stale:
                # No renewal for `stale` seconds on our own clock: the holder is dead. One waiter takes over.
                if takeovers == MAX_TAKEOVERS:
                    break
                takeovers += 1
                if self.claim(dead=raw):
                    log.info("Another worker's ODC token exchange lease went stale; fetching the token here.")
                    return find(), True
                seen, changed = None, self.monotonic()
        log.info("No ODC token appeared while another worker held the exchange lease; fetching one here.")
        return None, False

    def release(self, *, cooldown_until: float = 0.0) -> None:
        """Stop renewing and give the lease up, unless another process holds it now (never clobber a rival).

        ``cooldown_until`` (on ``clock``): the refresh failed and the current token stays in use until then;
        the record carries it as a duration, and other workers read it with ``cooldown_until()``.
        """
        holding, self._holding = self._holding, None
        record = _parse(self.store.read())
        if record is not None and record.held and record.owner != self.owner:
            if holding is not None:
                holding.stop.set()
            return
        cooldown = max(cooldown_until - self.clock(), 0.0) if cooldown_until > 0 else 0.0
        _, final = self._record(held=False, cooldown=cooldown)
        if holding is not None:
            holding.final = final
            holding.stop.set()  # a renewal in flight now rewrites `final` after it lands
        self.store.write(final)

    def stop_renewing(self) -> None:
        """Stop the renewal thread and leave the record held as it is: waiters judge it dead after ``stale``.

        For a holder whose work ends outside this process's control (the first-event election: Airflow
        records the event after the task returns), so no thread outlives the task's own use of Airflow.
        """
        holding, self._holding = self._holding, None
        if holding is not None:
            holding.stop.set()

    def cooldown_until(self) -> float:
        """Until when (on ``clock``) another worker's failed refresh asks everyone with a valid token to back off.

        The note's duration counts from when this process first read it; 0.0: no note, our own note, or it
        is over.
        """
        record = _parse(self.store.read())
        if record is None or record.held or record.cooldown <= 0 or record.owner == self.owner:
            return 0.0  # no note, or our own (this process's cache keeps its own cool-down)
        now = self.monotonic()
        if self._note is None or self._note[0] != record.ident:
            self._note = (record.ident, now)
        remaining = record.cooldown - (now - self._note[1])
        return self.clock() + remaining if remaining > 0 else 0.0

    def _record(self, *, held: bool, cooldown: float = 0.0) -> tuple[tuple[str, int], str]:
        seq = next(self._seq)
        body: dict[str, str | int | bool | float] = {"owner": self.owner, "seq": seq, "held": held}
        if cooldown > 0:
            body["cooldown_s"] = cooldown
        return (self.owner, seq), json.dumps(body)

    def _start_renewing(self) -> None:
        holding = self._holding = _Holding(until=self.monotonic() + self.lifetime)
        self.spawn(lambda: self._renew(holding))

    def _renew(self, holding: _Holding) -> None:
        """The renewal thread: a new record every ``heartbeat`` until released (or ``lifetime`` is over)."""
        while not self.wait_beat(holding.stop, self.heartbeat):
            if self.monotonic() >= holding.until:
                return  # a holder stuck this long is treated as dead: the waiters take over
            _, renewal = self._record(held=True)
            self.store.write(renewal)
            if holding.stop.is_set():
                # Released while this renewal was in flight: leave the release as the last word.
                if holding.final:
                    self.store.write(holding.final)
                return


def _ident(raw: str | None) -> tuple[str, int] | None:
    record = _parse(raw)
    return None if record is None else record.ident


def _parse(raw: str | None) -> _Record | None:
    """The record, or None for no record, garbage, or another format (another version's lease: no lease)."""
    try:
        body: Any = json.loads(raw) if raw else None
        owner, seq, held = body["owner"], body["seq"], body["held"]
        cooldown = float(body.get("cooldown_s", 0.0))
    except (TypeError, ValueError, KeyError, AttributeError):
        return None
    if not (isinstance(owner, str) and type(seq) is int and isinstance(held, bool) and math.isfinite(cooldown)):
        return None
    return _Record(owner, seq, held, max(cooldown, 0.0))
