# Two commands that work on a fresh clone with nothing but Python 3.10+:
#   make demo   runs the example DAG against the local ODC emulator (Airflow on SQLite, temporary home)
#   make test   runs the whole test suite
PYTHON ?= python3
AIRFLOW_VERSION ?= 3.3.2
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(AIRFLOW_VERSION)
DOCS_STAMP := $(VENV)/.installed-docs-$(AIRFLOW_VERSION)

.PHONY: demo test test-oldest bench bench-fleet bench-readme coverage lint install browser-deps docs clean

$(STAMP): pyproject.toml airflow_provider_odc/__init__.py  # a version bump refreshes the installed metadata
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "apache-airflow==$(AIRFLOW_VERSION)" -e ".[test]"
	touch $@

install: $(STAMP)

# Debian's Chromium and Playwright for tests/browser (root or sudo); without them those tests are skipped.
browser-deps: $(STAMP)
	bash tests/browser/install-deps.sh $(VENV)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

# PYTEST_ARGS: extra pytest arguments (.ci/run passes --junitxml to count the skips).
test: lint
	$(BIN)/python -m mypy --strict airflow_provider_odc
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The unit, hook and dag.test() suites on the oldest supported Airflow, in a throwaway venv.
test-oldest:
	PYTHON=$(PYTHON) bash scripts/ci_oldest_airflow.sh

# Writes benchmarks/results.json (even when a goal is missed, which fails the target) and the README's tables.
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py; status=$$?; $(BIN)/python scripts/render_bench.py && exit $$status

# The token cache on a Celery fleet (two workers in network namespaces, one 90 s ahead): needs root.
# Installs what it needs (scripts/fleet.sh, scripts/postgres.sh); writes benchmarks/fleet_results.json (even
# when a goal is missed, which fails the target) and the README's fleet table; then benchmarks/pacing.py (a 60-app
# mass redeploy paced across workers, and its 1,000-deploy simulation) writes benchmarks/pacing_results.json, and
# benchmarks/poller.py (1,000 waits in one triggerer process, 100 deferred deploys) benchmarks/poller_results.json.
bench-fleet: $(STAMP)
	$(BIN)/python benchmarks/fleet.py; status=$$?; $(BIN)/python benchmarks/pacing.py || status=1; \
	$(BIN)/python benchmarks/poller.py || status=1; $(BIN)/python scripts/render_bench.py && exit $$status

# The README's benchmark tables from the committed benchmarks/results.json and benchmarks/fleet_results.json
# (make test checks they agree).
bench-readme: $(STAMP)
	$(BIN)/python scripts/render_bench.py

# Sphinx (the docs extra) on top of the same venv, only for `make docs`.
$(DOCS_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet "apache-airflow==$(AIRFLOW_VERSION)" -e ".[docs]"
	touch $@

# The API reference from the public modules' docstrings. Built from scratch each time (autodoc does not
# notice edited docstrings); any warning, an unresolved reference included, fails the build.
docs: $(DOCS_STAMP)
	rm -rf docs/_build
	$(BIN)/python -m sphinx -W --keep-going -q -b html -d docs/_build/doctrees docs docs/_build/html
	@echo "API reference: docs/_build/html/index.html"

# Line coverage of the provider outside the emulator, from the in-process suites (unit, hook, fault matrix,
# lifecycle, dag.test(), governance, assets, pacing, poller); code that runs only in subprocesses (real
# scheduler, triggerer, second processes) is not counted, so the figure is a floor. The streaming-memory test is
# left out: coverage's tracer allocates per line, which tracemalloc counts against the download's bound.
coverage: $(STAMP)
	$(BIN)/python -m coverage run --source=airflow_provider_odc --omit='*/emulator/*' -m pytest -q -p no:cacheprovider \
		-m "not scheduler and not fleet" tests/unit tests/hook tests/faults tests/lifecycle tests/dags_run \
		tests/access tests/assets tests/code_scan tests/governance tests/mobile tests/pacing tests/poller tests/promotion \
		--deselect tests/code_scan/test_generated_code.py::test_a_large_archive_streams_in_chunks_without_growing_memory
	$(BIN)/python -m coverage report --skip-empty

lint: $(STAMP)
	$(BIN)/python -m ruff check .
	$(BIN)/python -m ruff format --check .

clean:
	rm -rf $(VENV) .airflow-demo build dist *.egg-info docs/_build
