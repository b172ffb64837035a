"""A stand-in for Elasticsearch 8.18's security API, enough for ``worker.admin.credentials.setup``.

    python -m tests.deploy.security_server --host 127.0.0.1 --port 0 --password PW

Answers ``PUT|POST /_security/role/<name>`` (refusing privilege names ES 8.18 does not know, with ES's 400
``illegal_argument_exception``) and ``POST|PUT /_security/api_key``; only ``elastic``/``PW`` gets in.
``GET /_test/requests`` returns what it received. Prints ``listening on URL`` once ready; SIGTERM stops it.
Our Elasticsearch test server has no security API, so this small one stands in for it here.
"""

from __future__ import annotations

import argparse
import base64
import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any

# ES 8.18 security privileges reference ("Security privileges", docs/reference/security/authorization/
# privileges.asciidoc; https://www.elastic.co/guide/en/elasticsearch/reference/8.18/security-privileges.html).
CLUSTER_PRIVILEGES = frozenset({
    "all", "cancel_task", "create_snapshot", "cross_cluster_replication", "cross_cluster_search", "grant_api_key",
    "manage", "manage_api_key", "manage_autoscaling", "manage_ccr", "manage_connector",
    "manage_data_frame_transforms", "manage_data_stream_global_retention", "manage_enrich", "manage_ilm",
    "manage_index_templates", "manage_inference", "manage_ingest_pipelines", "manage_logstash_pipelines",
    "manage_ml", "manage_oidc", "manage_own_api_key", "manage_pipeline", "manage_rollup", "manage_saml",
    "manage_search_application", "manage_search_query_rules", "manage_search_synonyms", "manage_security",
    "manage_service_account", "manage_slm", "manage_token", "manage_transform", "manage_watcher", "monitor",
    "monitor_data_stream_global_retention", "monitor_enrich", "monitor_inference", "monitor_ml", "monitor_rollup",
    "monitor_snapshot", "monitor_stats", "monitor_text_structure", "monitor_transform", "monitor_watcher",
    "read_ccr", "read_ilm", "read_pipeline", "read_slm", "read_security", "transport_client",
})
INDEX_PRIVILEGES = frozenset({
    "all", "auto_configure", "create", "create_doc", "create_index", "cross_cluster_replication",
    "cross_cluster_replication_internal", "delete", "delete_index", "index", "maintenance", "manage",
    "manage_data_stream_lifecycle", "manage_follow_index", "manage_ilm", "manage_leader_index", "monitor", "read",
    "read_cross_cluster", "view_index_metadata", "write",
})


class Recorder:
    def __init__(self, password: str) -> None:
        self.password = password
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.keys = 0


def _role_errors(body: dict[str, Any]) -> list[str]:
    errors = [f"unknown cluster privilege [{p}]" for p in body.get("cluster", []) if p not in CLUSTER_PRIVILEGES]
    for entry in body.get("indices", []):
        if not entry.get("names"):
            errors.append("indices privileges must refer to at least one index name")
        errors += [f"unknown index privilege [{p}]" for p in entry.get("privileges", []) if p not in INDEX_PRIVILEGES]
    return errors


class Handler(BaseHTTPRequestHandler):
    server: SecurityServer

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write("security-server " + format % args + "\n")

    def _send(self, status: int, payload: object) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Elastic-Product", "Elasticsearch")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, kind: str, reason: str) -> None:
        self._send(status, {"error": {"root_cause": [{"type": kind, "reason": reason}], "type": kind,
                                      "reason": reason}, "status": status})

    def _authorized(self) -> bool:
        expected = "Basic " + base64.b64encode(f"elastic:{self.server.recorder.password}".encode()).decode()
        return self.headers.get("Authorization") == expected

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        path = self.path.split("?", 1)[0]
        recorder = self.server.recorder
        if path == "/_test/requests":
            with recorder.lock:
                self._send(200, recorder.requests)
            return
        if not self._authorized():
            self._error(401, "security_exception", "missing authentication credentials for REST request")
            return
        with recorder.lock:
            recorder.requests.append({"method": self.command, "path": path, "body": body})
        if path.startswith("/_security/role/") and self.command in ("PUT", "POST"):
            errors = _role_errors(body or {})
            if errors:
                self._error(400, "illegal_argument_exception", "; ".join(errors))
            else:
                self._send(200, {"role": {"created": True}})
        elif path == "/_security/api_key" and self.command in ("PUT", "POST"):
            for descriptor in (body or {}).get("role_descriptors", {}).values():
                if _role_errors(descriptor):
                    self._error(400, "illegal_argument_exception", "; ".join(_role_errors(descriptor)))
                    return
            with recorder.lock:
                recorder.keys += 1
                key_id = f"key-{recorder.keys}"
            secret = f"secret-{key_id}"
            self._send(200, {"id": key_id, "name": (body or {}).get("name"), "api_key": secret,
                             "encoded": base64.b64encode(f"{key_id}:{secret}".encode()).decode()})
        else:
            self._error(400, "illegal_argument_exception", f"no handler for [{self.command} {path}]")

    do_GET = do_PUT = do_POST = _handle


class SecurityServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], recorder: Recorder) -> None:
        super().__init__(address, Handler)
        self.recorder = recorder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.deploy.security_server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--password", default="changeme")
    args = parser.parse_args(argv)
    server = SecurityServer((args.host, args.port), Recorder(args.password))
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    print(f"listening on http://{host!s}:{port}", flush=True)
    stop.wait()
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
