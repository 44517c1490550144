"""Where sealed tokens are kept between processes: an Airflow Variable.

Best effort by design: ``Variable.set`` raises outside a running task (the API server's Test
button, plain scripts) and can fail inside one. A store problem is logged once per process and key,
and the caller carries on with its in-memory token; it never fails a task.
"""

from __future__ import annotations

import logging
from typing import Protocol

log = logging.getLogger(__name__)

_warned: set[tuple[str, str]] = set()


def forget_warnings() -> None:
    """Forget which store problems were already logged, as a new process would (tests use this)."""
    _warned.clear()


def variable_key_for(conn_id: str) -> str:
    """The Variable holding a connection's token. It contains 'token', so Airflow masks its value."""
    return f"odc_access_token__{conn_id}"


class TokenStore(Protocol):
    key: str

    def read(self) -> str | None: ...

    def write(self, value: str) -> bool: ...


class VariableTokenStore:
    """Reads and writes one Airflow Variable through the task SDK."""

    def __init__(self, key: str) -> None:
        self.key = key

    def read(self) -> str | None:
        from airflow.sdk import Variable

        try:
            value = Variable.get(self.key, default=None)
        except Exception as exc:
            _warn_once(self.key, "read", exc)
            return None
        return value if isinstance(value, str) else None

    def write(self, value: str) -> bool:
        from airflow.sdk import Variable

        try:
            Variable.set(
                self.key,
                value,
                description=_description(self.key),
            )
        except Exception as exc:
            _warn_once(self.key, "write", exc)
            return False
        return True


#: What each kind of Variable the provider shares between tasks holds, by key prefix; the rest are token caches.
_KINDS = (
    ("odc_cache_lease__", "ODC token-exchange lease", "which task fetches the next token, no secret"),  # lease
    ("odc_rate_budget__", "ODC rate-limit pacing ledger", "send slots, no secret"),  # pacing.ledger_key
    ("odc_asset_first_event__", "ODC first-Asset-event election", "a lease, no secret"),  # asset_first_events
)
_TOKEN_CACHE = ("", "ODC access token cache", "the token, encrypted")


def _kind(key: str) -> tuple[str, str, str]:
    return next((kind for kind in _KINDS if key.startswith(kind[0])), _TOKEN_CACHE)


def _description(key: str) -> str:
    _, name, holds = _kind(key)
    return f"{name} (airflow-provider-odc): {holds}. Safe to delete."


def _warn_once(key: str, action: str, exc: BaseException) -> None:
    if (key, action) in _warned:
        log.debug("Could not %s Variable %s (%s).", action, key, type(exc).__name__)
        return
    _warned.add((key, action))
    log.warning(
        "Could not %s the %s Variable %s (%s); this process carries on without what other tasks share there. "
        "Outside a running task (e.g. the connection Test button) this is expected.",
        action,
        _kind(key)[1],
        key,
        type(exc).__name__,
    )
