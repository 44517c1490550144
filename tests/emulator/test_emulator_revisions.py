"""Asset revisions, SemVer tags and release notes: listing, filters, the tag rules of PATCH, and reset."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from airflow_provider_odc.emulator.server import OdcEmulator

ASSETS = "/api/asset-repository/v1/assets"
ASSET = "/api/asset-repository/v1/assets/{assetKey}"
REVISIONS = "/api/asset-repository/v1/assets/{assetKey}/revisions"
REVISION = "/api/asset-repository/v1/assets/{assetKey}/revisions/{revisionNumber}"
NOTES = "/api/asset-repository/v1/assets/{assetKey}/revisions/{revisionNumber}/release-notes"
LATEST = "/api/asset-repository/v1/assets/{assetKey}/latest-revision"
HIGHEST = "/api/asset-repository/v1/assets/{assetKey}/highest-tag-revision"


def semver(tag: str) -> tuple[int, ...]:
    return tuple(int(part) for part in tag.split("."))


def all_revisions(client: Any, key: str, **params: Any) -> list[dict[str, Any]]:
    response = client.get(f"{ASSETS}/{key}/revisions", {**params, "limit": 1000}, route=REVISIONS)
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def tagged_asset(kit: Any) -> dict[str, Any]:
    """Claims Intake 001: 48 revisions, several tagged, the latest untagged (seed facts)."""
    asset = kit.asset("Claims Intake 001")
    assert asset["latestRevision"] == 48 and asset["highestTag"] == "1.5.3" and asset["highestTagRevision"] == 40
    return asset


def patch(client: Any, key: str, number: int, body: Any, **kwargs: Any) -> Any:
    return client.patch(f"{ASSETS}/{key}/revisions/{number}", body, route=REVISION, **kwargs)


# Listing ---------------------------------------------------------------------------------------------


def test_every_asset_has_revisions_one_to_latest(client: Any) -> None:
    for asset in client.all_assets()[:6]:
        key = asset["assetKey"]
        revisions = all_revisions(client, key)
        assert [r["revision"] for r in revisions] == list(range(1, asset["revision"] + 1))
        assert revisions[-1] == asset  # the latest revision is what GET /assets shows
        assert client.get(f"{ASSETS}/{key}/latest-revision", route=LATEST).json() == asset
        assert [r["createdAt"] for r in revisions] == sorted(r["createdAt"] for r in revisions)
        assert {(r["assetKey"], r["name"], r["assetType"]) for r in revisions} == {
            (key, asset["name"], asset["assetType"])
        }
        assert len({r["modelDigest"] for r in revisions}) == len(revisions)


def test_revisions_are_paged_with_totals(client: Any, kit: Any) -> None:
    key = tagged_asset(kit)["assetKey"]
    pages, offset = [], 0
    while offset is not None:
        body = client.get(f"{ASSETS}/{key}/revisions", {"limit": 20, "offset": offset}, route=REVISIONS).json()
        pages.append(body)
        offset = body["page"]["nextPageOffset"]
    assert [p["page"]["offset"] for p in pages] == [0, 20, 40]
    assert [p["page"]["count"] for p in pages] == [20, 20, 8]
    assert {(p["page"]["totalResults"], p["page"]["totalPages"]) for p in pages} == {(48, 3)}
    assert [r for p in pages for r in p["results"]] == all_revisions(client, key)
    default = client.get(f"{ASSETS}/{key}/revisions", route=REVISIONS).json()["page"]
    assert (default["limit"], default["count"], default["nextPageOffset"]) == (100, 48, None)


def test_single_revision_and_its_errors(client: Any, kit: Any) -> None:
    key = tagged_asset(kit)["assetKey"]
    first = client.get(f"{ASSETS}/{key}/revisions/1", route=REVISION)
    assert first.status_code == 200 and first.json()["revision"] == 1
    assert first.json() == all_revisions(client, key)[0]
    assert client.get(f"{ASSETS}/{key.upper()}/revisions/40", route=REVISION).json()["tag"] == "1.5.3"
    for number in (0, 49):
        problem = kit.problem(client.get(f"{ASSETS}/{key}/revisions/{number}", route=REVISION), 404)
        assert str(number) in problem["detail"]
    bad = kit.problem(client.get(f"{ASSETS}/{key}/revisions/latest", route=REVISION), 400)
    assert "revisionNumber" in bad["errors"]


@pytest.mark.parametrize(
    "path", ["/revisions", "/revisions/1", "/revisions/1/release-notes", "/latest-revision", "/highest-tag-revision"]
)
def test_unknown_asset_is_404_on_every_revision_route(client: Any, kit: Any, path: str) -> None:
    missing = str(uuid.uuid4())
    kit.problem(client.get(f"{ASSETS}/{missing}{path}", check=False), 404)
    kit.problem(patch(client, missing, 1, {"commitMessage": "x"}), 404)


def test_revision_filters_and_sorting(client: Any, kit: Any) -> None:
    key = tagged_asset(kit)["assetKey"]
    everything = all_revisions(client, key)
    tagged = all_revisions(client, key, isTagged="true")
    assert tagged == [r for r in everything if r["tag"]] and len(tagged) == 14
    assert all_revisions(client, key, isTagged="false") == [r for r in everything if not r["tag"]]
    assert all_revisions(client, key, tag="1.5.3") == [everything[39]]
    assert all_revisions(client, key, sort="-revision") == everything[::-1]
    by_tag = all_revisions(client, key, sort="-tag", isTagged="true")
    assert [r["tag"] for r in by_tag] == sorted((r["tag"] for r in tagged), key=semver, reverse=True)
    digest = everything[7]["modelDigest"]
    assert all_revisions(client, key, modelDigest=digest.upper()) == [everything[7]]
    message = next(r["commitMessage"] for r in everything if r["commitMessage"])
    word = message.split()[1].upper()
    matching = all_revisions(client, key, commitMessage=word)
    assert matching and matching == [r for r in everything if word.lower() in (r["commitMessage"] or "").lower()]
    since = everything[45]["createdAt"]
    assert all_revisions(client, key, revisionDateTimeSince=since) == everything[45:]
    until = everything[2]["createdAt"]
    assert all_revisions(client, key, revisionDateTimeTo=until) == everything[:3]


@pytest.mark.parametrize(
    ("params", "parameter"),
    [({"sort": "name"}, "sort"), ({"isTagged": "sometimes"}, "isTagged"), ({"limit": 0}, "limit"),
     ({"revisionDateTimeSince": "yesterday"}, "revisionDateTimeSince")],
)  # fmt: skip
def test_invalid_revision_queries(client: Any, kit: Any, params: dict[str, Any], parameter: str) -> None:
    key = tagged_asset(kit)["assetKey"]
    problem = kit.problem(client.get(f"{ASSETS}/{key}/revisions", params, route=REVISIONS), 400)
    assert parameter in problem["errors"]


# Highest tag and release notes -----------------------------------------------------------------------


def test_highest_tag_revision_and_never_tagged_assets(client: Any, kit: Any) -> None:
    key = tagged_asset(kit)["assetKey"]
    highest = client.get(f"{ASSETS}/{key}/highest-tag-revision", route=HIGHEST).json()
    tagged = all_revisions(client, key, isTagged="true")
    assert highest == max(tagged, key=lambda r: semver(r["tag"]))
    assert (highest["revision"], highest["tag"]) == (40, "1.5.3")
    never = kit.asset("Customer 360 003")
    assert never["highestTag"] is None and all_revisions(client, never["assetKey"], isTagged="true") == []
    problem = kit.problem(client.get(f"{ASSETS}/{never['assetKey']}/highest-tag-revision", route=HIGHEST), 404)
    assert "no tagged revision" in problem["detail"]


def test_release_notes_of_seeded_revisions(client: Any, kit: Any) -> None:
    key = tagged_asset(kit)["assetKey"]
    notes = client.get(f"{ASSETS}/{key}/revisions/40/release-notes", route=NOTES).json()
    assert notes["tag"] == "1.5.3" and notes["content"].startswith("<p>Version 1.5.3")
    untagged = client.get(f"{ASSETS}/{key}/revisions/48/release-notes", route=NOTES).json()
    assert untagged == {"tag": None, "content": None}
    assert client.session.put(f"{client.emulator.base_url}{ASSETS}/{key}/revisions/40/release-notes").status_code in (
        401,
        404,
        405,
    )


# Tag rules -------------------------------------------------------------------------------------------


def test_tagging_a_revision_with_release_notes(client: Any, kit: Any, odc_emulator: OdcEmulator) -> None:
    key = tagged_asset(kit)["assetKey"]
    response = patch(client, key, 48, {"tag": "1.6.0", "releaseNotes": "<p>New export</p>"})
    assert response.status_code == 204 and response.content == b""
    latest = client.get(f"{ASSETS}/{key}", route=ASSET).json()
    assert latest["tag"] == "1.6.0" and latest["taggedBy"] == odc_emulator.state.client_subject
    assert latest["taggedAt"] is not None
    assert next(a for a in client.all_assets() if a["assetKey"] == key)["tag"] == "1.6.0"
    assert client.get(f"{ASSETS}/{key}/highest-tag-revision", route=HIGHEST).json()["revision"] == 48
    notes = client.get(f"{ASSETS}/{key}/revisions/48/release-notes", route=NOTES).json()
    assert notes == {"tag": "1.6.0", "content": "<p>New export</p>"}


@pytest.mark.parametrize("tag", ["1.6", "v1.6.0", "1.6.0-beta", "01.6.0", "1.6.0.0", "", " 1.6.0"])
def test_tags_must_be_major_minor_patch(client: Any, kit: Any, tag: str) -> None:
    key = tagged_asset(kit)["assetKey"]
    problem = kit.problem(patch(client, key, 48, {"tag": tag}), 400, "OS-APPS-40020")
    assert "MAJOR.MINOR.PATCH" in problem["detail"]
    assert all_revisions(client, key)[47]["tag"] is None


def test_a_tag_in_use_is_rejected_with_os_apps_40021(client: Any, kit: Any) -> None:
    key = tagged_asset(kit)["assetKey"]
    problem = kit.problem(patch(client, key, 48, {"tag": "1.5.3"}), 400, "OS-APPS-40021")
    assert problem["detail"] == "Tag already in use"
    kit.problem(patch(client, key, 40, {"tag": "1.5.3"}), 400, "OS-APPS-40021")  # even on its own revision


def test_a_tag_must_be_higher_than_the_highest(client: Any, kit: Any) -> None:
    key = tagged_asset(kit)["assetKey"]
    problem = kit.problem(patch(client, key, 48, {"tag": "1.5.2"}), 400)
    assert problem["errorCode"] == "OS-APPS-40021"  # 1.5.2 exists: in use comes first
    problem = kit.problem(patch(client, key, 48, {"tag": "1.4.99"}), 400, "OS-APPS-40022")
    assert "1.5.3" in problem["detail"]
    assert patch(client, key, 41, {"tag": "1.5.4"}).status_code == 204  # any revision may take a higher tag


def test_a_higher_tag_on_the_same_revision_replaces_it(client: Any, kit: Any) -> None:
    key = tagged_asset(kit)["assetKey"]
    assert patch(client, key, 40, {"tag": "2.0.0"}).status_code == 204
    revisions = all_revisions(client, key)
    assert revisions[39]["tag"] == "2.0.0"
    assert all_revisions(client, key, tag="1.5.3") == []
    assert patch(client, key, 44, {"tag": "1.5.3"}).status_code == 400  # lower than 2.0.0 now


def test_null_tag_clears_it_and_its_notes(client: Any, kit: Any) -> None:
    key = tagged_asset(kit)["assetKey"]
    assert patch(client, key, 40, {"tag": None}).status_code == 204
    cleared = client.get(f"{ASSETS}/{key}/revisions/40", route=REVISION).json()
    assert (cleared["tag"], cleared["taggedBy"], cleared["taggedAt"]) == (None, None, None)
    assert client.get(f"{ASSETS}/{key}/revisions/40/release-notes", route=NOTES).json() == {
        "tag": None,
        "content": None,
    }
    highest = client.get(f"{ASSETS}/{key}/highest-tag-revision", route=HIGHEST).json()
    assert highest["tag"] == "1.5.2" and highest["revision"] == 39
    assert patch(client, key, 48, {"tag": "1.5.3"}).status_code == 204  # free again and higher than 1.5.2


def test_release_notes_need_a_tag(client: Any, kit: Any) -> None:
    key = tagged_asset(kit)["assetKey"]
    kit.problem(patch(client, key, 48, {"releaseNotes": "<p>x</p>"}), 400, "OS-APPS-40023")
    kit.problem(patch(client, key, 40, {"tag": None, "releaseNotes": "<p>x</p>"}), 400, "OS-APPS-40023")
    assert patch(client, key, 40, {"releaseNotes": "<p>Rewritten</p>"}).status_code == 204  # 40 is tagged
    notes = client.get(f"{ASSETS}/{key}/revisions/40/release-notes", route=NOTES).json()
    assert notes == {"tag": "1.5.3", "content": "<p>Rewritten</p>"}


def test_commit_message_and_empty_patches(client: Any, kit: Any) -> None:
    key = tagged_asset(kit)["assetKey"]
    before = all_revisions(client, key)
    assert patch(client, key, 12, {"commitMessage": "Hotfix for the login screen"}).status_code == 204
    assert patch(client, key, 13, {"commitMessage": None}).status_code == 204
    assert patch(client, key, 14, {}).status_code == 204
    after = all_revisions(client, key)
    assert after[11]["commitMessage"] == "Hotfix for the login screen" and after[12]["commitMessage"] is None
    assert after[13] == before[13] and after[:11] == before[:11]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"tag": "2.0.0", "label": "x"}, "label"),
        ({"tag": 2}, "tag"),
        ({"releaseNotes": ["a"]}, "releaseNotes"),
        ({"commitMessage": True}, "commitMessage"),
        (["tag", "2.0.0"], "$"),
    ],
)
def test_patch_bodies_are_validated_like_the_schema(client: Any, kit: Any, body: Any, field: str) -> None:
    key = tagged_asset(kit)["assetKey"]
    problem = kit.problem(patch(client, key, 48, body), 400, "OS-APPS-40001")
    assert problem["title"] == "One or more validation errors occurred." and field in problem["errors"]
    assert all_revisions(client, key)[47]["tag"] is None  # nothing applied


def test_patch_rejects_bad_json_and_other_media_types(client: Any, kit: Any) -> None:
    key = tagged_asset(kit)["assetKey"]
    url = f"{client.emulator.base_url}{ASSETS}/{key}/revisions/48"
    headers = {"Authorization": f"Bearer {client.token()}", "Content-Type": "application/json"}
    kit.problem(client.session.patch(url, data="{tag:", headers=headers), 400)
    text = {**headers, "Content-Type": "text/plain"}
    kit.problem(client.session.patch(url, data='{"tag": "2.0.0"}', headers=text), 415)
    unauthorized = client.session.patch(url, json={"tag": "2.0.0"})
    assert unauthorized.status_code == 401
    assert all_revisions(client, key)[47]["tag"] is None


def test_reset_restores_the_seeded_tags(client: Any, kit: Any, odc_emulator: OdcEmulator) -> None:
    key = tagged_asset(kit)["assetKey"]
    seeded = all_revisions(client, key)
    assert patch(client, key, 48, {"tag": "3.0.0", "releaseNotes": "x"}).status_code == 204
    assert patch(client, key, 40, {"tag": None}).status_code == 204
    odc_emulator.reset()
    client.token(fresh=True)  # reset() also forgets issued tokens
    assert all_revisions(client, key) == seeded
    assert client.get(f"{ASSETS}/{key}", route=ASSET).json()["tag"] is None
    assert client.get(f"{ASSETS}/{key}/highest-tag-revision", route=HIGHEST).json()["tag"] == "1.5.3"
