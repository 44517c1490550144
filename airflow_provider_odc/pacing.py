"""Pacing: stay inside ODC's per-minute limits across every worker and host, instead of collecting 429s.

ODC's limits are per organization and per minute (10 deployment or build POSTs per endpoint, 100 requests
per API domain; ``emulator/rate_limits.py`` holds the documented table, which the client reads too). A
worker alone cannot see what the others send, so the budget lives where they all can read it: one Airflow
Variable per connection and limit (``odc_rate_budget__<conn>__<limit>``), a **ledger** of the send slots
reserved against that limit. Before a paced request a worker reserves the earliest slot that keeps every
limit the request counts toward (at most ``limit`` slots in any ``60 s + margin``), waits for it, then
sends. A ledger keeps the slots of the last window and the future ones still waited for; it holds no secret.

Variables have no compare-and-set, so a ledger carries its own lock, claimed the way the exchange lease is
(``cache/lease.py``): read; if another worker holds a live lock, poll; else write the ledger back with our
name as holder, wait a settle delay (at least three times our own write), read it back. Only the holder
adds a slot, and it releases the lock in the same write. Locks are taken in one order (endpoint, then
domain). What is guaranteed: while every worker's read-to-write gap is shorter than the settle delay, one
worker at a time changes a locked ledger, no slot is lost and the paced requests exceed no limit. A gap
longer than that (a stalled database or API server) can let two workers hold a lock or bring back an older
ledger: a slot is then lost and one request more than the limit may go out, which ODC answers 429, which
the retry policy waits out and sends again (a 429 was not processed). Correctness never rests on the
ledger; it only keeps 429s rare. A holder that dies blocks its ledger for ``LOCK_TTL`` at most.

A domain's ledger (100 a minute) that is less than half used is written without the lock
(``RELAXED_MIN_LIMIT``): the GETs of a fan-out rarely come near the domain limit, and a lock per GET
would serialise them for nothing. A concurrent write may then drop a slot, which the unused half absorbs;
past half, the lock is taken as for a POST.

Clocks: slots and lock expiries are kept in **ODC's time**, not a worker's. Every answer carries ODC's
``Date`` header (whole seconds); ``ServerClock`` keeps ``Date - local receive time`` as this host's offset,
so two hosts whose clocks differ by 90 s still agree on a slot to within a second plus the network
latency. ``DEFAULT_MARGIN`` (2 s) is added to every window to cover that error. A process learns the
offset from the first answer it gets (the hook asks the unlimited OIDC discovery document when it has
none yet). A server that sends no ``Date`` leaves the local clock in use, which is right on one host and
needs NTP across hosts.

The protocol (``reserve``) is a generator without I/O, in the shape of ``request_core``: it yields
``Read``/``Write``/``Pause``/``Now`` steps and receives their results. ``RequestPacer`` drives it with real
Variables and sleeps; the simulation (``devtools/pacing_sim.py``) drives the same code on a virtual clock
with a shared store that has latency and stalls. Nothing here calls Airflow: the Variable store is passed in.
"""

from __future__ import annotations

import bisect
import json
import logging
import random
import re
import time
import uuid
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

from airflow_provider_odc.cache.stores import TokenStore
from airflow_provider_odc.emulator.rate_limits import RATE_WINDOW, LimitSettings, limits_for
from airflow_provider_odc.exceptions import OdcApiError

log = logging.getLogger(__name__)

#: Added to every 60 s window: the Date header's whole seconds, network latency, timer slack.
DEFAULT_MARGIN = 2.0
#: The settle delay before reading a claim back: at least this, and at least 3x our own write.
SETTLE_MIN = 0.3
SETTLE_PER_WRITE = 3.0
SETTLE_MAX = 5.0
#: How long a claimed lock lasts: a holder needs one settle delay and two Variable operations.
LOCK_TTL = 15.0
#: How long a worker waits (uniformly drawn) before reading a ledger that another worker holds again.
POLL = (0.2, 0.6)
#: A ledger whose limits are all at least this, and less than half used, is written without its lock: a
#: domain's 100 requests a minute are far from spent by the GETs of a fan-out, and serialising each of them
#: through a lock would cost more than a lost slot could (the unused half absorbs those).
RELAXED_MIN_LIMIT = 50
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_PATH_ID = re.compile(r"/(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|\d+)(?=/|$)")


