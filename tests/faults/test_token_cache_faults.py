"""Fault matrix, part 3: the shared token cache is poisoned, unwritable, or the clocks disagree.

Outside a running task ``Variable.set`` cannot work, so these rows give the hook a dict-backed store with
the ``VariableTokenStore`` contract (fixture ``variables``); ``test_task_cache_faults.py`` runs the two
rows that matter most inside real Airflow tasks. "A new process" is simulated by dropping the in-memory
cache (``TokenCache.forget_all()``), which is all a new worker process lacks.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_provider_odc.auth import client_credentials
from airflow_provider_odc.auth.token import AccessToken
from airflow_provider_odc.cache import stores
from airflow_provider_odc.cache.envelope import CachedToken, EnvelopeCodec
from airflow_provider_odc.cache.stores import variable_key_for
from airflow_provider_odc.cache.token_cache import TokenCache
from airflow_provider_odc.hooks.odc import OdcHook, envelope_codec_for

from ._support import DictStore, HookFactory, Matrix

ENVIRONMENTS = "/api/portfolios/v2/environments"
KEY = variable_key_for("odc_default")


def codec_for(odc: Any, *, secret: str | None = None, conn_id: str = "odc_default") -> EnvelopeCodec:
    return EnvelopeCodec.for_connection(
        key_material=secret or odc.client_secret,
        origin=odc.base_url,
        client_id=odc.client_id,
        conn_id=conn_id,
        variable_key=variable_key_for(conn_id),
    )


def sealed(odc: Any, token_value: str = "fabricated-token-value", **codec_args: Any) -> str:
    """An envelope holding a token that is valid for 12 h, as far as its expiry says."""
    now = time.time()
    token = AccessToken(token_value, "Bearer", now + 43_200, now)
    return codec_for(odc, **codec_args).seal(CachedToken(token, odc.token_url))


def flip_one_ciphertext_character(value: str) -> str:
    envelope = json.loads(value)
    ct = envelope["ct"]
    middle = len(ct) // 2
    envelope["ct"] = ct[:middle] + ("A" if ct[middle] != "A" else "B") + ct[middle + 1 :]
    return json.dumps(envelope)


POISONED: dict[str, tuple[Callable[[Any], str], str]] = {
    # row id: (value found in the Variable, what the one warning says)
    "variable-tampered-one-character": (lambda odc: flip_one_ciphertext_character(sealed(odc)), "integrity check"),
    "variable-truncated": (lambda odc: sealed(odc)[: len(sealed(odc)) // 2], "is not a token envelope"),
    "variable-copied-from-another-connection": (lambda odc: sealed(odc, conn_id="odc_other"), "integrity check"),
    "variable-encrypted-with-the-old-secret": (lambda odc: sealed(odc, secret="the-old-client-secret"), "another key"),
    "variable-not-json": (lambda odc: "definitely not an envelope", "is not a token envelope"),
    "variable-other-envelope-version": (lambda odc: json.dumps({"v": 99, "alg": "X", "ct": "AA"}), "another version"),
}


@pytest.fixture(autouse=True)
def _fresh_warning_memory() -> Iterator[None]:
    """The store warns once per process and key: give each row its own 'process'."""
    stores.forget_warnings()
    yield
    stores.forget_warnings()


@pytest.mark.parametrize("poison", POISONED.values(), ids=POISONED.keys())
def test_poisoned_variable_is_a_miss_with_one_warning(
    poison: tuple[Callable[[Any], str], str],
    make_hook: HookFactory,
    odc_emulator: Any,
    variables: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    matrix: Matrix,
) -> None:
    make_value, reason = poison
    variables[KEY] = poisoned = make_value(odc_emulator)
    with caplog.at_level(logging.WARNING):
        hook = make_hook()
        assert hook.request("GET", ENVIRONMENTS).status_code == 200
        hook.request("GET", ENVIRONMENTS)
    stats = odc_emulator.stats()
    matrix.record("ok (miss, new token stored)", stats)
    # The poisoned value was never used (it would have cost a 401 and a second exchange).
    assert (stats["token_requests"], stats["token_exchanges"], stats["api_calls_total"]) == (1, 1, 2)
    assert stats["unauthorized"] == 0
    warnings = [r.getMessage() for r in caplog.records if "Ignoring the cached ODC token" in r.getMessage()]
    assert len(warnings) == 1 and reason in warnings[0], warnings
    assert odc_emulator.client_secret not in caplog.text
    # The next exchange overwrote the Variable with an envelope this connection opens.
    assert variables[KEY] != poisoned
    assert codec_for(odc_emulator).open(variables[KEY]).token.value == hook.get_access_token()
    # ... so the next worker process reuses it without an exchange.
    TokenCache.forget_all()
    make_hook().request("GET", ENVIRONMENTS)
    assert odc_emulator.stats()["token_exchanges"] == 1


def test_valid_variable_is_reused_by_a_new_process(
    make_hook: HookFactory, odc_emulator: Any, variables: dict[str, str], matrix: Matrix
) -> None:
    """The control row: a good envelope means no exchange at all in a new process."""
    make_hook().get_access_token()
    TokenCache.forget_all()
    before = odc_emulator.stats()
    make_hook().request("GET", ENVIRONMENTS)
    after = odc_emulator.stats()
    delta = {key: after[key] - before[key] for key in ("token_requests", "token_exchanges", "api_calls_total")}
    matrix.record("ok (reused)", delta)
    assert delta == {"token_requests": 0, "token_exchanges": 0, "api_calls_total": 1}


def test_variable_holding_a_revoked_token(
    make_hook: HookFactory, odc_emulator: Any, variables: dict[str, str], matrix: Matrix
) -> None:
    """The envelope opens but ODC no longer accepts its token: one 401, one exchange, success."""
    make_hook().get_access_token()
    odc_emulator.revoke_tokens()
    TokenCache.forget_all()
    before = odc_emulator.stats()
    assert make_hook().request("GET", ENVIRONMENTS).status_code == 200
    after = odc_emulator.stats()
    delta = {key: after[key] - before[key] for key in ("token_requests", "token_exchanges", "api_calls_total")}
    matrix.record("ok (401, one refresh)", delta)
    assert delta == {"token_requests": 1, "token_exchanges": 1, "api_calls_total": 2}
    assert after["unauthorized"] - before["unauthorized"] == 1


def test_variable_set_raises(
    make_hook: HookFactory, odc_emulator: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    matrix: Matrix,
) -> None:  # fmt: skip
    """The real Variable store, with ``Variable.set`` raising: the task carries on with its own token."""
    from airflow.sdk import Variable

    monkeypatch.setattr(OdcHook, "token_store", stores.VariableTokenStore)

    attempts: list[str] = []

    def refuse(key: str, value: Any, *args: Any, **kwargs: Any) -> None:
        attempts.append(key)
        raise RuntimeError("Variable.set refused by the API server (HTTP 403)")

    monkeypatch.setattr(Variable, "set", staticmethod(refuse))
    with caplog.at_level(logging.WARNING):
        first = make_hook()
        assert first.request("GET", ENVIRONMENTS).status_code == 200
        make_hook().request("GET", ENVIRONMENTS)  # another hook, same process: the in-memory token
    stats = odc_emulator.stats()
    matrix.record("ok (memory token, one warning)", stats)
    assert (stats["token_requests"], stats["token_exchanges"], stats["api_calls_total"]) == (1, 1, 2)
    assert KEY in attempts
    warning = "Could not write the ODC access token cache"
    warnings = [r.getMessage() for r in caplog.records if warning in r.getMessage()]
    about_the_token = [message for message in warnings if f"Variable {KEY} " in message]
    assert len(about_the_token) == 1 and "RuntimeError" in about_the_token[0], warnings
    assert len(warnings) == len(set(warnings)), "at most one warning per Variable and process"
    assert not any("HTTP 403" in message for message in warnings), "the exception's text is not logged"


class FakeClock:
    """The hook's clock (token cache and exchange), moved by the test in step with ``odc_emulator.advance``."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("offset", [300, -300], ids=["emulator-clock-5-min-ahead", "emulator-clock-5-min-behind"])
