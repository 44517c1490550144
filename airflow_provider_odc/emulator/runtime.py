"""What every part of one emulator shares: its lock, its settings and its clock.

``EmulatorState`` owns a ``Runtime`` and hands it to its parts (the release lifecycle, the long-running
jobs); each part takes ``runtime.lock`` for short, non-blocking sections, so one lock guards everything.
Nothing here knows about HTTP.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

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


Seconds = Annotated[float, Field(ge=0, le=86400)]
Strict = ConfigDict(strict=True, extra="forbid")
SECONDS: TypeAdapter[float] = TypeAdapter(Seconds, config=ConfigDict(strict=True))


class BuildDurations(BaseModel):
    model_config = Strict

    pending: Seconds | None = None
    running: Seconds | None = None

    @model_validator(mode="after")
    def _names_a_phase(self) -> BuildDurations:
        if not self.model_fields_set:
            raise ValueError('build_durations must be an object like {"pending": 0.5, "running": 1.5}')
        return self


class Discovery(BaseModel):
    model_config = Strict

    mode: Literal["normal", "not_json", "missing_token_endpoint", "override"] = "normal"
    document: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _override_needs_a_document(self) -> Discovery:
        if (self.mode == "override") != (self.document is not None):
            raise ValueError("discovery.document (an object) goes with mode 'override', and only with it")
        return self


class ConfigChange(BaseModel):
    """What ``configure`` may change, checked as given (no JSON type is coerced). For the fields whose
    ``None`` means something (no redirect, no limit, no Retry-After), a field set to ``None`` is a change."""

    model_config = Strict

    token_lifetime: Annotated[int, Field(ge=1)] | None = None
    client_secret: Annotated[str, Field(min_length=1)] | None = None
    discovery: Discovery | None = None
    token_redirect_to: Annotated[str, Field(min_length=1)] | None = None
    clock_offset: float | None = None
    build_durations: BuildDurations | None = None
    operation_duration: Seconds | None = None
    rate_limits: bool | None = None
    post_limit_per_minute: Annotated[int, Field(ge=1)] | None = None
    domain_limit_per_minute: Annotated[int, Field(ge=1)] | None = None
    rate_limit_retry_after: Literal["auto"] | Annotated[int, Field(ge=0)] | None = None

    def changes(self) -> dict[str, Any]:
        """The ``EmulatorConfig`` fields to replace."""
        found: dict[str, Any] = {}
        for name in self.model_fields_set:
            value = getattr(self, name)
            if value is None and name not in NONE_IS_A_VALUE:
                continue
            if isinstance(value, Discovery):
                found.update(discovery_mode=value.mode, discovery_document=value.document)
            elif isinstance(value, BuildDurations):
                found.update({f"build_{phase}": seconds for phase, seconds in value if seconds is not None})
            else:
                found[name] = float(value) if name == "clock_offset" else value
        return found


NONE_IS_A_VALUE = {"token_redirect_to", "post_limit_per_minute", "domain_limit_per_minute", "rate_limit_retry_after"}


class Runtime:
    """The lock, the current config (replaced whole on every change) and the emulator clock."""

    def __init__(self, defaults: EmulatorConfig) -> None:
        self.lock = threading.Lock()
        self.defaults = defaults
        self.config = replace(defaults)

    def now_locked(self) -> float:
        """The emulator's clock (lock held): wall time plus the configured skew."""
        return time.time() + self.config.clock_offset
