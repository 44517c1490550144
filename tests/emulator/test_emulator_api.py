"""Asset repository and portfolio endpoints: paging, filters, sorting, errors, and the OpenAPI contract.

``client.get`` validates every body against the official spec when it is available; the ``contract``
tests below additionally prove that the checker is active and strict.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import jsonschema
import pytest

from airflow_provider_odc.emulator.server import OdcEmulator

ASSETS = "/api/asset-repository/v1/assets"
ASSET = "/api/asset-repository/v1/assets/{assetKey}"
ENVIRONMENTS = "/api/portfolios/v2/environments"


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status and problem["traceId"] and problem["errorCode"].startswith("OS-")
    return problem


# Paging ----------------------------------------------------------------------------------------------


def test_paging_walks_every_asset_with_exact_page_info(client: Any) -> None:
    pages, offset = [], 0
    while offset is not None:
        body = client.get(ASSETS, {"limit": 7, "offset": offset}).json()
        pages.append(body)
        offset = body["page"]["nextPageOffset"]
    infos = [page["page"] for page in pages]
    assert [info["offset"] for info in infos] == [0, 7, 14, 21]
    assert [info["count"] for info in infos] == [7, 7, 7, 4]
    assert [info["nextPageOffset"] for info in infos] == [7, 14, 21, None]
    assert {(info["limit"], info["totalResults"], info["totalPages"]) for info in infos} == {(7, 25, 4)}
    walked = [asset for page in pages for asset in page["results"]]
    assert walked == client.all_assets()
    assert len({asset["assetKey"] for asset in walked}) == 25


def test_default_page_and_exact_fit(client: Any) -> None:
    page = client.get(ASSETS).json()["page"]
    assert page == {"count": 25, "limit": 100, "offset": 0, "nextPageOffset": None, "totalResults": 25, "totalPages": 1}
    last = client.get(ASSETS, {"limit": 5, "offset": 20}).json()["page"]
    assert (last["count"], last["nextPageOffset"], last["totalPages"]) == (5, None, 5)


def test_offset_past_the_end_gives_an_empty_last_page(client: Any) -> None:
    body = client.get(ASSETS, {"offset": 500}).json()
    assert body["results"] == []
    assert body["page"]["count"] == 0 and body["page"]["nextPageOffset"] is None
    assert body["page"]["totalResults"] == 25


@pytest.mark.parametrize("limit", [1, 1000])
def test_limit_bounds_are_inclusive(client: Any, limit: int) -> None:
    body = client.get(ASSETS, {"limit": limit}).json()
    assert body["page"]["limit"] == limit and body["page"]["count"] == min(limit, 25)


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": -5}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"sort": "revision"}, "sort"),
        ({"isExternal": "maybe"}, "isExternal"),
    ],
)
def test_invalid_query_parameters_are_validation_problems(client: Any, params: dict[str, Any], parameter: str) -> None:
    problem = assert_problem(client.get(ASSETS, params), 400)
    assert problem["title"] == "One or more validation errors occurred."
    assert parameter in problem["errors"]


# Filters and sorting ---------------------------------------------------------------------------------


def test_name_contains_is_case_insensitive(client: Any) -> None:
    everything = client.all_assets()
    stem = everything[0]["name"].rsplit(" ", 1)[0]
    expected = [asset for asset in everything if stem.lower() in asset["name"].lower()]
    assert client.all_assets(nameContains=stem.upper()) == expected
    assert client.all_assets(nameContains="no such asset") == []


def test_asset_types_accept_repeated_keys_and_commas(client: Any) -> None:
    repeated = client.get(ASSETS, [("assetTypes", "WebApplication"), ("assetTypes", "Workflow")]).json()
    commas = client.get(ASSETS, {"assetTypes": "WebApplication,Workflow"}).json()
    assert repeated == commas
    types = {asset["assetType"] for asset in repeated["results"]}
    assert types == {"WebApplication", "Workflow"}
    expected = [a for a in client.all_assets() if a["assetType"] in ("WebApplication", "Workflow")]
    assert repeated["results"] == expected and repeated["page"]["totalResults"] == len(expected)


def test_asset_keys_filter(client: Any) -> None:
    everything = client.all_assets()
    wanted = [everything[3]["assetKey"], everything[17]["assetKey"]]
    assert client.all_assets(assetKeys=",".join(wanted)) == [everything[3], everything[17]]
    assert client.get(ASSETS, [("assetKeys", wanted[0]), ("assetKeys", wanted[1])]).json()["page"]["count"] == 2


@pytest.mark.parametrize(
    ("sort", "key", "reverse"),
    [
        ("name", lambda a: a["name"].casefold(), False),
        ("-name", lambda a: a["name"].casefold(), True),
        ("createdAt", lambda a: a["createdAt"], False),
        ("-createdAt", lambda a: a["createdAt"], True),
    ],
)
def test_sort_orders(client: Any, sort: str, key: Any, reverse: bool) -> None:
    everything = client.all_assets()
    assert client.all_assets(sort=sort) == sorted(everything, key=key, reverse=reverse)
    assert client.all_assets(sort=sort) != everything or sort == "createdAt"  # default order is createdAt asc


def test_sorting_happens_before_paging(client: Any) -> None:
    first_page = client.get(ASSETS, {"sort": "-name", "limit": 3}).json()["results"]
    assert first_page == client.all_assets(sort="-name")[:3]


# Single asset ----------------------------------------------------------------------------------------


def test_get_asset_by_key(client: Any) -> None:
    listed = client.all_assets()[5]
    response = client.get(f"{ASSETS}/{listed['assetKey']}", route=ASSET)
    assert response.status_code == 200 and response.json() == listed
    assert client.get(f"{ASSETS}/{listed['assetKey'].upper()}", route=ASSET).json() == listed


def test_unknown_asset_is_a_404_problem(client: Any) -> None:
    missing = str(uuid.uuid4())
    problem = assert_problem(client.get(f"{ASSETS}/{missing}", route=ASSET), 404)
    assert missing in problem["detail"] and problem["instance"] == f"{ASSETS}/{missing}"


def test_endpoints_the_emulator_lacks_answer_404_problems(client: Any, odc_emulator: OdcEmulator) -> None:
    assert_problem(client.get("/api/identity/v1/permissions", check=False), 404)  # the spec declares no 404 here
    posted = client.session.post(
        f"{odc_emulator.base_url}{ASSETS}", json={}, headers={"Authorization": f"Bearer {client.token()}"}
    )
    assert "does not implement POST" in assert_problem(posted, 404)["detail"]
    assert odc_emulator.stats()["api_calls"][f"POST {ASSETS}"] == 1


# Environments ----------------------------------------------------------------------------------------


def test_environments_are_the_three_seeded_stages(client: Any) -> None:
    body = client.get(ENVIRONMENTS).json()
    assert set(body) == {"results"}  # not paginated
    stages = body["results"]
    assert [(s["name"], s["order"], s["purpose"]) for s in stages] == [
        ("Development", 0, "Development"),
        ("QA", 1000, "NonProduction"),
        ("Production", 2000, "Production"),
    ]
    for stage in stages:
        uuid.UUID(stage["key"])
        uuid.UUID(stage["portfolioKey"])
        assert stage["hosting"] == "oscloud" and stage["status"] == "Ready"
        assert stage["builtinDomain"].endswith(".outsystems.app") and stage["defaultDomain"] and stage["region"]
    assert len({stage["key"] for stage in stages}) == 3


def test_environments_portfolio_filter(client: Any) -> None:
    stages = client.get(ENVIRONMENTS).json()["results"]
    portfolio = stages[0]["portfolioKey"]
    assert client.get(ENVIRONMENTS, {"portfolioKey": portfolio}).json()["results"] == stages
    assert client.get(ENVIRONMENTS, {"portfolioKey": str(uuid.uuid4())}).json()["results"] == []
    problem = assert_problem(client.get(ENVIRONMENTS, {"portfolioKey": "not-a-guid"}), 400)
    assert "portfolioKey" in problem["errors"]


# Scale -----------------------------------------------------------------------------------------------


def test_ten_thousand_assets_are_served_quickly(make_client: Any) -> None:
    started = time.monotonic()
    with OdcEmulator(asset_count=10_000) as emulator:
        client = make_client(emulator)
        client.contract = None  # validating 10,000 bodies would time the validator, not the emulator
        keys: set[str] = set()
        offset, pages = 0, 0
        while offset is not None:
            body = client.get(ASSETS, {"limit": 1000, "offset": offset, "sort": "name"}).json()
            keys.update(asset["assetKey"] for asset in body["results"])
            offset, pages = body["page"]["nextPageOffset"], pages + 1
        filtered = client.get(ASSETS, {"assetTypes": "Workflow", "nameContains": "portal", "limit": 5}).json()
    assert len(keys) == 10_000 and pages == 10
    assert filtered["page"]["totalResults"] > 0
    assert time.monotonic() - started < 10


# OpenAPI contract ------------------------------------------------------------------------------------


def test_every_response_kind_matches_the_official_schemas(client: Any, contract: Any) -> None:
    everything = client.get(ASSETS, {"limit": 1000}).json()
    contract.validate_named("asset-repository-api-v1.json", "AssetRevisionV1PagedListResponse", everything)
    for asset in everything["results"]:
        contract.validate_named("asset-repository-api-v1.json", "AssetRevisionV1", asset)
    last_page = client.get(ASSETS, {"limit": 10, "offset": 20}).json()
    assert last_page["page"]["nextPageOffset"] is None
    contract.validate(ASSETS, "GET", 200, last_page)
    contract.validate(ASSET, "GET", 200, everything["results"][0])
    contract.validate(ENVIRONMENTS, "GET", 200, client.get(ENVIRONMENTS).json())
    for response in (
        client.get(ASSETS, authorize=False),
        client.get(ASSETS, {"limit": 0}),
        client.get(f"{ASSETS}/{uuid.uuid4()}", route=ASSET),
        client.get(ENVIRONMENTS, {"portfolioKey": "nope"}),
    ):
        contract.validate_named("asset-repository-api-v1.json", "ProblemDetails", response.json())


def test_the_contract_checker_is_strict(client: Any, contract: Any) -> None:
    asset = client.all_assets()[0]
    with pytest.raises(jsonschema.ValidationError):
        contract.validate(ASSET, "GET", 200, {**asset, "unexpected": 1})  # additionalProperties: false
    with pytest.raises(jsonschema.ValidationError):
        contract.validate(ASSET, "GET", 200, {**asset, "revision": "7"})
    with pytest.raises(jsonschema.ValidationError):
        contract.validate(ENVIRONMENTS, "GET", 200, {"results": [{"key": "k", "purpose": "Staging"}]})
    contract.validate(ENVIRONMENTS, "GET", 200, {"results": [{"key": None, "purpose": None}]})  # nullable


@pytest.mark.parametrize(
    ("parse", "raw", "parsed", "allowed"),
    [
        ("seed.parse_sort", "name,-createdAt", [("name", False), ("createdAt", True)], "name, createdAt"),
        ("release.parse_revision_sort", " -tag , revision", [("tag", True), ("revision", False)], "revision, tag"),
        ("release.parse_operation_sort", "-createdAt", [("createdat", True)], "CreatedAt, UpdatedAt, FinishedAt"),
    ],
)
def test_sort_parameters_parse_and_name_what_is_allowed(parse: str, raw: str, parsed: Any, allowed: str) -> None:
    import importlib

    module, _, name = parse.partition(".")
    function = getattr(importlib.import_module(f"airflow_provider_odc.emulator.{module}"), name)
    assert function(raw) == parsed
    with pytest.raises(ValueError, match=f"Invalid sort field '-bogus'. Allowed: {allowed}"):
        function(f"{raw},-bogus")