# -- what a request counts toward ----------------------------------------------------------------------


@dataclass(frozen=True)
class Budget:
    """One documented limit: ``limit`` requests per ``window`` seconds, named by its window key
    (``POST /api/deployments/v1/deployment-operations`` or ``/api/deployments/v1``)."""

    name: str
    limit: int
    window: float = RATE_WINDOW


@dataclass(frozen=True)
class Ledger:
    """The Variable ``key`` that holds the slots of ``budgets`` (one limit each, as ``ledgers_for`` builds them)."""

    key: str
    budgets: tuple[Budget, ...]


def ledger_key(conn_id: str, limit: str) -> str:
    """The Variable of one connection's ledger for one limit (``/api/deployments/v1`` or
    ``POST /api/deployments/v1/deployment-operations``).

    Holds no secret, so its name must not contain a word Airflow masks (it contains none: see the tests).
    """
    return f"odc_rate_budget__{conn_id}__{_KEY_UNSAFE.sub('_', limit).strip('_')}"


def route_of(path: str) -> str:
    """``path`` with its keys and numbers as ``{}``: one per-endpoint limit per route, not per resource."""
    return _PATH_ID.sub("/{}", path)


def ledgers_for(conn_id: str, method: str, path: str, settings: LimitSettings | None = None) -> tuple[Ledger, ...]:
    """Where a request reserves its slot: one ledger per limit it counts toward, its endpoint's (if
    documented) before its domain's, the order every worker takes their locks in (empty: no documented limit
    covers it, e.g. OIDC discovery and the token endpoint)."""
    found = limits_for(method.upper(), route_of(path), settings or LimitSettings())
    return tuple(Ledger(ledger_key(conn_id, key), (Budget(key, limit),)) for _scope, key, limit in found)


# -- ODC's clock -------------------------------------------------------------------------------------------


@dataclass
class ServerClock:
    """ODC's time as this process estimates it from ``Date`` headers: local time plus the largest lower
    bound of the offset seen (``Date`` is whole seconds, received after it was stamped)."""

    local: Callable[[], float] = time.time
    offset: float | None = None

    @property
    def known(self) -> bool:
        return self.offset is not None

    def observe(self, date: str | None, received_at: float | None = None) -> None:
        """Learn from one answer's ``Date`` header (absent or malformed: nothing learnt)."""
        if not date:
            return
        try:
            moment = parsedate_to_datetime(date)
        except (TypeError, ValueError, IndexError):
            return
        if moment is None or moment.tzinfo is None:
            return
        bound = moment.timestamp() - (self.local() if received_at is None else received_at)
        self.offset = bound if self.offset is None else max(self.offset, bound)

    def now(self) -> float:
        return self.local() + (self.offset or 0.0)


_clocks: dict[str, ServerClock] = {}


def server_clock(origin: str) -> ServerClock:
    """The process-wide estimate of ``origin``'s clock (one per ODC portal, shared by every hook)."""
    return _clocks.setdefault(origin, ServerClock())


# -- the ledger -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Read:
    """A step: the ledger Variable ``key`` (None when absent or unreadable)."""

    key: str


@dataclass(frozen=True)
class Write:
    """A step: write ``value`` to Variable ``key``; receive whether it was written."""

    key: str
    value: str


@dataclass(frozen=True)
class Pause:
    """A step: sleep this long."""

    seconds: float


@dataclass(frozen=True)
class Now:
    """A step: ODC's time now (``ServerClock.now``)."""


Step = Read | Write | Pause | Now
Slots = list[tuple[float, str]]


@dataclass(frozen=True)
class Grant:
    """What ``reserve`` decided: send at ``slot`` (ODC time), after ``waited`` seconds.

    ``paced``: False when the ledger could not be kept (Variables not writable: nothing to coordinate
    with, the request goes now). ``refused``: the slot (or the lock) lies further out than the caller may
    wait; nothing was reserved and nothing should be sent. ``claims``: lock claims written (more than one:
    a rival's claim landed after ours).
    """

    slot: float
    waited: float = 0.0
    paced: bool = True
    refused: bool = False
    claims: int = 0


