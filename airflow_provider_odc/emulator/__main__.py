"""Run the ODC emulator as a process: ``python -m airflow_provider_odc.emulator --port 0``.

Prints exactly one JSON line on stdout (``base_url``, ``client_id``, ``client_secret``, ``control_url``,
``pid``) once the socket accepts connections, so a parent process (demo script, CI, another test runner)
can read it and connect; then serves until SIGTERM or SIGINT and exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from types import FrameType

from airflow_provider_odc.emulator.server import OdcEmulator
from airflow_provider_odc.emulator.state import DEFAULT_TOKEN_LIFETIME


def _retry_after(value: str) -> str | int:
    if value == "auto":
        return value
    if value.isdigit():
        return int(value)
    raise argparse.ArgumentTypeError('use "auto" or a whole number of seconds')


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m airflow_provider_odc.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one (default 0)")
    parser.add_argument("--client-id", default=None, help="client id (default odc-emulator-client)")
    parser.add_argument("--client-secret", default=None, help="client secret (default: random per run)")
    parser.add_argument(
        "--token-lifetime", type=int, default=DEFAULT_TOKEN_LIFETIME, help="access token lifetime in seconds"
    )
    parser.add_argument("--assets", type=int, default=25, help="number of seeded assets (default 25)")
    parser.add_argument(
        "--no-rate-limits",
        dest="rate_limits",
        action="store_false",
        help="lift ODC's documented rate limits (default: enforced), e.g. for benchmarks of the client's own cost",
    )
    parser.add_argument(
        "--rate-limit-retry-after",
        type=_retry_after,
        default=None,
        help='send Retry-After with every 429: "auto" or whole seconds (default: none, as ODC documents none)',
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    emulator = OdcEmulator(
        host=args.host,
        port=args.port,
        client_id=args.client_id,
        client_secret=args.client_secret,
        token_lifetime=args.token_lifetime,
        asset_count=args.assets,
        rate_limits=args.rate_limits,
        rate_limit_retry_after=args.rate_limit_retry_after,
    )
    with emulator:
        line = {
            "base_url": emulator.base_url,
            "client_id": emulator.client_id,
            "client_secret": emulator.client_secret,
            "control_url": emulator.control_url,
            "pid": os.getpid(),
        }
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
        while not stop.wait(0.5):
            if not emulator.running:
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
