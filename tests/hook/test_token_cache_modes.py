"""The token cache's documented modes and promises, through OdcHook against the emulator.

* ``cache_mode``: ``variable`` (the default, tested everywhere else), ``memory`` (one token per
  process, no Variable) and ``off`` (every hook fetches its own).
* ``cache_secret``: a token cached under it stays usable after the client secret is rotated.
* A ``Variable.get`` that raises: the hook carries on (exchanges) and warns once per Variable.
* A token loaded from the Variable by another process is registered with Airflow's secrets masker.

"A new worker process" is ``TokenCache.forget_all()`` where only the in-memory cache matters, and a
real second Python process where the masker (per process) is what is tested.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_odc.cache import stores
from airflow_provider_odc.cache.stores import variable_key_for
from airflow_provider_odc.cache.token_cache import TokenCache
from airflow_provider_odc.hooks.odc import OdcHook, envelope_codec_for
from devtools.hook_factory import HookFactory, run_in_new_process

from ..faults._support import DictStore

ENVIRONMENTS = "/api/portfolios/v2/environments"
KEY = variable_key_for("odc_default")


@pytest.fixture(autouse=True)
def _fresh_warning_memory() -> Iterator[None]:
    """The store warns once per process and key: each test is a new process."""
    stores.forget_warnings()
    yield
    stores.forget_warnings()


@pytest.fixture
def variable_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every ``Variable.get``/``Variable.set`` the provider makes, recorded, then passed to Airflow's own."""
    from airflow.sdk import Variable

    calls: list[tuple[str, str]] = []
    real_get, real_set = Variable.get, Variable.set

    def get(key: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(("get", key))
        return real_get(key, *args, **kwargs)

    def set_(key: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(("set", key))
        return real_set(key, *args, **kwargs)

    monkeypatch.setattr(Variable, "get", staticmethod(get))
    monkeypatch.setattr(Variable, "set", staticmethod(set_))
    return calls


@pytest.fixture
def variables(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A writable stand-in for the Variables (``Variable.set`` cannot work outside a running task)."""
    values: dict[str, str] = {}
    monkeypatch.setattr(OdcHook, "token_store", lambda key: DictStore(values, key))
    return values


def test_memory_mode_one_exchange_per_process_and_no_variable(
    make_hook: HookFactory, odc_emulator: Any, variable_calls: list[tuple[str, str]]
) -> None:
    first = make_hook(extra={"cache_mode": "memory"})
    first.request("GET", ENVIRONMENTS)
    make_hook(extra={"cache_mode": "memory"}).request("GET", ENVIRONMENTS)  # another hook, same process
    assert odc_emulator.stats()["token_exchanges"] == 1
    assert make_hook(extra={"cache_mode": "memory"}).get_access_token() == first.get_access_token()

    TokenCache.forget_all()  # a new worker process: nothing to share the token through
    make_hook(extra={"cache_mode": "memory"}).request("GET", ENVIRONMENTS)
    assert odc_emulator.stats()["token_exchanges"] == 2
    assert variable_calls == [], "memory mode must neither read nor write a Variable"


def test_off_mode_every_hook_fetches_its_own(
    make_hook: HookFactory, odc_emulator: Any, variable_calls: list[tuple[str, str]]
) -> None:
    first = make_hook(extra={"cache_mode": "off"})
    first.request("GET", ENVIRONMENTS)
    first.request("GET", ENVIRONMENTS)  # the hook keeps the token it fetched
    assert odc_emulator.stats()["token_exchanges"] == 1
    second = make_hook(extra={"cache_mode": "off"})
    second.request("GET", ENVIRONMENTS)
    assert odc_emulator.stats()["token_exchanges"] == 2
    assert second.get_access_token() != first.get_access_token()
    assert variable_calls == [], "off mode must neither read nor write a Variable"


@pytest.mark.parametrize("cache_secret", ["a-separate-cache-secret", None], ids=["with-cache-secret", "without"])
def test_client_secret_rotation(
    cache_secret: str | None,
    make_hook: HookFactory,
    odc_emulator: Any,
    variables: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The README: after rotating the secret, with a ``cache_secret`` the cached token stays usable until
    it expires; without one it no longer decrypts, and the next task fetches a new token."""
    extra = {"cache_secret": cache_secret} if cache_secret else {}
    before = make_hook(extra=extra)
    before.request("GET", ENVIRONMENTS)
    cached = before.get_access_token()
    assert odc_emulator.stats()["token_exchanges"] == 1

    rotated = "the-client-secret-after-rotation"
    odc_emulator.configure(client_secret=rotated)  # regenerated in the ODC Portal ...
    TokenCache.forget_all()  # ... and the connection updated; the next task is a new process
    with caplog.at_level(logging.WARNING):
        after = make_hook(password=rotated, extra=extra)
        assert after.request("GET", ENVIRONMENTS).status_code == 200
    stats = odc_emulator.stats()
    assert stats["unauthorized"] == 0
    ignored = [r.getMessage() for r in caplog.records if "Ignoring the cached ODC token" in r.getMessage()]
    if cache_secret:
        assert stats["token_exchanges"] == 1, "the sealed token should have opened with the cache secret"
        assert after.get_access_token() == cached and ignored == []
    else:
        assert stats["token_exchanges"] == 2
        assert after.get_access_token() != cached
        assert len(ignored) == 1 and "another key" in ignored[0]
        assert envelope_codec_for(after.settings).open(variables[KEY]).token.value == after.get_access_token()


def test_a_failing_variable_get_falls_back_to_an_exchange_and_warns_once(
    make_hook: HookFactory, odc_emulator: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The Variable backend raises on read (a secrets backend outage): no task fails, one warning per
    Variable and process, and the exception's text (which may hold anything) is not logged."""
    from airflow.sdk import Variable

    reads: list[str] = []

    def broken_get(key: str, *args: Any, **kwargs: Any) -> Any:
        reads.append(key)
        raise RuntimeError("secrets backend unreachable: vault said 503 for path secret/odc")

    monkeypatch.setattr(Variable, "get", staticmethod(broken_get))
    with caplog.at_level(logging.WARNING):
        assert make_hook().request("GET", ENVIRONMENTS).status_code == 200
        TokenCache.forget_all()  # another cache in the same process: the Variable still cannot be read
        assert make_hook().request("GET", ENVIRONMENTS).status_code == 200
    assert KEY in reads, "the hook did go to the Variable"
    assert odc_emulator.stats()["token_exchanges"] == 2, "each cache fell back to its own exchange"
    warnings = [r.getMessage() for r in caplog.records if "Could not read the ODC access token cache" in r.getMessage()]
    assert sum(f"Variable {KEY} " in message for message in warnings) == 1, warnings
    assert len(warnings) == len(set(warnings)), "one warning per Variable and process"
    assert all("RuntimeError" in message for message in warnings)
    assert "vault said 503" not in caplog.text


#: A second worker process: reads the token cache Variable through Airflow's own ``Variable.get``
#: (here from the environment, ``AIRFLOW_VAR_*``, which needs no running task), calls ODC once, and
#: reports whether Airflow's secrets masker hides the token it loaded, and the token's fingerprint.
SECOND_PROCESS = """
import json
try:
    from airflow.sdk.log import redact
except ImportError:  # Airflow 3.0
    from airflow.sdk.execution_time.secrets_masker import redact
from airflow_provider_odc.hooks.odc import OdcHook

hook = OdcHook()
status = hook.request("GET", "/api/portfolios/v2/environments").status_code
token = hook._token()
masked = redact("t=" + token.value) == "t=***"
print("RESULT " + json.dumps({"status": status, "fingerprint": token.fingerprint, "masked": masked}))
"""


def test_a_token_loaded_from_the_variable_is_masked_in_the_process_that_loads_it(
    make_hook: HookFactory, odc_emulator: Any, variables: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = make_hook()
    first.request("GET", ENVIRONMENTS)
    fingerprint = first._token().fingerprint
    monkeypatch.setenv(f"AIRFLOW_VAR_{KEY.upper()}", variables[KEY])  # the sealed token, as stored

    result = run_in_new_process(SECOND_PROCESS)

    assert result["status"] == 200
    assert result["fingerprint"] == fingerprint, "the second process used the token from the Variable"
    assert odc_emulator.stats()["token_exchanges"] == 1, "... without an exchange of its own"
    assert result["masked"] is True, "the loaded token was not registered with Airflow's secrets masker"
