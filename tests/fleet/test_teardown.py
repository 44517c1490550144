"""A fleet that fails to start leaves nothing behind: no namespace, no link, no process."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from devtools.fleet.fleet import Fleet
from devtools.stack import AirflowStackError

from .conftest import DAGS_FOLDER, require_fleet


def test_a_fleet_that_cannot_start_tears_its_network_down(tmp_path: Path) -> None:
    require_fleet()
    # Nothing listens on port 1 of loopback: `airflow db migrate` fails after the network and Redis are up.
    fleet = Fleet(tmp_path, DAGS_FOLDER, "postgresql+psycopg2://airflow:x@127.0.0.1:1/airflow")
    with pytest.raises(AirflowStackError, match="db migrate failed"):
        fleet.start(timeout=120)
    assert fleet.network.hosts == []
    tag = fleet.network.tag
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    assert tag not in namespaces
    assert f"{tag}0h" not in links and f"{tag}1h" not in links
    # No process of this fleet (Redis runs with a config file under tmp_path) is left.
    left = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if str(tmp_path).encode() in cmdline:
                left.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
    assert left == []
