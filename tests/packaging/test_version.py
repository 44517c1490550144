"""The version lives in one place, ``airflow_provider_odc.__version__``; everything else reads it.

Fast (no build): runs with the rest of the suite. A failure here after a version bump means the
installed metadata is stale: reinstall (``pip install -e '.[test]'``).
"""

from __future__ import annotations

import re
from importlib.metadata import version

import airflow_provider_odc
from airflow_provider_odc.get_provider_info import get_provider_info

from .conftest import DISTRIBUTION, REPO, pyproject


def test_installed_metadata_version_is_the_package_version() -> None:
    assert version(DISTRIBUTION) == airflow_provider_odc.__version__


def test_provider_info_reports_the_package_version() -> None:
    assert get_provider_info()["versions"][0] == airflow_provider_odc.__version__


def test_pyproject_reads_the_version_dynamically() -> None:
    config = pyproject()
    assert "version" not in config["project"] and "version" in config["project"]["dynamic"]
    assert config["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "airflow_provider_odc.__version__"}


def test_changelog_has_a_section_for_the_package_version() -> None:
    changelog = (REPO / "CHANGELOG.md").read_text()
    assert re.search(rf"^## \[{re.escape(airflow_provider_odc.__version__)}\]", changelog, re.M)


def test_oldest_airflow_ci_pin_is_the_declared_minimum() -> None:
    """``apache-airflow>=X`` in pyproject is what scripts/ci_oldest_airflow.sh proves: X is its pin."""
    from packaging.requirements import Requirement

    script = (REPO / "scripts" / "ci_oldest_airflow.sh").read_text()
    pin = re.search(r'^AIRFLOW_VERSION="\$\{AIRFLOW_VERSION:-([0-9.]+)\}"$', script, re.M)
    assert pin, "scripts/ci_oldest_airflow.sh sets no default AIRFLOW_VERSION"
    airflow = next(Requirement(d) for d in pyproject()["project"]["dependencies"] if d.startswith("apache-airflow"))
    assert [str(s) for s in airflow.specifier] == [f">={pin.group(1)}"]
