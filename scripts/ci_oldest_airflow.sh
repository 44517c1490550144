#!/usr/bin/env bash
# Prove the provider on the OLDEST Airflow it supports (pyproject.toml: "apache-airflow>=$AIRFLOW_VERSION";
# tests/packaging/test_version.py checks that the two agree).
#
# Creates a throwaway venv with that Airflow pinned, installs this package into it (a real, non-editable
# install, so the build and the entry points are exercised too), and runs the unit, hook and dags_run suites
# against it, then the README's offline-testing recipe in a user project of its own. It prints the number
# of skipped tests; with CI set (CI=true) a skip fails the run (tests/conftest.py turns each into a failure,
# and a non-zero count fails here too). Takes ~2 min (about 50 s of it is pip downloading Airflow: pip keeps
# no cache here).
#
#   scripts/ci_oldest_airflow.sh            # the pinned oldest version
#   AIRFLOW_VERSION=3.1.8 scripts/ci_oldest_airflow.sh   # any other release, same suites
#   KEEP_VENV=1 scripts/ci_oldest_airflow.sh              # keep the venv for a post-mortem (path is printed)
set -euo pipefail
cd "$(dirname "$0")/.."

AIRFLOW_VERSION="${AIRFLOW_VERSION:-3.0.6}"
PYTHON="${PYTHON:-python3}"
SUITES=(tests/unit tests/hook tests/dags_run)

work="$(mktemp -d "${TMPDIR:-/tmp}/odc-oldest-airflow.XXXXXX")"
if [[ -z "${KEEP_VENV:-}" ]]; then
    trap 'rm -rf "$work"' EXIT
fi
venv="$work/venv"
started=$SECONDS

# Airflow's own releases are meant to be installed with its constraints files, which are not reachable here.
# Without them pip takes today's newest FastAPI, and Airflow 3.0.x (which caps nothing) then breaks its own
# in-process Execution API: dag.test() gets HTTP 422 from PATCH /task-instances/{id}/run. Airflow 3.1 caps
# fastapi<0.118 itself; the same cap (and the cadwyn that goes with it) is applied here for 3.0.x.
cat >"$work/constraints.txt" <<EOF
apache-airflow==$AIRFLOW_VERSION
EOF
if [[ "$AIRFLOW_VERSION" == 3.0.* ]]; then
    printf 'fastapi<0.118\ncadwyn<6\n' >>"$work/constraints.txt"
fi

# pip's configured local extra indexes are absent on some machines and only make it warn; hide that noise.
quiet_pip() { "$venv/bin/python" -m pip "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }

echo "== oldest-Airflow check: apache-airflow==$AIRFLOW_VERSION in $venv"
"$PYTHON" -m venv "$venv"
quiet_pip install --quiet --upgrade pip
quiet_pip install --quiet -c "$work/constraints.txt" "apache-airflow==$AIRFLOW_VERSION"
installed_airflow=$SECONDS
# The package itself (non-editable), plus pytest and hypothesis (the property tests); the constraints keep Airflow exactly where it is.
quiet_pip install --quiet -c "$work/constraints.txt" . "pytest>=8" "hypothesis>=6.100"
# (Run from $work: a script on stdin gets the current directory on sys.path, and that must not be the tree.)
(cd "$work" && "$venv/bin/python" - "$AIRFLOW_VERSION") <<'EOF'
import sys
from importlib.metadata import version

import airflow_provider_odc

assert version("apache-airflow") == sys.argv[1], version("apache-airflow")
assert "site-packages" in airflow_provider_odc.__file__, airflow_provider_odc.__file__
print(f"apache-airflow {version('apache-airflow')}, task-sdk {version('apache-airflow-task-sdk')}, "
      f"airflow-provider-odc {version('airflow-provider-odc')} from {airflow_provider_odc.__file__}")
EOF
installed=$SECONDS

# $venv/bin/pytest (not `python -m pytest`) keeps the source tree off sys.path: the tests import the
# installed package. No cache provider, so this run leaves the main run's .pytest_cache alone.
status=0
"$venv/bin/pytest" -q -rs -p no:cacheprovider --junitxml="$work/junit.xml" "${SUITES[@]}" || status=$?
skipped=$("$PYTHON" scripts/skip_count.py "$work/junit.xml") || skipped="unknown (no junit report)"
tested=$SECONDS

# The README's offline-testing recipe, verbatim, in a project of its own (dags/, tests/, pyproject.toml),
# with an AIRFLOW_HOME that the recipe must leave untouched.
"$PYTHON" tests/packaging/readme_project.py "$work/project"
mkdir "$work/users-airflow-home"
recipe=0
(cd "$work/project" && AIRFLOW_HOME="$work/users-airflow-home" PYTHONSAFEPATH=1 \
    "$venv/bin/python" -m pytest -q -rs -p no:cacheprovider) || recipe=$?
if [[ -n "$(ls -A "$work/users-airflow-home")" ]]; then
    echo "the README recipe wrote into the user's AIRFLOW_HOME: $(ls -A "$work/users-airflow-home")" >&2
    recipe=1
fi
[[ "$recipe" == 0 ]] || status=1
ci="${CI:-}"
if [[ -n "$ci" && "${ci,,}" != "false" && "${ci,,}" != "no" && "$ci" != "0" && "$skipped" != "0" ]]; then
    echo "CI is set and $skipped tests were skipped (see the 'SKIPPED' lines above): every one is required in CI" >&2
    status=1
fi

echo "== oldest-Airflow check (apache-airflow==$AIRFLOW_VERSION): exit $status; skipped tests: $skipped;" \
    "README recipe: exit $recipe;" \
    "Airflow install $((installed_airflow - started)) s, package $((installed - installed_airflow)) s," \
    "tests $((tested - installed)) s, recipe $((SECONDS - tested)) s, total $((SECONDS - started)) s"
if [[ -n "${KEEP_VENV:-}" ]]; then
    echo "   venv kept: $venv"
fi
exit "$status"
