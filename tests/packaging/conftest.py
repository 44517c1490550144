"""Build the sdist and the wheel once per session, and install the wheel into a fresh virtual environment.

The fresh environment gets Airflow by *reusing* the running environment's installed packages instead of
downloading Airflow again (a fresh ``pip install apache-airflow==<same version>`` measured ~60 s here,
and pip keeps no cache on this machine; the reuse takes ~2 s):

* ``python -m venv --without-pip`` makes an empty environment;
* a symlink farm holds every entry of the running environment's site-packages **except** anything of
  this provider (its package, its dist-info, the editable-install finder and ``.pth``);
* one ``.pth`` file in the fresh environment's site-packages puts that farm on ``sys.path``;
* ``pip install --no-index <wheel>`` installs the provider. ``--no-index`` means pip must find every
  dependency the wheel declares already satisfied by the reused packages, so the wheel's metadata is
  checked against this exact Airflow; the provider itself comes only from the wheel.

Subprocesses run from an empty directory with ``PYTHONSAFEPATH=1``, so the source tree can never shadow
the installed wheel, and with a throwaway ``AIRFLOW_HOME``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ..required import missing

REPO = Path(__file__).resolve().parents[2]
PACKAGE = "airflow_provider_odc"
DISTRIBUTION = "airflow-provider-odc"
CLI_COMMANDS = ("list", "hooks", "links", "triggers")


def pyproject() -> dict[str, Any]:
    try:
        import tomllib
    except ImportError:  # Python 3.10: tomli, from the test extra
        try:
            import tomli as tomllib
        except ImportError:
            missing("reading pyproject.toml on Python 3.10 needs tomli: pip install -e '.[test]'")
    with (REPO / "pyproject.toml").open("rb") as f:
        result: dict[str, Any] = tomllib.load(f)
    return result


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "packaging: builds the sdist and wheel with `python -m build`, installs the wheel into a fresh "
        "virtual environment and checks it with Airflow's `providers` CLI (~30 s)",
    )


@dataclass(frozen=True)
class Dists:
    sdist: Path
    wheel: Path

    def wheel_names(self) -> list[str]:
        with zipfile.ZipFile(self.wheel) as wheel:
            return wheel.namelist()

    def wheel_text(self, name: str) -> str:
        with zipfile.ZipFile(self.wheel) as wheel:
            return wheel.read(name).decode()

    def sdist_names(self) -> list[str]:
        with tarfile.open(self.sdist) as sdist:
            return sdist.getnames()

    def sdist_text(self, name: str) -> str:
        with tarfile.open(self.sdist) as sdist:
            member = sdist.extractfile(name)
            assert member is not None, name
            return member.read().decode()


@dataclass
class WheelEnv:
    """A fresh virtual environment with the wheel installed; Airflow reused from the running one."""

    root: Path
    python: Path
    site_packages: Path
    airflow_home: Path
    env: dict[str, str] = field(repr=False)

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.python), *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def python_json(self, code: str) -> Any:
        proc = self.run("-c", code)
        assert proc.returncode == 0, proc.stderr[-4000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    """``python -m build``: the sdist from the source tree, then the wheel built *from that sdist*."""
    try:
        import build  # noqa: F401
    except ImportError:
        pytest.fail("The packaging tests need `build` (in the `test` extra): pip install -e '.[test]'")
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"python -m build failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}"
    sdists, wheels = sorted(out.glob("*.tar.gz")), sorted(out.glob("*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, sorted(p.name for p in out.iterdir())
    return Dists(sdist=sdists[0], wheel=wheels[0])


def _is_provider_entry(name: str) -> bool:
    """The provider's own files in a site-packages: package, dist-info, editable finder and .pth."""
    return PACKAGE in name.replace("-", "_")


def _clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without Python or Airflow settings (the test session sets several)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTHON", "AIRFLOW", "VIRTUAL_ENV", "PIP_REQUIRE_VIRTUALENV"))
    }
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def wheel_env(dists: Dists, tmp_path_factory: pytest.TempPathFactory) -> WheelEnv:
    root = tmp_path_factory.mktemp("wheel-env")
    venv_dir = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv_dir)], check=True, timeout=120)
    python = venv_dir / "bin" / "python"
    site_packages = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )

    reused = root / "reused-site-packages"
    reused.mkdir()
    for key in ("purelib", "platlib"):
        current = Path(sysconfig.get_paths()[key])
        for entry in current.iterdir():
            if not _is_provider_entry(entry.name) and not (reused / entry.name).exists():
                (reused / entry.name).symlink_to(entry)
    (site_packages / "_reused_site_packages.pth").write_text(f"{reused}\n")

    airflow_home = root / "airflow-home"
    airflow_home.mkdir()
    env = _clean_env(
        {
            "PYTHONSAFEPATH": "1",  # no cwd / script dir on sys.path: the source tree cannot shadow the wheel
            "PYTHONNOUSERSITE": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "PATH": f"{venv_dir / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-index", str(dists.wheel)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, (
        f"pip install of the wheel failed:\n{install.stdout[-6000:]}\n{install.stderr[-6000:]}"
    )
    return WheelEnv(root=root, python=python, site_packages=site_packages, airflow_home=airflow_home, env=env)


@pytest.fixture(scope="session")
def wheel_provider(wheel_env: WheelEnv) -> dict[str, Any]:
    """What the *installed wheel* declares and where it lives, read inside the fresh environment."""
    return wheel_env.python_json(
        "import json, importlib.metadata as md, airflow, airflow_provider_odc as p\n"
        "from airflow_provider_odc.get_provider_info import get_provider_info\n"
        "dists = [str(d._path) for d in md.distributions()"
        f" if (d.metadata['Name'] or '').lower().replace('_', '-') == {DISTRIBUTION!r}]\n"
        "print(json.dumps({'info': get_provider_info(), 'file': p.__file__, 'version': p.__version__,"
        " 'metadata_version': md.version(" + repr(DISTRIBUTION) + "), 'dists': dists,"
        " 'airflow': airflow.__version__}))"
    )


@pytest.fixture(scope="session")
def providers_cli(wheel_env: WheelEnv) -> dict[str, list[dict[str, Any]]]:
    """``airflow providers <list|hooks|links|triggers> -o json`` in the fresh environment, run in parallel."""
    procs = {
        command: subprocess.Popen(
            [str(wheel_env.python), "-m", "airflow", "providers", command, "-o", "json"],
            cwd=wheel_env.root,
            env=wheel_env.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command in CLI_COMMANDS
    }
    results: dict[str, list[dict[str, Any]]] = {}
    for command, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"airflow providers {command} failed:\n{err[-4000:]}"
        results[command] = _json_document(out)
    return results


def _json_document(out: str) -> Any:
    """The JSON the CLI printed: the whole output, or its last line if something was logged before it."""
    try:
        return json.loads(out)
    except ValueError:
        return json.loads(out.strip().splitlines()[-1])
