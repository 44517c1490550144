"""A best-effort lease so that workers starting cold together make one token exchange, not twenty.

Airflow Variables have no compare-and-set, so the lease is claimed in three steps:

1. read the lease Variable; if another worker holds an unexpired lease, wait for its token;
2. otherwise write a lease naming this process, wait a short settle delay while rivals do the same
   (longer when the write itself was slow: a loaded machine or database delays the rivals' writes too);
3. read it back: the last writer wins, everyone else waits.

Waiting means polling the token Variable until a usable token appears, the lease expires, or the
lease is released without a token (the holder failed). Every wait is bounded by the lease's lifetime,
one exchange timeout, so a dead holder delays the others by at most that. Whatever goes wrong, the
fallback is the old behaviour: exchange. The lease holds no secret: an owner id and an expiry.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from airflow_provider_odc.cache.stores import TokenStore

log = logging.getLogger(__name__)
T = TypeVar("T")


def lease_key_for(conn_id: str) -> str:
    return f"odc_cache_lease__{conn_id}"


@dataclass
class ExchangeLease:
    """Cross-process single flight for the token exchange of one connection."""

    store: TokenStore
    ttl: float
    settle: float = 0.5
    #: The settle delay is at least this many times as long as our own lease write took (capped at a
    #: quarter of the lease's lifetime).
    settle_per_write: float = 3.0
    poll: float = 0.2
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    owner: str = field(default_factory=lambda: uuid.uuid4().hex)

    def claim(self) -> bool:
        """True when this process should exchange: it holds the lease, or no lease can be kept."""
        holder = self._holder()
        if holder is not None and holder[0] != self.owner:
            return False
        started = self.clock()
        if not self.store.write(json.dumps({"owner": self.owner, "expires_at": started + self.ttl})):
            return True  # Variables are not writable here: nothing to coordinate with
        write_time = max(self.clock() - started, 0.0)
        self.sleep(min(max(self.settle, self.settle_per_write * write_time), self.ttl / 4))
        holder = self._holder()
        return holder is None or holder[0] == self.owner

    def wait_for(self, find: Callable[[], T | None]) -> T | None:
        """Poll ``find`` while another process holds the lease; None when it is time to exchange."""
        deadline = self.clock() + self.ttl
        while self.clock() < deadline:
            self.sleep(self.poll)
            found = find()
            if found is not None:
                return found
            holder = self._holder()
            if holder is None or holder[0] == self.owner:
                break
            deadline = min(deadline, holder[1])
        log.info("No ODC token appeared while another worker held the exchange lease; fetching one here.")
        return None

    def release(self) -> None:
        """Give the lease up, unless another process holds it now (never clobber a live rival's lease)."""
        holder = self._holder()
        if holder is None or holder[0] == self.owner:
            self.store.write(json.dumps({"owner": self.owner, "expires_at": 0}))

    def _holder(self) -> tuple[str, float] | None:
        """The live lease's (owner, expires_at), or None when there is none or it expired."""
        raw = self.store.read()
        try:
            lease = json.loads(raw) if raw else {}
            owner, expires_at = str(lease["owner"]), float(lease["expires_at"])
        except (TypeError, ValueError, KeyError):
            return None
        return (owner, expires_at) if expires_at > self.clock() else None
