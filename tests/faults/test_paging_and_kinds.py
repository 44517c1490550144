"""Fault matrix, part 6: lists that page wrongly, names that are ambiguous, operations that end oddly.

Pages are scripted per ``offset`` in front of the emulator app (``ScriptedRoutes``; everything else is
the real emulator), so a cursor can cycle, go back or stop while the totals say more. The rows also cover
what ODC's specs allow and the provider must take: null lists, keys in upper case, a stage name used in
two portfolios, a build POST answered ``isSuccessful: false``, an analysis that finishes with errors and
a native build whose messages are scoped by stage and app.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from airflow_provider_odc.exceptions import OdcApiError, OdcError, OdcOperationFailed
from airflow_provider_odc.hooks.odc import OdcHook
from airflow_provider_odc.operators.lifecycle import OdcBuildOperator, OdcDeployOperator, OdcUndeployOperator
from airflow_provider_odc.retries import RetryPolicy
from airflow_provider_odc.sensors.odc import OdcOperationSensor
from devtools.servers import LoopbackServer

from ._support import Matrix, outcome_of

ASSETS = "/api/asset-repository/v1/assets"
ENVIRONMENTS = "/api/portfolios/v2/environments"
BUILDS = "/api/builds/v1/build-operations"
ANY_OFFSET = "*"


@dataclass
class ScriptedRoutes:
    """An ASGI app: scripted JSON answers per path and ``offset`` query value (``*``: any), counted;
    every other path goes to the emulator app."""

    app: ASGIApp
    scripts: dict[str, dict[str | None, Any]] = field(default_factory=dict)
    hits: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, path: str, pages: dict[str | None, Any]) -> None:
        self.scripts[path] = pages

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        pages = self.scripts.get(scope.get("path", "")) if scope["type"] == "http" else None
        if pages is None:
            await self.app(scope, receive, send)
            return
        offset = dict(parse_qsl(scope.get("query_string", b"").decode())).get("offset")
        body = pages.get(offset, pages.get(ANY_OFFSET))
        with self._lock:
            self.hits += 1
        status, payload = (200, body) if body is not None else (404, {"title": "Not Found", "status": 404})
        raw = json.dumps(payload).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": raw})


@pytest.fixture
def portal(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackServer]:
    with LoopbackServer(wrap=ScriptedRoutes) as server:
        monkeypatch.setenv("AIRFLOW_CONN_ODC_DEFAULT", json.dumps(server.connection()))
        yield server


def scripted(portal: LoopbackServer) -> ScriptedRoutes:
    assert isinstance(portal.app, ScriptedRoutes)
    return portal.app


def hook() -> OdcHook:
    return OdcHook(retry_policy=RetryPolicy(max_retries=1, sleep=lambda seconds: None))


def counts(portal: LoopbackServer) -> dict[str, int]:
    stats = portal.stats()
    return {
        "token_requests": stats["token_requests"],
        "token_exchanges": stats["token_exchanges"],
        "api_calls_total": stats["api_calls_total"] + scripted(portal).hits,
    }


def page(keys: list[int], offset: int | str | None, next_offset: Any, total: int | None = None) -> dict[str, Any]:
    info: dict[str, Any] = {"count": len(keys), "limit": 2, "offset": offset, "nextPageOffset": next_offset}
    if total is not None:
        info["totalResults"] = total
    return {"page": info, "results": [{"assetKey": str(n)} for n in keys]}


def read_all(path: str) -> tuple[list[str], Exception | None]:
    items: list[str] = []
    try:
        items.extend(item["assetKey"] for item in hook().paginate(path, page_size=2))
    except Exception as exc:
        return items, exc
    return items, None


# Paging ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pages", "read", "calls"),
    [
        pytest.param(
            {None: page([1, 2], 0, 2), "2": page([3, 4], 2, 4), "4": page([5, 6], 4, 2)},
            ["1", "2", "3", "4", "5", "6"],
            3,
            id="paginate-offset-cycles-back-to-a-read-page",
        ),
        pytest.param(
            {None: page([1, 2], None, "b"), "b": page([3, 4], "b", "c"), "c": page([5], "c", "b")},
            ["1", "2", "3", "4", "5"],
            3,
            id="paginate-string-cursor-cycles",
        ),
        pytest.param(
            {None: page([1, 2], 0, 100), "100": page([3, 4], 100, 50), "50": page([5], 50, None)},
            ["1", "2", "3", "4"],
            2,
            id="paginate-offset-goes-back",
        ),
        pytest.param(
            {None: page([1, 2], 0, 0)},
            ["1", "2"],
            1,
            id="paginate-next-offset-is-the-same-page",
        ),
    ],
)
def test_paging_that_loops_is_an_error(
    pages: dict[str | None, Any], read: list[str], calls: int, portal: LoopbackServer, matrix: Matrix
) -> None:
    scripted(portal).answer(ASSETS, pages)
    items, error = read_all(ASSETS)
    matrix.record(outcome_of(error), counts(portal))
    assert isinstance(error, OdcApiError), error
    assert "would loop" in str(error) and ASSETS in str(error) and f"({len(read)} items read)" in str(error)
    assert items == read and scripted(portal).hits == calls


def test_paging_goes_on_when_the_totals_say_more(portal: LoopbackServer, matrix: Matrix) -> None:
    """A page without ``nextPageOffset`` but ``totalResults`` beyond what was read: ODC's documented
    ``nextPageOffset = offset + count`` is followed, not an early stop."""
    scripted(portal).answer(
        ASSETS,
        {None: page([1, 2], 0, None, total=5), "2": page([3, 4], 2, None, total=5), "4": page([5], 4, None, total=5)},
    )
    items, error = read_all(ASSETS)
    matrix.record(outcome_of(error) + f" ({len(items)} of 5 items)", counts(portal))
    assert error is None and items == ["1", "2", "3", "4", "5"] and scripted(portal).hits == 3


def test_paging_stops_at_the_totals(portal: LoopbackServer, matrix: Matrix) -> None:
    scripted(portal).answer(ASSETS, {None: page([1, 2], 0, 2, total=3), "2": page([3], 2, 4, total=3)})
    items, error = read_all(ASSETS)
    matrix.record(outcome_of(error) + f" ({len(items)} of 3 items)", counts(portal))
    assert error is None and items == ["1", "2", "3"] and scripted(portal).hits == 2


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"page": {"count": 0, "limit": 2, "offset": 0}, "results": None}, id="paginate-null-results"),
        pytest.param({"builds": None}, id="paginate-null-builds"),
        pytest.param({"validationMessages": None, "finishedAt": "2026-01-01T00:00:00Z"}, id="paginate-null-messages"),
    ],
)
def test_null_lists_are_empty(body: dict[str, Any], portal: LoopbackServer, matrix: Matrix) -> None:
    scripted(portal).answer(ASSETS, {ANY_OFFSET: body})
    items, error = read_all(ASSETS)
    matrix.record(outcome_of(error) + f" ({len(items)} items)", counts(portal))
    assert error is None and items == []


def test_a_null_build_list_means_no_build_to_deploy(portal: LoopbackServer, matrix: Matrix) -> None:
    asset = portal.state.current_assets()[0]
    scripted(portal).answer(BUILDS, {ANY_OFFSET: {"builds": None}})
    with pytest.raises(OdcError) as caught:
        OdcDeployOperator(task_id="deploy", asset=asset["assetKey"], stage="QA").execute({"ti": None})  # type: ignore[arg-type]
    matrix.record(outcome_of(caught.value), counts(portal))
    assert "has no finished Release build" in str(caught.value)
    assert not any(k.startswith("POST") for k in portal.stats()["api_calls"]), "nothing was started"


# Resolving names and keys ---------------------------------------------------------------------------


def test_a_stage_name_in_two_portfolios_is_ambiguous(portal: LoopbackServer, matrix: Matrix) -> None:
    stages = [dict(stage) for stage in portal.state.environments]
    qa = next(stage for stage in stages if stage["name"] == "QA")
    other_qa = {**qa, "key": str(uuid.uuid4()), "portfolioKey": str(uuid.uuid4()), "order": 1500}
    scripted(portal).answer(ENVIRONMENTS, {ANY_OFFSET: {"results": [*stages, other_qa]}})
    asset = next(a for a in portal.state.current_assets() if a["assetType"] == "WebApplication")
    with pytest.raises(OdcError) as caught:
        OdcUndeployOperator(task_id="undeploy", asset=asset["name"], stage="qa").execute({"ti": None})  # type: ignore[arg-type]
    matrix.record(outcome_of(caught.value), counts(portal))
    message = str(caught.value)
    assert "ambiguous" in message and "Pass the stage key" in message
    for candidate in (qa, other_qa):
        assert candidate["key"] in message and candidate["portfolioKey"] in message
    assert not any(k.startswith("POST") for k in portal.stats()["api_calls"]), "nothing was started"
    assert hook().resolve_stage(other_qa["key"].upper()).portfolio_key == other_qa["portfolioKey"]


def test_keys_match_in_any_case(odc_emulator: Any, odc_connection: str, matrix: Matrix) -> None:
    stage_key = odc_emulator.inventory()["environments"]["Production"]
    asset = odc_emulator.inventory()["assets"][0]
    odc = OdcHook()
    assert odc.resolve_stage(stage_key.upper()).key == stage_key
    assert odc.resolve_stage("{" + stage_key.upper() + "}").key == stage_key
    assert odc.find_asset(asset["assetKey"].upper()).asset_key == asset["assetKey"]
    matrix.record("ok (stage and asset keys in upper case)", odc_emulator.stats())


# Operations that end oddly ---------------------------------------------------------------------------


def test_build_post_answering_is_successful_false_fails_fast(portal: LoopbackServer, matrix: Matrix) -> None:
    asset = next(a for a in portal.state.current_assets() if a["assetType"] == "WebApplication")
    build_key = str(uuid.uuid4())
    scripted(portal).answer(BUILDS, {ANY_OFFSET: {"buildKey": build_key, "isSuccessful": False}})
    operator = OdcBuildOperator(task_id="build", asset=asset["assetKey"], reuse_existing_build=False)
    with pytest.raises(OdcError) as caught:
        operator.execute({"ti": None})  # type: ignore[arg-type]
    matrix.record(outcome_of(caught.value), counts(portal))
    assert "did not start build" in str(caught.value) and "isSuccessful=False" in str(caught.value)
    assert build_key in str(caught.value)
    assert scripted(portal).hits == 1, "one POST, and no status poll of a build that never started"


def test_analysis_finished_with_errors_fails_with_the_findings(
    odc_emulator: Any, odc_connection: str, matrix: Matrix
) -> None:
    odc_emulator.configure(operation_duration=0)
    odc_emulator.fail_next("deployment_analysis_errors", messages=["GetOrders lost its input OrderId."])
    app = next(a for a in odc_emulator.inventory()["assets"] if a["assetType"] == "WebApplication")
    body = {
        "assetKey": app["assetKey"],
        "revision": 1,
        "environmentKey": odc_emulator.inventory()["environments"]["QA"],
    }
    key = OdcHook().request_json("POST", "/api/dependency-management/v1/deployment-analyses", json=body)["analysisKey"]
    with pytest.raises(OdcOperationFailed) as caught:
        OdcOperationSensor(task_id="wait", kind="deployment_analysis", operation_key=key).poke({})
    matrix.record(outcome_of(caught.value), odc_emulator.stats())
    assert caught.value.status == "Finished" and caught.value.result == "ErrorsFound"
    assert "GetOrders lost its input OrderId." in str(caught.value)


def test_native_build_messages_are_read_with_their_scope(
    odc_emulator: Any, odc_connection: str, matrix: Matrix
) -> None:
    odc_emulator.configure(operation_duration=0)
    odc_emulator.fail_next("native_build", messages=["The iOS provisioning profile expired."])
    app = next(a for a in odc_emulator.inventory()["assets"] if a["assetType"] == "MobileApplication")
    scope = {"environmentKey": odc_emulator.inventory()["environments"]["QA"], "applicationKey": app["assetKey"]}
    body = {"buildKey": str(uuid.uuid4()), "revision": 1, "mobilePlatform": "iOS", **scope}
    key = OdcHook().request_json("POST", "/api/native-mobile-builds/v1/build-operations", json=body)["key"]
    with pytest.raises(OdcOperationFailed) as caught:
        OdcOperationSensor(task_id="wait", kind="native_build", operation_key=key, poll_params=scope).poke({})
    matrix.record(outcome_of(caught.value), odc_emulator.stats())
    assert "The iOS provisioning profile expired." in str(caught.value)
    assert "could not be read" not in str(caught.value)
