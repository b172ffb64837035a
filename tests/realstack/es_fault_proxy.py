"""An HTTP fault proxy in front of any Elasticsearch: ``python -m tests.realstack.es_fault_proxy --upstream URL``.

It forwards every request to ``--upstream`` and answers with what came back, except where a fault was asked
for. The control API is the Elasticsearch test server's (``tests/fakes/elasticsearch/faults.py``), so a
fault test runs unchanged on the real node behind this proxy:

- ``POST /_fake/faults`` ``{"path": regex, "method": M?, "count": N, "kind": "429"|"503"|"delay"|"drop",
  "delay": s}``: the next N matching requests fail that way. ``429`` answers ``es_rejected_execution_exception``
  and ``503`` ``cluster_block_exception`` without forwarding; ``delay`` forwards after ``delay`` seconds;
  ``drop`` reads the request and closes the connection without forwarding or answering.
- ``GET /_fake/faults`` (active faults with ``remaining``), ``DELETE /_fake/faults``.
- ``POST /_fake/reset``: clears the faults and the request log, and deletes every index and index template
  on the upstream (by name: Elasticsearch 8 refuses wildcard deletes).

It also keeps a request log (for the differential check, ``tests/realstack/test_differential.py``):
``GET /_fake/requests`` → ``{"requests": [{"method", "uri", "body", "content_type", "accept", "status",
"response"}...]}`` (bodies as text; faulted requests are not logged) and ``DELETE /_fake/requests``.
Requests are forwarded buffered (no streaming); loopback only.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import signal
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any

from tests.fakes.elasticsearch.errors import ESError
from tests.fakes.elasticsearch.faults import FaultRegistry, rejected, unavailable

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
                        "transfer-encoding", "upgrade", "host", "content-length"})
UPSTREAM_TIMEOUT = 120.0


class ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], upstream: str) -> None:
        split = urllib.parse.urlsplit(upstream)
        if split.scheme != "http" or not split.hostname:
            raise ValueError(f"upstream must be http://host:port, not {upstream!r}")
        self.upstream = (split.hostname, split.port or 80)
        self.faults = FaultRegistry()
        self.log_lock = threading.Lock()
        self.request_log: list[dict[str, Any]] = []
        self.local = threading.local()
        super().__init__(address, ProxyHandler)

    def upstream_connection(self, fresh: bool = False) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self.local, "conn", None)
        if conn is None or fresh:
            if conn is not None:
                conn.close()
            conn = http.client.HTTPConnection(*self.upstream, timeout=UPSTREAM_TIMEOUT)
            self.local.conn = conn
        return conn

    def forward(self, method: str, uri: str, body: bytes,
                headers: dict[str, str]) -> tuple[int, list[tuple[str, str]], bytes]:
        """Send one request upstream (again on a fresh connection if a kept-alive one was closed)."""
        for attempt in (0, 1):
            conn = self.upstream_connection(fresh=attempt > 0)
            try:
                conn.request(method, uri, body=body if body or method in ("POST", "PUT") else None, headers=headers)
                response = conn.getresponse()
                data = response.read()
                return response.status, response.getheaders(), data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def reset_upstream(self) -> None:
        def call(method: str, uri: str, tolerate: tuple[int, ...] = (404,)) -> Any:
            status, _, data = self.forward(method, uri, b"", {"Accept": "application/json"})
            if status >= 400 and status not in tolerate:
                raise RuntimeError(f"{method} {uri} -> {status}: {data[:300]!r}")
            return json.loads(data) if data and status < 400 else None

        for row in call("GET", "/_cat/indices?format=json&h=index&expand_wildcards=all") or []:
            name = row["index"]  # a system index of the node's own may refuse: left alone
            call("DELETE", "/" + urllib.parse.quote(name, safe=""), (400, 403, 404) if name.startswith(".") else (404,))
        for template in (call("GET", "/_index_template") or {}).get("index_templates", []):
            call("DELETE", "/_index_template/" + urllib.parse.quote(template["name"], safe=""))


class ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ProxyServer

    def log_message(self, format: str, *args: Any) -> None:
        del format, args

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle(self) -> None:
        with contextlib.suppress(ConnectionError, TimeoutError):
            super().handle()

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = do_GET

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        body = self._read_body()
        path = urllib.parse.urlsplit(self.path).path or "/"
        if path.startswith("/_fake/"):
            self._control(path, body)
            return
        fault = self.server.faults.take(self.command, path)
        if fault is not None:
            if fault.kind == "drop":
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault.kind in ("429", "503"):
                err = rejected() if fault.kind == "429" else unavailable()
                self._send_error(err)
                return
            time.sleep(fault.delay)  # sync-ok: the delay is the injected fault
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        try:
            status, response_headers, data = self.server.forward(self.command, self.path, body, headers)
        except OSError as exc:  # upstream gone: answer as a proxy would
            self._send(502, [("Content-Type", "application/json")],
                       json.dumps({"error": f"upstream: {exc}", "status": 502}).encode())
            return
        with self.server.log_lock:
            self.server.request_log.append({
                "method": self.command, "uri": self.path, "body": body.decode("utf-8", "replace"),
                "content_type": self.headers.get("Content-Type", ""), "accept": self.headers.get("Accept", ""),
                "status": status,
                "response": data.decode("utf-8", "replace")})
        self._send(status, [(k, v) for k, v in response_headers if k.lower() not in HOP_BY_HOP], data)

    def _control(self, path: str, body: bytes) -> None:
        server = self.server
        try:
            if path == "/_fake/faults" and self.command == "POST":
                fault = server.faults.add(json.loads(body or b"{}"))
                self._json(200, {"acknowledged": True, "id": fault.id})
            elif path == "/_fake/faults" and self.command == "DELETE":
                server.faults.clear()
                self._json(200, {"acknowledged": True})
            elif path == "/_fake/faults":
                self._json(200, {"faults": server.faults.list()})
            elif path == "/_fake/reset" and self.command == "POST":
                server.faults.clear()
                server.reset_upstream()
                with server.log_lock:
                    server.request_log.clear()
                self._json(200, {"acknowledged": True})
            elif path == "/_fake/requests" and self.command == "DELETE":
                with server.log_lock:
                    server.request_log.clear()
                self._json(200, {"acknowledged": True})
            elif path == "/_fake/requests":
                with server.log_lock:
                    self._json(200, {"requests": list(server.request_log)})
            else:
                self._json(404, {"error": f"no control {self.command} {path}", "status": 404})
        except ESError as err:
            self._send_error(err)
        except (ValueError, RuntimeError, OSError) as exc:
            self._json(400, {"error": str(exc), "status": 400})

    def _send_error(self, err: ESError) -> None:
        self._json(err.status, err.body())

    def _json(self, status: int, body: Any) -> None:
        self._send(status, [("Content-Type", "application/json")], json.dumps(body).encode())

    def _send(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
        self.send_response(status)
        names = {k.lower() for k, _ in headers}
        if "x-elastic-product" not in names:
            self.send_header("X-Elastic-Product", "Elasticsearch")
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.realstack.es_fault_proxy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--upstream", required=True, help="the Elasticsearch to forward to (http://host:port)")
    args = parser.parse_args(argv)
    if not args.host.startswith("127.") and args.host not in ("localhost", "::1"):
        parser.error("the fault proxy binds loopback only")
    server = ProxyServer((args.host, args.port), args.upstream)
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    host, port = server.server_address[:2]
    print(f"listening on http://{host!s}:{port}", flush=True)
    server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
