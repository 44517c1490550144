"""Pacing: stay inside ODC's per-minute limits across every worker and host, instead of collecting 429s.

ODC's limits are per organization and per minute (10 deployment or build POSTs per endpoint, 100 requests
per API domain; ``emulator/rate_limits.py`` holds the documented table, which the client reads too). A
worker alone cannot see what the others send, so the budget lives where they all can read it: one Airflow
Variable per connection and limit (``odc_rate_budget__<conn>__<limit>``), a **ledger** of reserved send
times. Before a paced request a worker reserves the earliest slot the ledger allows (fewer than ``limit``
slots in any ``60 s + margin``), waits for it, then sends. The ledger keeps the slots of the last window
and the future ones still waited for; it holds no secret.

Variables have no compare-and-set, so a reservation is written the way the exchange lease is claimed
(``cache/lease.py``): read, append our slot, write, wait a settle delay (at least three times our own
write), read back. A worker that finds its slot gone (another worker's write replaced the ledger it had
read) reserves again. What is guaranteed: a slot survives unless a rival's read-to-write gap is longer
than the settle delay (a stalled database or API server); a slot lost that way lets at most one more
request into that window than the limit, which ODC answers 429, which the retry policy waits out and
re-sends (a 429 was not processed). Correctness never rests on the ledger: it only keeps 429s rare.

Clocks: slots are kept in **ODC's time**, not a worker's. Every answer carries ODC's ``Date`` header (whole
seconds); ``ServerClock`` keeps ``Date - local receive time`` as the offset of this host's monotonic-free
wall clock, so two hosts whose clocks differ by 90 s still agree on a slot to within a second plus the
network latency. ``DEFAULT_MARGIN`` (2 s) is added to every window to cover that error. A process learns
the offset from the first answer it gets (the hook asks the unlimited OIDC discovery document when it has
none yet). A server that sends no ``Date`` leaves the local clock in use, which is right on one host and
needs NTP across hosts.

The protocol (``reserve``) is a generator without I/O, in the shape of ``request_core``: it yields
``Read``/``Write``/``Pause``/``Now`` steps and receives their results. ``RequestPacer`` drives it with real
Variables and sleeps; the simulation (``tests/pacing``, ``benchmarks/pacing.py``) drives the same code on a
virtual clock with a shared store that has latency and loses updates. No Airflow imports.
"""

from __future__ import annotations

import json
import logging
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
#: The settle delay before reading a reservation back: at least this, and at least 3x our own write.
SETTLE_MIN = 0.3
SETTLE_PER_WRITE = 3.0
SETTLE_MAX = 5.0
#: How often a worker reserves again after finding its slot overwritten, before it sends on its last slot.
MAX_RESERVATIONS = 4
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_PATH_ID = re.compile(r"/(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|\d+)(?=/|$)")


# -- what a request counts toward ----------------------------------------------------------------------


@dataclass(frozen=True)
class Budget:
    """One documented limit as a ledger: ``limit`` requests per ``window`` seconds, kept in Variable ``key``."""

    key: str
    limit: int
    window: float = RATE_WINDOW


def ledger_key(conn_id: str, limit_key: str) -> str:
    """The Variable of one connection's ledger for one limit (``POST /api/.../x`` or ``/api/...``).

    Holds no secret, so its name must not contain a word Airflow masks (it contains none: see the tests).
    """
    return f"odc_rate_budget__{conn_id}__{_KEY_UNSAFE.sub('_', limit_key).strip('_')}"


def route_of(path: str) -> str:
    """``path`` with its keys and numbers as ``{}``: one per-endpoint limit per route, not per resource."""
    return _PATH_ID.sub("/{}", path)


def budgets_for(conn_id: str, method: str, path: str, settings: LimitSettings | None = None) -> list[Budget]:
    """The ledgers a request must reserve a slot in: its endpoint's limit (if documented), its domain's."""
    found = limits_for(method.upper(), route_of(path), settings or LimitSettings())
    return [Budget(ledger_key(conn_id, key), limit) for _scope, key, limit in found]


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


