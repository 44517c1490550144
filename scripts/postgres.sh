#!/usr/bin/env bash
# A throwaway PostgreSQL server for the real-scheduler tests (tests/integration, benchmarks).
#
#   scripts/postgres.sh start <dir>   install PostgreSQL (Debian) and the Python drivers if missing, initdb a
#                                     cluster in <dir>, start it on 127.0.0.1 on a free port, create the
#                                     `airflow` database; prints ONE line on stdout, the SQLAlchemy URL:
#                                     postgresql+psycopg2://airflow:<password>@127.0.0.1:<port>/airflow
#   scripts/postgres.sh stop <dir>    stop the server of <dir> (fast shutdown); does not delete <dir>
#
# Everything else (progress, timings) goes to stderr. The server runs as the `postgres` system user (initdb
# refuses root), listens on 127.0.0.1 only, and accepts TCP logins only with the random password in the
# URL; its unix socket lives inside <dir> (mode 0700). Durability is switched off: the data is throwaway.
#
# Environment: PYTHON = the interpreter whose environment gets the drivers (default: .venv/bin/python of
# this repository, else python3). Exit codes: 0 ok, 2 usage, 3 PostgreSQL cannot be installed here,
# 4 the server did not start.
set -euo pipefail

usage() {
    echo "usage: $0 start|stop <dir>" >&2
    exit 2
}
[ $# -eq 2 ] || usage
action=$1
dir=$2
repo=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$repo/.venv/bin/python" ]; then PYTHON="$repo/.venv/bin/python"; else PYTHON=python3; fi
fi

log() { echo "postgres.sh: $*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

pg_bindir() {
    # Debian keeps the server binaries out of PATH, one folder per major version; take the newest.
    local found
    found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -n "$found" ] && [ -x "$found/initdb" ]; then
        echo "$found"
    fi
}

# Run a PostgreSQL binary as the non-root owner of the cluster.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

install_postgres() {
    local t0
    t0=$(now)
    if [ -n "$(pg_bindir)" ]; then
        log "PostgreSQL already installed ($(pg_bindir)); install step took $(since "$t0") s"
        return 0
    fi
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        log "PostgreSQL is not installed and cannot be installed here (needs root and apt-get)"
        exit 3
    fi
    log "installing PostgreSQL from Debian (apt-get)..."
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >&2; }; then
        log "apt-get install postgresql failed"
        exit 3
    fi
    if [ -z "$(pg_bindir)" ]; then
        log "apt-get installed postgresql but no initdb was found under /usr/lib/postgresql"
        exit 3
    fi
    log "installed PostgreSQL ($(pg_bindir)) in $(since "$t0") s"
}

install_driver() {
    local t0
    t0=$(now)
    if "$PYTHON" -c "import psycopg2, asyncpg" 2>/dev/null; then
        return 0
    fi
    # Airflow's metadata DB needs a sync driver (psycopg2) and, since Airflow 3, an async one (asyncpg, which
    # it derives from the sync URL). Both come with apache-airflow[postgres]; these two are all it needs.
    log "installing psycopg2-binary and asyncpg into $("$PYTHON" -c 'import sys; print(sys.prefix)')..."
    if ! "$PYTHON" -m pip install --quiet "psycopg2-binary>=2.9.9" "asyncpg>=0.30.0" >&2; then
        log "pip install psycopg2-binary asyncpg failed"
        exit 3
    fi
    log "installed the PostgreSQL drivers in $(since "$t0") s"
}

free_port() {
    "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
    local t0 bindir port password pwfile
    t0=$(now)
    install_postgres
    install_driver
    bindir=$(pg_bindir)
    if [ -e "$dir/PG_VERSION" ]; then
        log "$dir already holds a cluster; use a new folder (or stop and delete this one)"
        exit 2
    fi
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    chmod 0700 "$dir"
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres:postgres "$dir"
        if ! runuser -u postgres -- test -w "$dir"; then
            log "the postgres user cannot write $dir (a parent folder is closed to it); use a folder under /tmp"
            exit 4
        fi
    fi
    password=$("$PYTHON" -c 'import secrets; print(secrets.token_hex(16))')
    pwfile=$(mktemp)
    printf '%s\n' "$password" >"$pwfile"
    [ "$(id -u)" -eq 0 ] && chown postgres "$pwfile"
    local t_init initdb_log
    t_init=$(now)
    initdb_log=$(mktemp)
    if ! as_owner "$bindir/initdb" -D "$dir" --username=airflow --pwfile="$pwfile" --auth-local=trust \
        --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 --no-sync >"$initdb_log" 2>&1; then
        rm -f "$pwfile"
        log "initdb failed:"
        cat "$initdb_log" >&2
        rm -f "$initdb_log"
        exit 4
    fi
    rm -f "$pwfile" "$initdb_log"
    log "initdb took $(since "$t_init") s"
    port=$(free_port)
    cat >>"$dir/postgresql.conf" <<EOF

# scripts/postgres.sh: a throwaway cluster for tests, reachable on loopback only.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    local t_start
    t_start=$(now)
    if ! as_owner "$bindir/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 start >/dev/null 2>&1; then
        log "the server did not start; its log:"
        tail -n 40 "$dir/server.log" >&2 || true
        exit 4
    fi
    as_owner "$bindir/psql" -h "$dir" -p "$port" -U airflow -d postgres -q -v ON_ERROR_STOP=1 \
        -c "CREATE DATABASE airflow" >&2
    log "server started in $(since "$t_start") s on 127.0.0.1:$port; total $(since "$t0") s"
    echo "postgresql+psycopg2://airflow:${password}@127.0.0.1:${port}/airflow"
}

stop() {
    local bindir
    bindir=$(pg_bindir)
    if [ -z "$bindir" ] || [ ! -e "$dir/postmaster.pid" ]; then
        log "no running server in $dir"
        return 0
    fi
    as_owner "$bindir/pg_ctl" -D "$dir" -m fast -w -t 30 stop >/dev/null
    log "stopped the server in $dir"
}

case "$action" in
start) start ;;
stop) stop ;;
*) usage ;;
esac
