"""HTTP front of the Kibana test double: routes, authentication, the xsrf check and the start-up window.

Order of checks follows Kibana's request lifecycle: not-ready (503) before anything, then authentication
(401), then the ``kbn-xsrf`` check (an onPostAuth handler, 400), then the route.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.kibana import multipart
from tests.fakes.kibana.store import ImportOptions, Store

log = logging.getLogger("kibana-fake")

VERSION = "8.18.8"
NOT_READY_TEXT = "Kibana server is not ready yet"


@dataclass
class FakeConfig:
    users: dict[str, str] = field(default_factory=dict)
    read_only_users: set[str] = field(default_factory=set)
    api_keys: set[str] = field(default_factory=set)
    not_ready_for: float = 0.0

    @property
    def security(self) -> bool:
        return bool(self.users or self.api_keys)


@dataclass
class Principal:
    name: str
    can_write: bool


class Fake:
    """State of one process: configuration, stored objects and settings, and a request log."""

    def __init__(self, config: FakeConfig) -> None:
        self.config = config
        self.store = Store()
        self.started = time.monotonic()
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []

    def ready(self) -> bool:
        return time.monotonic() - self.started >= self.config.not_ready_for

    def record(self, method: str, path: str, headers: dict[str, str]) -> None:
        with self.lock:
            self.requests.append({"method": method, "path": path, "headers": headers})


class KibanaHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], fake: Fake) -> None:
        self.fake = fake
        super().__init__(address, Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Failed TLS handshakes and dropped connections are expected in tests: one line, no traceback.
        log.info("connection from %s failed: %s", client_address, sys.exc_info()[1])


def error_body(status: int, message: str) -> dict[str, Any]:
    names = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
             413: "Request Entity Too Large"}
    return {"statusCode": status, "error": names.get(status, "Error"), "message": message}


class Handler(BaseHTTPRequestHandler):
    server: KibanaHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "kibana-fake"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    # --- plumbing -------------------------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _body(self) -> bytes:
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: Any, content_type: str = "application/json; charset=utf-8") -> None:
        data = body if isinstance(body, bytes) else (
            body.encode() if isinstance(body, str) else json.dumps(body).encode())
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.send_header("kbn-name", "lme-kibana")
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str) -> None:
        self._send(status, error_body(status, message))

    # --- lifecycle ------------------------------------------------------------------------------------------
    def _dispatch(self, method: str) -> None:
        fake = self.server.fake
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        body = self._body()
        fake.record(method, path, {k.lower(): v for k, v in self.headers.items()
                                   if k.lower() in ("kbn-xsrf", "content-type", "authorization")})
        if path.startswith("/_fake/"):
            self._controls(method, path)
            return
        if not fake.ready():
            if path == "/api/status" and method == "GET":
                # The preboot status route: no authentication, redacted body, 503.
                self._send(503, {"status": {"overall": {"level": "unavailable"}}})
            else:
                self._send(503, NOT_READY_TEXT, "text/plain; charset=utf-8")
            return
        principal, failure = self._authenticate()
        optional = path == "/api/status"  # authRequired: 'optional'
        if failure is not None:
            self._error(401, failure)
            return
        if principal is None and fake.config.security and not optional:
            self._error(401, "Unauthorized")
            return
        if method != "GET" and "kbn-xsrf" not in {k.lower() for k in self.headers}:
            self._error(400, "Request must contain a kbn-xsrf header.")
            return
        route = {("GET", "/api/status"): self._status,
                 ("POST", "/api/saved_objects/_import"): self._import,
                 ("GET", "/api/kibana/settings"): self._get_settings,
                 ("POST", "/api/kibana/settings"): self._set_settings}.get((method, path))
        if route is None:
            self._error(404, "Not Found")
            return
        route(principal, query, body)

    def _authenticate(self) -> tuple[Principal | None, str | None]:
        """(principal, None), (None, None) without credentials, or (None, reason) for refused credentials."""
        config = self.server.fake.config
        header = self.headers.get("authorization")
        if not config.security:
            return Principal("anonymous", True), None
        if not header:
            return None, None
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return None, "[security_exception]: missing authentication credentials for REST request"
            if config.users.get(user) == password and user in config.users:
                return Principal(user, user not in config.read_only_users), None
            return None, (f"[security_exception\n\tRoot causes:\n\t\tsecurity_exception: unable to authenticate user "
                          f"[{user}] for REST request [/_security/_authenticate]]: unable to authenticate user "
                          f"[{user}] for REST request [/_security/_authenticate]")
        if scheme.lower() == "apikey":
            if value in config.api_keys:
                return Principal("api-key", True), None
            return None, ("[security_exception\n\tRoot causes:\n\t\tsecurity_exception: unable to authenticate with "
                          "provided credentials and anonymous access is not allowed for this request]: unable to "
                          "authenticate with provided credentials and anonymous access is not allowed for this request")
        return None, "Unauthorized"

    # --- routes ---------------------------------------------------------------------------------------------
    def _status(self, principal: Principal | None, query: dict[str, list[str]], body: bytes) -> None:
        if principal is None:
            self._send(200, {"status": {"overall": {"level": "available"}}})
            return
        available = {"level": "available", "summary": "All services and plugins are available"}
        self._send(200, {
            "name": "lme-kibana", "uuid": "5b2de169-2785-441b-ae8c-186a1936b17d",
            "version": {"number": VERSION, "build_hash": "0" * 40, "build_number": 84336, "build_snapshot": False,
                        "build_flavor": "traditional", "build_date": "2025-11-27T10:00:00.000Z"},
            "status": {"overall": available,
                       "core": {"elasticsearch": {"level": "available", "summary": "Elasticsearch is available"},
                                "savedObjects": {"level": "available", "summary": "SavedObjects service has "
                                                 "completed migrations and is available"}},
                       "plugins": {}},
            "metrics": {"last_updated": "2025-11-27T10:00:00.000Z", "collection_interval_in_millis": 10000},
        })

    def _import(self, principal: Principal | None, query: dict[str, list[str]], body: bytes) -> None:
        flags: dict[str, bool] = {}
        for name in ("overwrite", "createNewCopies", "compatibilityMode"):
            raw = query.get(name, ["false"])[-1]
            if raw not in ("true", "false"):
                self._error(400, f"[request query.{name}]: expected value of type [boolean] but got [string]")
                return
            flags[name] = raw == "true"
        if flags["overwrite"] and flags["createNewCopies"]:
            self._error(400, "[request query]: cannot use [overwrite] with [createNewCopies]")
            return
        try:
            form = multipart.parse(self.headers.get("content-type", ""), body)
        except multipart.MultipartError:
            self._send(415, {"statusCode": 415, "error": "Unsupported Media Type",
                             "message": "Unsupported Media Type"})
            return
        upload = form.get("file")
        if upload is None:
            self._error(400, "[request body.file]: expected value of type [Stream] but got [undefined]")
            return
        extension = "." + upload.filename.rsplit(".", 1)[-1].lower() if upload.filename and "." in upload.filename \
            else ""
        if extension != ".ndjson":
            self._error(400, f"Invalid file extension {extension}")
            return
        try:
            objects = _read_ndjson(upload.content)
        except ValueError as exc:
            self._error(400, str(exc))
            return
        if principal is not None and not principal.can_write:
            types = ",".join(sorted({str(o.get("type")) for o in objects}))
            self._error(403, f"Unable to bulk_create {types}")
            return
        result = self.server.fake.store.import_objects(objects, ImportOptions(**flags))
        self._send(200, result)

    def _get_settings(self, principal: Principal | None, query: dict[str, list[str]], body: bytes) -> None:
        self._send(200, {"settings": self.server.fake.store.user_settings()})

    def _set_settings(self, principal: Principal | None, query: dict[str, list[str]], body: bytes) -> None:
        try:
            parsed = json.loads(body or b"null")
        except ValueError:
            self._error(400, "Invalid request payload JSON format")
            return
        changes = parsed.get("changes") if isinstance(parsed, dict) else None
        if not isinstance(changes, dict):
            self._error(400, "[request body.changes]: expected value of type [object] but got [undefined]")
            return
        if principal is not None and not principal.can_write:
            self._error(403, "Unable to update config")
            return
        problem = self.server.fake.store.set_settings(changes)
        if problem:
            self._error(400, problem)
            return
        self._send(200, {"settings": self.server.fake.store.user_settings()})

    # --- test controls (not Kibana) --------------------------------------------------------------------------
    def _controls(self, method: str, path: str) -> None:
        fake = self.server.fake
        if method == "GET" and path == "/_fake/state":
            with fake.lock:
                requests = list(fake.requests)
            self._send(200, {**fake.store.snapshot(), "requests": requests})
        elif method == "POST" and path == "/_fake/reset":
            fake.store.reset()
            with fake.lock:
                fake.requests.clear()
            self._send(200, {"acknowledged": True})
        else:
            self._error(404, "Not Found")


def _read_ndjson(content: bytes) -> list[dict[str, Any]]:
    objects = []
    for number, line in enumerate(content.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"Unexpected token in JSON at line {number}: {exc.msg}") from None
        if not isinstance(item, dict):
            raise ValueError(f"Unexpected value at line {number}: not an object")
        if "exportedCount" in item:  # the export summary line is skipped on import
            continue
        objects.append(item)
    return objects
