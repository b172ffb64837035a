"""Fault injection for tests, switched at runtime through ``/_fake/`` control endpoints.

Control endpoints (never need authentication, never faulted themselves):

- ``POST /_fake/faults`` with ``{"path": "<regex searched in the request path>", "method": "POST" (optional),
  "count": N (default 1), "kind": "429" | "503" | "delay" | "drop", "delay": seconds (for ``delay``)}``:
  the next N matching requests fail that way. ``429`` answers ES's ``es_rejected_execution_exception``
  (write thread pool full), ``503`` a ``cluster_block_exception`` (no master), ``delay`` answers normally
  after ``delay`` seconds, ``drop`` reads the request and closes the connection without any response.
  Answers ``{"acknowledged": true, "id": n}``.
- ``GET /_fake/faults`` lists the active faults (``{"faults": [...]}`` with ``remaining`` counts).
- ``DELETE /_fake/faults`` clears them.
- ``POST /_fake/reset`` deletes every index, template, alias, point in time and fault.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

from .errors import ESError, illegal_argument

KINDS = ("429", "503", "delay", "drop")


@dataclass
class Fault:
    id: int
    path: str
    method: str | None
    kind: str
    remaining: int
    delay: float

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and re.search(self.path, path) is not None

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "path": self.path, "method": self.method, "kind": self.kind,
                "remaining": self.remaining, "delay": self.delay}


class FaultRegistry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._next_id = 1

    def add(self, spec: Any) -> Fault:
        if not isinstance(spec, dict):
            raise illegal_argument("fault must be an object")
        kind = str(spec.get("kind", ""))
        if kind not in KINDS:
            raise illegal_argument(f"fault kind must be one of {list(KINDS)}, got [{kind}]")
        path = str(spec.get("path", ".*"))
        try:
            re.compile(path)
        except re.error as err:
            raise illegal_argument(f"invalid path regex [{path}]: {err}") from None
        count = int(spec.get("count", 1))
        method = spec.get("method")
        with self._lock:
            fault = Fault(self._next_id, path, None if method is None else str(method).upper(), kind, count,
                          float(spec.get("delay", 0.0)))
            self._next_id += 1
            self._faults.append(fault)
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        """The first active fault matching this request, consuming one of its uses."""
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and fault.matches(method, path):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.describe() for f in self._faults]

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()


def rejected() -> ESError:
    reason = ("rejected execution of org.elasticsearch.action.support.replication.TransportWriteAction$1@1f0e7c2 "
              "on EsThreadPoolExecutor[name = node-1/write, queue capacity = 10000, "
              "org.elasticsearch.common.util.concurrent.EsThreadPoolExecutor@5b1ddd5e[Running, pool size = 2, "
              "active threads = 2, queued tasks = 10000, completed tasks = 1042]]")
    return ESError(429, "es_rejected_execution_exception", reason)


def unavailable() -> ESError:
    return ESError(503, "cluster_block_exception", "blocked by: [SERVICE_UNAVAILABLE/2/no master];")