@dataclass(frozen=True)
class Grant:
    """What ``reserve`` decided: send at ``slot`` (ODC time), after ``waited`` seconds.

    ``paced``: False when the ledger could not be kept (Variables not writable: nothing to coordinate
    with, the request goes now). ``refused``: the slot lies further out than the caller may wait;
    nothing was reserved and nothing should be sent. ``rewrites``: reservations lost to a rival's write.
    """

    slot: float
    waited: float = 0.0
    paced: bool = True
    refused: bool = False
    rewrites: int = 0


def parse_ledger(raw: str | None) -> list[tuple[float, str]]:
    """The ``(slot, id)`` entries of a ledger Variable, sorted; anything unreadable counts as empty."""
    try:
        entries = json.loads(raw)["slots"] if raw else []
        parsed = sorted((float(slot), str(owner)) for slot, owner in entries)
    except (TypeError, ValueError, KeyError, AttributeError):
        return []
    return [entry for entry in parsed if entry[0] == entry[0]]  # drop NaN


def earliest_slot(entries: list[tuple[float, str]], budget: Budget, now: float, margin: float) -> float:
    """The first moment >= ``now`` (and >= the last reservation: slots are handed out in order) at which
    fewer than ``limit`` slots lie in the ``window + margin`` before it."""
    slot = max(now, entries[-1][0]) if entries else now
    if len(entries) >= budget.limit:
        slot = max(slot, entries[-budget.limit][0] + budget.window + margin)
    return slot


def reserve(
    budgets: list[Budget],
    *,
    max_wait: float,
    margin: float = DEFAULT_MARGIN,
    owner: str | None = None,
) -> Generator[Step, Any, Grant]:
    """Reserve one send slot in every ledger of ``budgets`` and wait for it (see the module docstring)."""
    owner = owner or uuid.uuid4().hex[:12]
    rewrites = 0
    slot = 0.0
    first_now: float | None = None
    for attempt in range(MAX_RESERVATIONS):
        ledgers = {}
        for budget in budgets:
            raw = yield Read(budget.key)
            ledgers[budget.key] = parse_ledger(raw)
        now: float = yield Now()
        first_now = now if first_now is None else first_now
        kept = {}
        slot = now
        for budget in budgets:
            # Our own earlier (lost or half-kept) reservations are dropped; expired slots too.
            horizon = now - budget.window - margin
            entries = [e for e in ledgers[budget.key] if e[0] > horizon and not e[1].startswith(owner)]
            kept[budget.key] = entries
            slot = max(slot, earliest_slot(entries, budget, now, margin))
        if slot - first_now > max_wait:
            return Grant(slot, refused=True, rewrites=rewrites)
        mine = f"{owner}.{attempt}"
        started: float = yield Now()
        for budget in budgets:
            entries = sorted([*kept[budget.key], (slot, mine)])
            document = json.dumps({"slots": [[round(at, 3), who] for at, who in entries]}, separators=(",", ":"))
            if not (yield Write(budget.key, document)):
                return Grant(now, paced=False, rewrites=rewrites)  # Variables not writable here
        written: float = yield Now()
        yield Pause(min(max(SETTLE_MIN, SETTLE_PER_WRITE * max(written - started, 0.0)), SETTLE_MAX))
        lost = False
        for budget in budgets:
            raw = yield Read(budget.key)
            if all(who != mine for _, who in parse_ledger(raw)):
                lost = True
        if not lost:
            break
        rewrites += 1
    now = yield Now()
    if slot > now:
        yield Pause(slot - now)
    assert first_now is not None
    return Grant(slot, waited=max(slot, now) - first_now, rewrites=rewrites)


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

    def observe(self, headers: Mapping[str, str]) -> None:
        """Learn ODC's time from an answer."""
        self.clock.observe(headers.get("Date"))

    def before_send(self, method: str, path: str, *, max_wait: float) -> Grant | None:
        """Wait for this request's slot (None: the request counts toward no documented limit).

        Raises OdcApiError, nothing sent, when the first free slot is further out than ``max_wait``.
        """
        budgets = budgets_for(self.conn_id, method, path)
        if not budgets:
            return None
        if not self.clock.known:
            self.clock.observe(self.probe())
        grant = drive(reserve(budgets, max_wait=max_wait, margin=self.margin), self._perform)
        if grant.refused:
            raise OdcApiError(
                f"was not sent: ODC's rate limit for it is booked by other tasks for the next "
                f"{grant.slot - self.clock.now():.0f} s, longer than this call may wait ({max_wait:g} s).",
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
