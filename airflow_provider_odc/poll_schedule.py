"""How often a wait polls an operation's status: ODC's documented schedule, as one value.

ODC asks clients to poll every 5 s for the first 30 s of an operation, then every 30 s. Operators, the
sensor, the waiter and the trigger pass one ``PollSchedule`` between them instead of three numbers; the
operators and the sensor still take the three as keyword arguments, and the trigger still stores them as
three (a trigger row written by an earlier version keeps deserializing).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

FAST_INTERVAL, FAST_PERIOD, SLOW_INTERVAL = 5.0, 30.0, 30.0


@dataclass(frozen=True)
class PollSchedule:
    """Poll every ``fast_interval`` seconds for the first ``fast_period`` seconds, then every ``slow_interval``."""

    fast_interval: float = FAST_INTERVAL
    fast_period: float = FAST_PERIOD
    slow_interval: float = SLOW_INTERVAL

    def interval_at(self, elapsed: float) -> float:
        """The wait before the next poll, ``elapsed`` seconds after the operation started."""
        return self.fast_interval if elapsed < self.fast_period else self.slow_interval

    def as_kwargs(self) -> dict[str, float]:
        """The three numbers under the keyword names operators, the sensor and the trigger take."""
        return asdict(self)