@dataclass
class LedgerState:
    """A ledger Variable's content: the lock (``holder`` until ``until``, ODC time) and the slots per budget."""

    holder: str = ""
    until: float = 0.0
    slots: dict[str, Slots] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: str | None) -> LedgerState:
        """Anything unreadable counts as an empty, unlocked ledger (the fallback is a 429, never a crash)."""
        try:
            document = json.loads(raw) if raw else {}
            slots = {
                str(name): sorted((float(at), str(who)) for at, who in entries)
                for name, entries in document.get("slots", {}).items()
            }
            state = cls(str(document.get("holder", "")), float(document.get("until", 0.0)), slots)
        except (TypeError, ValueError, KeyError, AttributeError):
            return cls()
        if state.until != state.until:  # NaN
            state.until = 0.0
        return state

    def dump(self) -> str:
        slots = {name: [[round(at, 3), who] for at, who in entries] for name, entries in self.slots.items()}
        return json.dumps({"holder": self.holder, "until": round(self.until, 3), "slots": slots}, separators=(",", ":"))

    def pruned(self, now: float, margin: float, budgets: tuple[Budget, ...]) -> dict[str, Slots]:
        """The slots that still count: those of the last ``window + margin`` and the future ones."""
        windows = {budget.name: budget.window for budget in budgets}
        return {
            name: [(at, who) for at, who in entries if at > now - windows.get(name, RATE_WINDOW) - margin]
            for name, entries in self.slots.items()
        }


def earliest_slot(entries: Slots, budget: Budget, now: float, margin: float) -> float:
    """The first moment >= ``now`` at which one more slot keeps every ``window + margin`` (closed at its
    end, as ODC's sliding window) at ``limit`` slots or fewer."""
    span = budget.window + margin
    times = [at for at, _ in entries]  # sorted
    for slot in sorted({now, *(at + span for at in times if at + span > now)}):
        # Windows that would hold the new slot end at it or at a later slot less than ``span`` after it.
        ends = [slot, *times[bisect.bisect_left(times, slot) : bisect.bisect_left(times, slot + span)]]
        if all(bisect.bisect_right(times, end) - bisect.bisect_right(times, end - span) < budget.limit for end in ends):
            return slot
    raise AssertionError("unreachable: a slot one span after the last is always free")


def relaxed(ledger: Ledger, state: LedgerState, now: float, margin: float) -> bool:
    """Whether ``ledger`` may be written without its lock (see ``RELAXED_MIN_LIMIT``)."""
    return all(
        budget.limit >= RELAXED_MIN_LIMIT
        and sum(at > now - budget.window - margin for at, _ in state.slots.get(budget.name, [])) < budget.limit // 2
        for budget in ledger.budgets
    )


def reserve(
    ledgers: tuple[Ledger, ...],
    *,
    max_wait: float,
    margin: float = DEFAULT_MARGIN,
    owner: str | None = None,
    uniform: Callable[[float, float], float] = random.uniform,
) -> Generator[Step, Any, Grant]:
    """Reserve one send slot in every ledger and wait for it (see the module docstring).

    Takes each ledger's lock in the given order (a relaxed ledger's not at all), computes the slot from what
    the locks guard, writes it into every ledger (releasing the locks in the same writes) and waits.
    """
    owner = owner or uuid.uuid4().hex[:12]
    start: float = yield Now()
    claims = 0
    held: dict[str, LedgerState] = {}  # key -> the ledger as read back under our lock
    loose: dict[str, LedgerState] = {}  # key -> a relaxed ledger as read

    def release() -> Generator[Step, Any, None]:
        for key, state in held.items():
            state.holder, state.until = "", 0.0
            yield Write(key, state.dump())

    for ledger in ledgers:
        while True:
            state = LedgerState.parse((yield Read(ledger.key)))
            now: float = yield Now()
            if state.holder and state.holder != owner and state.until > now:
                if now - start > max(max_wait, LOCK_TTL):  # a lock is held for a moment: worth waiting even at 0
                    yield from release()
                    return Grant(now, refused=True, claims=claims)
                yield Pause(uniform(*POLL))
                continue
            if relaxed(ledger, state, now, margin):
                loose[ledger.key] = state
                break
            claims += 1
            claim = LedgerState(owner, now + LOCK_TTL, state.pruned(now, margin, ledger.budgets))
            if not (yield Write(ledger.key, claim.dump())):
                yield from release()
                return Grant(now, paced=False, claims=claims)  # Variables not writable here
            written: float = yield Now()
            yield Pause(min(max(SETTLE_MIN, SETTLE_PER_WRITE * max(written - now, 0.0)), SETTLE_MAX))
            state = LedgerState.parse((yield Read(ledger.key)))
            if state.holder == owner:
                held[ledger.key] = state
                break
            # A rival's claim landed after ours: it holds the lock; wait for it.
    now = yield Now()
    slot = now
    for ledger in ledgers:
        state = held.get(ledger.key) or loose[ledger.key]
        for budget in ledger.budgets:
            slot = max(slot, earliest_slot(state.slots.get(budget.name, []), budget, now, margin))
    if slot - start > max_wait:
        yield from release()
        return Grant(slot, refused=True, claims=claims)
    for ledger in ledgers:
        if ledger.key in held:
            state = held[ledger.key]
            state.holder, state.until = "", 0.0  # the slot and the lock's release in one write
        else:
            state = LedgerState.parse((yield Read(ledger.key)))  # read again: the shortest read-to-write gap
            state.slots = state.pruned(now, margin, ledger.budgets)
        for budget in ledger.budgets:
            state.slots[budget.name] = sorted([*state.slots.get(budget.name, []), (slot, owner)])
        yield Write(ledger.key, state.dump())
    now = yield Now()
    if slot > now:
        yield Pause(slot - now)
    return Grant(slot, waited=max(slot, now) - start, claims=claims)


