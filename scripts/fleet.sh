#!/usr/bin/env bash
# What the Celery fleet tests (tests/fleet, make bench-fleet) need on a fresh machine.
#
#   scripts/fleet.sh install   install, when missing: Debian redis-server (broker and result backend),
#                              faketime (the skewed worker's clock) and iproute2 (network namespaces),
#                              and apache-airflow-providers-celery from PyPI (the `fleet` extra) into the
#                              environment of $PYTHON. PostgreSQL comes from scripts/postgres.sh.
#
# The fleet itself (namespaces, veth pairs, services, workers) is started and torn down by devtools/fleet/fleet.py.
# Environment: PYTHON = the interpreter whose environment gets the Celery provider (default: .venv/bin/python
# of this repository, else python3). Exit codes: 0 ok, 2 usage, 3 something cannot be installed here.
set -euo pipefail

[ $# -eq 1 ] && [ "$1" = install ] || { echo "usage: $0 install" >&2; exit 2; }
repo=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$repo/.venv/bin/python" ]; then PYTHON="$repo/.venv/bin/python"; else PYTHON=python3; fi
fi
log() { echo "fleet.sh: $*" >&2; }

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v faketime >/dev/null 2>&1 || missing+=(faketime)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v unshare >/dev/null 2>&1 || missing+=(util-linux)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        log "missing ${missing[*]} and cannot install them here (needs root and apt-get)"
        exit 3
    fi
    log "installing ${missing[*]} from Debian (apt-get)..."
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; }; then
        log "apt-get install ${missing[*]} failed"
        exit 3
    fi
fi

if ! "$PYTHON" -c "import airflow.providers.celery, redis, celery.backends.database as d; d.retry" 2>/dev/null; then
    # The same requirement as pyproject.toml's `fleet` extra.
    log "installing apache-airflow-providers-celery into $("$PYTHON" -c 'import sys; print(sys.prefix)')..."
    if ! "$PYTHON" -m pip install --quiet "apache-airflow-providers-celery>=3.10" "celery>=5.5,<5.7" "redis>=5" >&2; then
        log "pip install apache-airflow-providers-celery failed"
        exit 3
    fi
fi
log "redis-server, faketime, iproute2 and the Celery provider are installed"
