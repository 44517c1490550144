"""The README's offline-testing recipe, run verbatim in a user's own project with the built wheel installed.

The project's files are the code blocks of the README section "Test your own DAGs offline", each one
starting with a ``# <path>`` comment; nothing is added to them (``readme_project.py``; the oldest-Airflow
script runs the same project on Airflow 3.0.6). The run happens in the fresh virtual
environment of ``wheel_env`` (the provider only from the wheel), from the project's folder, with an
``AIRFLOW_HOME`` of its own that the recipe must leave untouched.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from .conftest import WheelEnv
from .readme_project import readme_project, write_project

pytestmark = pytest.mark.packaging

PROJECT_FILES = {"pyproject.toml", "dags/my_dag.py", "tests/test_my_dag.py"}


def test_readme_shows_the_whole_project() -> None:
    assert set(readme_project()) == PROJECT_FILES


def test_readme_recipe_runs_in_a_users_project(wheel_env: WheelEnv, tmp_path: Path) -> None:
    project = tmp_path / "my-project"
    write_project(project)
    users_airflow_home = tmp_path / "users-real-airflow-home"
    users_airflow_home.mkdir()
    env = {**wheel_env.env, "AIRFLOW_HOME": str(users_airflow_home)}

    proc = subprocess.run(
        [str(wheel_env.python), "-m", "pytest", "-p", "no:cacheprovider", "-rA"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    assert re.search(r"^=+ 1 passed\b", proc.stdout, re.M), output[-3000:]
    assert "PASSED tests/test_my_dag.py::test_my_dag" in proc.stdout
    # The plugin gave the session a throwaway home: the user's own Airflow home was never touched.
    assert sorted(users_airflow_home.iterdir()) == []
