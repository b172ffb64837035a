"""One Redis connection pool per process for our own state (the broker has its own).

Workers ride through a Redis restart or a short outage: every command is retried with backoff for about
``RIDE_THROUGH_S`` before it raises, so a task half-way through an assessment carries on once Redis is back
instead of ending with its slot and its claim left behind. Our Redis writes are idempotent (hash and sorted-set
sets, scripts that check before they change), so a command sent again after a lost reply does no harm.
A wrong password or a certificate that does not verify is not retried: waiting cannot fix it. Commands people
wait on (``doctor``, the healthcheck) fail fast instead.
"""

from __future__ import annotations

import ssl
from functools import lru_cache
from typing import Final

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from worker.config import get_settings

_BACKOFF_CAP_S: Final = 5.0
_BACKOFF_BASE_S: Final = 0.25
_RETRIES: Final = 30
# 0.5 + 1 + 2 + 4 s, then 5 s per retry: what the retries above add up to.
RIDE_THROUGH_S: Final = sum(min(_BACKOFF_CAP_S, _BACKOFF_BASE_S * 2**n) for n in range(1, _RETRIES + 1))


def _worth_retrying(error: Exception) -> bool:
    """A connection that may work later (Redis restarting), not one refused for good (credentials, TLS trust)."""
    if isinstance(error, redis.AuthenticationError | redis.exceptions.AuthorizationError):
        return False
    cause = error.__cause__ or error.__context__
    return not isinstance(cause, ssl.SSLCertVerificationError) and "certificate verify failed" not in str(error)


@lru_cache(maxsize=2)
def get_redis(*, ride_through: bool = True) -> redis.Redis:
    """This process's client; ``ride_through=False`` for a check a person waits on (a few quick retries)."""
    retry = (Retry(ExponentialBackoff(cap=_BACKOFF_CAP_S, base=_BACKOFF_BASE_S), _RETRIES,
                   is_retryable=_worth_retrying) if ride_through
             else Retry(ExponentialBackoff(cap=0.5, base=0.05), 3, is_retryable=_worth_retrying))
    return redis.Redis.from_url(get_settings().redis_url, socket_timeout=10, health_check_interval=30, retry=retry)
