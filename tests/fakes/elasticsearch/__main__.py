"""CLI: ``python -m tests.fakes.elasticsearch --host H --port P [--tls-cert F --tls-key F] [auth flags]``.

``--profile FILE`` writes cProfile statistics of request handling (CPU time) to FILE when the server stops.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from .auth import AuthConfig
from .profiling import RequestProfiler
from .server import make_server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.elasticsearch",
                                     description="Elasticsearch 8.18-compatible test server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9200)
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--api-key")
    parser.add_argument("--nodes", type=int, default=2,
                        help="data nodes to simulate: decides which replicas are assigned (green vs yellow)")
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument("--profile", metavar="FILE",
                        help="profile request handling (CPU time per thread); pstats written to FILE on exit")
    args = parser.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    if (args.user is None) != (args.password is None):
        parser.error("--user and --password go together")
    logging.basicConfig(stream=sys.stderr, level=args.log_level.upper(),
                        format="%(asctime)s fake-es %(levelname)s %(message)s")
    auth = AuthConfig(args.user, args.password, args.api_key)
    tls = (args.tls_cert, args.tls_key) if args.tls_cert else None
    server = make_server(args.host, args.port, auth, tls, max(1, args.nodes))
    if args.profile:
        server.profiler = RequestProfiler(args.profile)
    raw_host, port = server.server_address[:2]
    host = raw_host.decode() if isinstance(raw_host, bytes) else raw_host
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=server.shutdown_all, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    scheme = "https" if tls else "http"
    print(f"listening on {scheme}://{host}:{port}", flush=True)
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    if server.profiler is not None:
        server.profiler.dump()
    return 0


if __name__ == "__main__":
    sys.exit(main())
