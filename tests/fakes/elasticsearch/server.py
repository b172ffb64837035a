"""The HTTP layer: threaded HTTP/1.1 keep-alive server, auth, faults, media types, errors, filter_path."""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import socket
import ssl
import time
import urllib.parse
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from . import filter_path, media
from .api import Api
from .auth import WWW_AUTHENTICATE, AuthConfig
from .errors import ESError
from .faults import FaultRegistry, rejected, unavailable
from .profiling import RequestProfiler
from .routing import Request, Response

log = logging.getLogger("fake-es")


class ESServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], auth: AuthConfig, ssl_context: ssl.SSLContext | None,
                 nodes: int = 2) -> None:
        self.auth = auth
        self.faults = FaultRegistry()
        self.api = Api(self.faults, nodes)
        self.ssl_context = ssl_context
        self.profiler: RequestProfiler | None = None
        super().__init__(address, ESHandler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        if self.ssl_context is not None:
            # Handshake lazily in the worker thread so a bad client cannot stall the accept loop.
            sock = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def shutdown_all(self) -> None:
        self.api.cluster.stop()
        self.shutdown()


class ESHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ESServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without NODELAY, Nagle + delayed ACK add ~40 ms each.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if isinstance(self.connection, ssl.SSLSocket):
            try:
                self.connection.do_handshake()
            except (ssl.SSLError, OSError) as err:
                log.info("TLS handshake failed: %s", err)
                self.close_connection = True
                raise ConnectionAbortedError from err

    def handle(self) -> None:
        with contextlib.suppress(ConnectionError, ssl.SSLError, TimeoutError):
            super().handle()

    def do_GET(self) -> None:
        if self.server.profiler is None:
            self._serve()
            return
        with self.server.profiler.request():
            self._serve()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = do_GET

    # ------------------------------------------------------------------ request
    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            data = b"".join(chunks)
        else:
            length = int(self.headers.get("Content-Length") or 0)
            data = self.rfile.read(length) if length else b""
        encoding = (self.headers.get("Content-Encoding") or "").lower()
        if encoding == "gzip" and data:
            data = gzip.decompress(data)
        elif encoding == "deflate" and data:
            data = zlib.decompress(data)
        return data

    def _serve(self) -> None:
        started = time.monotonic()
        split = urllib.parse.urlsplit(self.path)
        params = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        try:
            body = self._read_body()
        except (OSError, ValueError, EOFError, zlib.error):
            self.close_connection = True
            self._send(Response(400, {"error": {"root_cause": [], "type": "illegal_argument_exception",
                                                "reason": "unreadable request body"}, "status": 400}),
                       media.Negotiated(None), params)
            return
        req = Request(self.command, split.path or "/", self.path, params, body,
                      {k.lower(): v for k, v in self.headers.items()})
        negotiated = media.Negotiated(None)
        is_control = req.path.startswith("/_fake/")
        try:
            if not is_control:
                fault = self.server.faults.take(req.method, req.path)
                if fault is not None:
                    if fault.kind == "drop":
                        self.close_connection = True
                        with contextlib.suppress(OSError):
                            self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    if fault.kind == "delay":
                        time.sleep(fault.delay)  # sync-ok: the delay is the injected fault
                    elif fault.kind == "429":
                        raise rejected()
                    else:
                        raise unavailable()
                self.server.auth.check(req.headers.get("authorization"), req.uri)
            negotiated = media.negotiate(req.headers.get("accept"), req.headers.get("content-type"), req.has_body)
            resp = self.server.api.handle(req)
        except ESError as err:
            resp = error_response(err)
        except Exception as err:  # a bug of ours must still answer as ES would (500 with a JSON body)
            log.exception("internal error on %s %s", req.method, req.uri)
            resp = error_response(ESError(500, "exception", f"{type(err).__name__}: {err}"))
        log.info("%s %s -> %d (%.1f ms)", req.method, req.uri, resp.status, (time.monotonic() - started) * 1000)
        self._send(resp, negotiated, params)

    # ------------------------------------------------------------------ response
    def _send(self, resp: Response, negotiated: media.Negotiated, params: dict[str, str]) -> None:
        payload = b""
        ctype = negotiated.json_type()
        body = resp.body
        if isinstance(body, (dict, list)):
            if "filter_path" in params and resp.status < 400 and params["filter_path"]:
                body = filter_path.apply(body, params["filter_path"])
            if "pretty" in params and params["pretty"] != "false":
                payload = (json.dumps(body, indent=2, separators=(",", " : "), ensure_ascii=False) + "\n").encode()
            else:
                payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        elif isinstance(body, str):
            payload = body.encode()
            ctype = "text/plain; charset=UTF-8"
        self.send_response(resp.status)
        self.send_header("X-Elastic-Product", "Elasticsearch")
        if self.headers.get("X-Opaque-Id"):
            self.send_header("X-Opaque-Id", self.headers["X-Opaque-Id"])
        if body is not None:
            self.send_header("Content-Type", ctype)
        for name, value in resp.headers.items():
            for v in value if isinstance(value, list) else [value]:
                self.send_header(name, v)
        self.send_header("Content-Length", str(len(payload)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)


def error_response(err: ESError) -> Response:
    headers: dict[str, str | list[str]] = {}
    if err.status == 401:
        headers["WWW-Authenticate"] = list(WWW_AUTHENTICATE)
    if err.type == "content_type":
        return Response(err.status, {"error": err.reason, "status": err.status})
    return Response(err.status, err.body(), headers)


def make_server(host: str, port: int, auth: AuthConfig, tls: tuple[str, str] | None, nodes: int = 2) -> ESServer:
    ctx = None
    if tls is not None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls[0], tls[1])
    return ESServer((host, port), auth, ctx, nodes)

