"""The request log: one record per served request (chat, models, health), for tests to inspect."""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Record:
    id: int
    method: str
    path: str
    received_at: float  # wall clock (epoch seconds)
    received_mono: float  # monotonic, to compare durations
    answered_at: float | None = None
    duration: float | None = None
    model: str | None = None
    body: Any = None
    stream: bool = False
    status: int | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    fault: str | None = None
    client_hung_up: bool = False
    slot: int | None = None
    cached_tokens: int | None = None
    queued_seconds: float | None = None
    attempts: int = 0
    cancelled: bool = False
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class RequestLog:
    """Keeps the newest ``limit`` records (bodies can be large; benchmarks send many)."""

    def __init__(self, limit: int = 20000) -> None:
        self._lock = threading.Lock()
        self._records: deque[Record] = deque(maxlen=limit)
        self._next_id = 1
        self._dropped = 0

    def new(self, method: str, path: str, received_at: float, received_mono: float) -> Record:
        with self._lock:
            record = Record(self._next_id, method, path, received_at, received_mono)
            self._next_id += 1
            if len(self._records) == self._records.maxlen:
                self._dropped += 1
            self._records.append(record)  # the oldest falls off at the limit
            return record

    def all(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.as_dict() for r in self._records]

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def counts(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": len(self._records),
                "records_dropped": self._dropped,
                "answered": sum(1 for r in self._records if r.status is not None),
                "in_flight": sum(1 for r in self._records if r.answered_at is None),
                "by_status": dict(Counter(str(r.status) for r in self._records)),
                "by_path": dict(Counter(r.path for r in self._records)),
                "faults": dict(Counter(r.fault for r in self._records if r.fault)),
                "client_hung_up": sum(1 for r in self._records if r.client_hung_up),
            }
