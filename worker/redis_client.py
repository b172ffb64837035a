"""One Redis connection pool per process for our own state (the broker has its own)."""

from __future__ import annotations

from functools import lru_cache

import redis

from worker.config import get_settings


@lru_cache(maxsize=1)
def get_redis() -> redis.Redis:
    return redis.Redis.from_url(get_settings().redis_url, socket_timeout=10, health_check_interval=30)
