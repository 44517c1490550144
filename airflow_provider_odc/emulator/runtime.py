"""What every part of one emulator shares: its lock, its settings and its clock.

``EmulatorState`` owns a ``Runtime`` and hands it to its parts (the release lifecycle, the long-running
jobs); each part takes ``runtime.lock`` for short, non-blocking sections, so one lock guards everything.
Nothing here knows about HTTP.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from typing import Any

from airflow_provider_odc.emulator.rate_limits import DEFAULT_DOMAIN_LIMIT, DEFAULT_POST_LIMIT

DEFAULT_BUILD_PENDING = 0.5  # seconds on the emulator clock
DEFAULT_BUILD_RUNNING = 1.5
DEFAULT_OPERATION_DURATION = 2.0  # deploy, undeploy, apply-configs and publish operations


@dataclass
class EmulatorConfig:
    """Settings a test may change at runtime; ``reset()`` restores the constructor values."""

    token_lifetime: int
    client_secret: str
    discovery_mode: str = "normal"
    discovery_document: dict[str, Any] | None = None
    token_redirect_to: str | None = None
    clock_offset: float = 0.0
    build_pending: float = DEFAULT_BUILD_PENDING
    build_running: float = DEFAULT_BUILD_RUNNING
    operation_duration: float = DEFAULT_OPERATION_DURATION
    # ODC's documented rate limits (see rate_limits.py); Retry-After only when a test opts in, as ODC
    # promises none: "auto" (seconds until the window frees a slot) or a fixed number of seconds.
    rate_limits: bool = True
    post_limit_per_minute: int | None = DEFAULT_POST_LIMIT
    domain_limit_per_minute: int | None = DEFAULT_DOMAIN_LIMIT
    rate_limit_retry_after: str | int | None = None


class Runtime:
    """The lock, the current config (replaced whole on every change) and the emulator clock."""

    def __init__(self, defaults: EmulatorConfig) -> None:
        self.lock = threading.Lock()
        self.defaults = defaults
        self.config = replace(defaults)

    def now_locked(self) -> float:
        """The emulator's clock (lock held): wall time plus the configured skew."""
        return time.time() + self.config.clock_offset
