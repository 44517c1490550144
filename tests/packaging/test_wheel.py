"""The built distributions: what the sdist and the wheel contain, and that an installed wheel registers
with Airflow exactly as ``get_provider_info()`` declares.

Expectations are read from the declaration the wheel itself carries (``get_provider_info()`` run inside
the fresh environment), so the test keeps up when hooks, triggers or links are added.
"""

from __future__ import annotations

import re
from email.message import Message
from email.parser import HeaderParser
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import airflow_provider_odc
from airflow_provider_odc.get_provider_info import get_provider_info

from .conftest import DISTRIBUTION, PACKAGE, REPO, Dists, WheelEnv, pyproject

pytestmark = pytest.mark.packaging

VERSION = airflow_provider_odc.__version__


def _metadata(text: str) -> Message:
    return HeaderParser().parsestr(text)


def _wheel_metadata(dists: Dists) -> Message:
    return _metadata(dists.wheel_text(f"{PACKAGE}-{VERSION}.dist-info/METADATA"))


def _cli_text(value: str) -> str:
    """Descriptions as ``airflow providers`` prints them (it strips RST markup and trailing dots)."""
    return re.sub("[`_<>]", "", value.strip(" \n."))


# -- the distributions ---------------------------------------------------------------------------


def test_sdist_and_wheel_carry_the_source_version(dists: Dists) -> None:
    assert dists.sdist.name == f"{PACKAGE}-{VERSION}.tar.gz"
    assert dists.wheel.name == f"{PACKAGE}-{VERSION}-py3-none-any.whl"
    sdist_info = _metadata(dists.sdist_text(f"{PACKAGE}-{VERSION}/PKG-INFO"))
    wheel_info = _wheel_metadata(dists)
    for info in (sdist_info, wheel_info):
        assert canonicalize_name(info["Name"]) == DISTRIBUTION
        assert info["Version"] == VERSION
    # `python -m build` builds the wheel from the unpacked sdist, so this wheel is what the sdist builds.


def test_wheel_contains_the_package_typing_marker_metadata_and_emulator_but_no_tests(dists: Dists) -> None:
    names = set(dists.wheel_names())
    dist_info = f"{PACKAGE}-{VERSION}.dist-info"
    assert {name.split("/")[0] for name in names} == {PACKAGE, dist_info}, "only the package and its dist-info"
    for required in (
        f"{PACKAGE}/py.typed",
        f"{PACKAGE}/get_provider_info.py",
        f"{PACKAGE}/emulator/__init__.py",
        f"{PACKAGE}/emulator/__main__.py",
        f"{PACKAGE}/emulator/pytest_plugin.py",
        f"{dist_info}/licenses/LICENSE",
        f"{dist_info}/entry_points.txt",
    ):
        assert required in names, required
    # Every file of the package in the source tree is in the wheel (catches forgotten package data).
    source = {
        path.relative_to(REPO).as_posix()
        for path in (REPO / PACKAGE).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo")
    }
    assert sorted(source - names) == []
    tests = [n for n in names if re.search(r"(^|/)(tests?|testing)/|(^|/)(test_[^/]*|[^/]*_test|conftest)\.py$", n)]
    assert tests == []
    assert not any(n.endswith((".pyc", ".pyo")) or "__pycache__" in n for n in names)


def test_sdist_contains_the_sources_license_and_readme(dists: Dists) -> None:
    names = set(dists.sdist_names())
    top = f"{PACKAGE}-{VERSION}"
    for required in ("pyproject.toml", "README.md", "LICENSE", "PKG-INFO", f"{PACKAGE}/get_provider_info.py"):
        assert f"{top}/{required}" in names, required
    assert not any(f"/{part}/" in name for name in names for part in (".venv", ".git", ".airflow-demo"))