def test_clock_skew(
    offset: int,
    make_hook: HookFactory,
    odc_emulator: Any,
    variables: dict[str, str],
    matrix: Matrix,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ODC's clock is minutes off: tokens work, and the refresh still comes before the token expires.

    The token lives 600 s, so the refresh is due at half its life (300 s). The expiry the hook keeps is
    ``expires_in`` counted on its own clock, so a skew of minutes changes nothing; a hook that believed the
    token's ``exp`` claim (ODC's clock) would refresh 5 minutes late (a 401) or at once. Time is moved, not
    waited for: the hook's clock by the test, the emulator's by ``advance`` (where it enforces expiry).
    """
    clock = FakeClock()
    monkeypatch.setattr(
        "airflow_provider_odc.hooks.odc.exchange_client_credentials",
        functools.partial(client_credentials.exchange_client_credentials, clock=clock),
    )
    odc_emulator.configure(clock_offset=offset, token_lifetime=600)
    hook = make_hook()
    settings = hook.settings
    hook.token_cache = TokenCache(  # this hook's cache, on the fake clock
        store=DictStore(variables, KEY),
        codec=envelope_codec_for(settings),
        refresh_margin=settings.refresh_margin,
        clock=clock,
    )
    assert hook.request("GET", ENVIRONMENTS).status_code == 200
    first = hook.get_access_token()

    def let_pass(seconds: float) -> None:
        clock.now += seconds
        odc_emulator.advance(seconds)

    let_pass(299)
    assert hook.request("GET", ENVIRONMENTS).status_code == 200  # same token, still fresh
    assert hook.get_access_token() == first
    let_pass(2)  # past half-life: due for refresh, 299 s before it expires
    assert hook.request("GET", ENVIRONMENTS).status_code == 200
    second = hook.get_access_token()
    assert second != first
    let_pass(299)  # the first token has expired at ODC; the second is still fresh
    assert hook.request("GET", ENVIRONMENTS).status_code == 200
    assert hook.get_access_token() == second
    stats = odc_emulator.stats()
    matrix.record("ok (refreshed at half-life)", stats)
    assert (stats["token_requests"], stats["token_exchanges"], stats["api_calls_total"]) == (2, 2, 4)
    assert stats["unauthorized"] == 0, "no call was ever made with an expired token"
