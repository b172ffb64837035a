"""Liveness marks that beat and workers leave in Redis, read by health checks and ``status``."""

from __future__ import annotations

import time

import redis

KEY_PREFIX = "lme-enrich:heartbeat:"


def record(client: redis.Redis, role: str, *, now: float | None = None) -> float:
    """Store that ``role`` was alive at ``now`` (wall-clock seconds, for people to read)."""
    stamp = time.time() if now is None else now
    client.set(KEY_PREFIX + role, repr(stamp))
    return stamp


def last_seen(client: redis.Redis, role: str) -> float | None:
    """When ``role`` last recorded a heartbeat, or None if never."""
    raw = client.get(KEY_PREFIX + role)
    return None if raw is None else float(raw)


def beat_is_fresh(client: redis.Redis, max_age: float, *, now: float | None = None) -> bool:
    """Whether beat's heartbeat task ran within ``max_age`` seconds."""
    seen = last_seen(client, "beat")
    return seen is not None and (time.time() if now is None else now) - seen <= max_age
