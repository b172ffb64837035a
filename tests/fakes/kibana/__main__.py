"""CLI: ``python -m tests.fakes.kibana --host 127.0.0.1 --port 0 [options]``.

Prints ``listening on http(s)://HOST:PORT`` once it accepts connections; SIGTERM/SIGINT stop it cleanly
(exit code 0). Logs go to stderr.
"""

from __future__ import annotations

import argparse
import logging
import ssl
import sys

from tests.fakes.kibana.server import Fake, FakeConfig, KibanaHTTPServer
from tests.fakes.serving import serve_until_signalled


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.fakes.kibana", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5601)
    p.add_argument("--user", help="with --password: the one user basic authentication accepts (security on)")
    p.add_argument("--password")
    p.add_argument("--read-only-user", metavar="NAME:PASSWORD",
                   help="a user that authenticates but may not write (403 on import and settings)")
    p.add_argument("--api-key", help="an encoded API key accepted as 'Authorization: ApiKey KEY' (security on)")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--not-ready-for", type=float, default=0.0, metavar="SECONDS",
                   help="answer 503 (Kibana starting) for this long after start")
    p.add_argument("--access-log", action="store_true", help="log every request on stderr")
    args = p.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        p.error("--tls-cert and --tls-key go together")
    if bool(args.user) != bool(args.password):
        p.error("--user and --password go together")
    if args.read_only_user and ":" not in args.read_only_user:
        p.error("--read-only-user takes NAME:PASSWORD")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG if args.access_log else logging.INFO,
                        format="kibana-fake %(levelname)s %(message)s")
    config = FakeConfig(not_ready_for=args.not_ready_for)
    if args.user:
        config.users[args.user] = args.password
    if args.read_only_user:
        name, _, password = args.read_only_user.partition(":")
        config.users[name] = password
        config.read_only_users.add(name)
    if args.api_key:
        config.api_keys.add(args.api_key)
    server = KibanaHTTPServer((args.host, args.port), Fake(config))
    if args.tls_cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
        # Handshake lazily in the connection's thread, so a client that fails it cannot stall accept().
        server.socket = tls.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    host, port = str(server.server_address[0]), int(server.server_address[1])
    serve_until_signalled(
        server, f"{'https' if args.tls_cert else 'http'}://{host}:{port}", name="kibana-fake-http",
        on_ready=lambda: logging.info("security=%s tls=%s not-ready-for=%gs", config.security,
                                      bool(args.tls_cert), args.not_ready_for))
    return 0


if __name__ == "__main__":
    sys.exit(main())