# -- the sync driver ------------------------------------------------------------------------------------


@dataclass
class RequestPacer:
    """Reserves a slot for each paced request of one connection, with real Variables and real sleeps.

    :param store_for: the store of a Variable key (``OdcHook.token_store``: Airflow Variables).
    :param clock: ODC's clock for this connection's origin.
    :param probe: asks ODC for a ``Date`` (an unlimited GET) when the clock knows none yet.
    """

    conn_id: str
    store_for: Callable[[str], TokenStore]
    clock: ServerClock
    probe: Callable[[], str | None]
    sleep: Callable[[float], None] = time.sleep
    margin: float = DEFAULT_MARGIN
    _stores: dict[str, TokenStore] = field(default_factory=dict)
    _probed: bool = False

    def observe(self, headers: Mapping[str, str]) -> None:
        """Learn ODC's time from an answer."""
        self.clock.observe(headers.get("Date"))

    def before_send(self, method: str, path: str, *, max_wait: float) -> Grant | None:
        """Wait for this request's slot (None: the request counts toward no documented limit).

        Raises OdcApiError, nothing sent, when the first free slot is further out than ``max_wait``.
        """
        ledgers = ledgers_for(self.conn_id, method, path)
        if not ledgers:
            return None
        if not self.clock.known and not self._probed:  # once: a portal that sends no Date is not asked again
            self._probed = True
            self.clock.observe(self.probe())
        grant = drive(reserve(ledgers, max_wait=max_wait, margin=self.margin), self._perform)
        if grant.refused:
            raise OdcApiError(
                f"was not sent: ODC's rate limit for it is booked by other tasks (or its ledger locked) "
                f"for the next {grant.slot - self.clock.now():.0f} s at least, longer than this call may wait "
                f"({max_wait:g} s).",
                conn_id=self.conn_id,
                step=f"{method} {path}",
                hint="Run fewer of these tasks at once (an Airflow pool) or raise the connection's "
                "'rate_limit_wait_seconds' extra.",
                method=method,
                path=path,
                status=None,
            )
        if grant.waited >= 1.0:
            log.info("ODC %s %s waited %.1f s for its slot in ODC's rate limit.", method, path, grant.waited)
        return grant

    def _perform(self, step: Step) -> Any:
        if isinstance(step, Now):
            return self.clock.now()
        if isinstance(step, Pause):
            self.sleep(step.seconds)
            return None
        store = self._stores.get(step.key) or self._stores.setdefault(step.key, self.store_for(step.key))
        if isinstance(step, Read):
            return store.read()
        return store.write(step.value)


def drive(flow: Generator[Step, Any, Grant], perform: Callable[[Step], Any]) -> Grant:
    """Run ``reserve`` to its end with ``perform`` doing each step."""
    step = next(flow)
    while True:
        try:
            step = flow.send(perform(step))
        except StopIteration as done:
            grant: Grant = done.value
            return grant