def test_wheel_metadata(dists: Dists) -> None:
    info = _wheel_metadata(dists)
    project = pyproject()["project"]
    assert info["License-Expression"] == project["license"] == "Apache-2.0"
    assert info.get_all("License-File") == ["LICENSE"]
    classifiers = info.get_all("Classifier") or []
    assert "Framework :: Apache Airflow" in classifiers
    assert "Framework :: Apache Airflow :: Provider" in classifiers
    urls = dict(url.split(", ", 1) for url in info.get_all("Project-URL") or [])
    assert {"Homepage", "Documentation", "Changelog", "Issue tracker"} <= set(urls)
    assert all(url.startswith("https://") for url in urls.values())
    # Requires-Dist is exactly what pyproject declares (extras add their own marker).
    requires = [Requirement(r) for r in info.get_all("Requires-Dist") or []]
    plain = {str(r) for r in requires if r.marker is None}
    assert plain == {str(Requirement(d)) for d in project["dependencies"]}
    airflow = next(r for r in requires if canonicalize_name(r.name) == "apache-airflow" and r.marker is None)
    assert not airflow.specifier.contains("2.11.0"), "Airflow 3 only"


def test_entry_points_register_the_provider_and_the_emulator_plugin(dists: Dists) -> None:
    entry_points = dists.wheel_text(f"{PACKAGE}-{VERSION}.dist-info/entry_points.txt")
    assert "[apache_airflow_provider]\nprovider_info = airflow_provider_odc.get_provider_info:get_provider_info" in (
        entry_points
    )
    assert "[pytest11]\nodc_emulator = airflow_provider_odc.emulator.pytest_plugin" in entry_points


# -- the installed wheel --------------------------------------------------------------------------


def test_fresh_environment_imports_the_provider_from_the_wheel_only(
    wheel_env: WheelEnv, wheel_provider: dict[str, Any]
) -> None:
    from importlib.metadata import version

    assert Path(wheel_provider["file"]).is_relative_to(wheel_env.site_packages)
    assert len(wheel_provider["dists"]) == 1 and Path(wheel_provider["dists"][0]).is_relative_to(
        wheel_env.site_packages
    )
    assert wheel_provider["version"] == wheel_provider["metadata_version"] == VERSION
    assert wheel_provider["airflow"] == version("apache-airflow")
    # The wheel declares what the source tree declares.
    assert wheel_provider["info"] == get_provider_info()


def test_providers_list_shows_the_declared_provider(
    providers_cli: dict[str, list[dict[str, Any]]], wheel_provider: dict[str, Any]
) -> None:
    info = wheel_provider["info"]
    rows = [row for row in providers_cli["list"] if row["package_name"] == info["package-name"]]
    assert rows == [
        {
            "package_name": DISTRIBUTION,
            "description": _cli_text(info["description"]),
            "version": info["versions"][0],
        }
    ]
    assert info["versions"][0] == VERSION


def test_providers_hooks_shows_the_declared_connection_types(
    providers_cli: dict[str, list[dict[str, Any]]], wheel_provider: dict[str, Any]
) -> None:
    info = wheel_provider["info"]
    rows = [row for row in providers_cli["hooks"] if row["package_name"] == info["package-name"]]
    declared = info.get("connection-types", [])
    assert declared, "the provider declares at least the odc connection type"
    assert sorted(row["connection_type"] for row in rows) == sorted(ct["connection-type"] for ct in declared)
    by_type = {row["connection_type"]: row for row in rows}
    for ct in declared:
        row = by_type[ct["connection-type"]]
        assert row["class"] == ct["hook-class-name"]
        assert row["hook_name"] == ct.get("hook-name", row["hook_name"])
        assert row["conn_id_attribute_name"], "the hook class was imported and has conn_name_attr"


def test_providers_links_shows_the_declared_extra_links(
    providers_cli: dict[str, list[dict[str, Any]]], wheel_provider: dict[str, Any]
) -> None:
    shown = {row["extra_link_class_name"] for row in providers_cli["links"]}
    ours = {name for name in shown if name.startswith(f"{PACKAGE}.")}
    assert ours == set(wheel_provider["info"].get("extra-links", []))


def test_providers_triggers_shows_the_declared_triggers(
    providers_cli: dict[str, list[dict[str, Any]]], wheel_provider: dict[str, Any]
) -> None:
    info = wheel_provider["info"]
    shown = {
        (row["class"], row["integration_name"])
        for row in providers_cli["triggers"]
        if row["package_name"] == info["package-name"]
    }
    declared = {
        (module, trigger["integration-name"])
        for trigger in info.get("triggers", [])
        for module in trigger["python-modules"]
    }
    assert shown == declared
