"""Which worker processes are alive: a heartbeat from the process that holds a task, not elapsed time.

Each worker process has a token (host, pid, a random part: a restarted process never reuses one) and
refreshes ``alive:<token>`` every ``BEAT_S`` with a ``TTL_S`` expiry from a thread of its own, whatever its
task threads are doing, so a ten-minute model answer is never mistaken for a dead worker.

The same beat also tells Redis again which dispatched jobs this process holds (``Scheduler.start``), so after
Redis lost its state the jobs in hand are known again within one beat instead of being claimed anew.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Final

import redis

PREFIX: Final = "lme-enrich:"
ALIVE: Final = PREFIX + "alive:"
NODE: Final = PREFIX + "node:"  # Celery node name -> token of the process that runs it now
BEAT_S: Final = 5.0
TTL_S: Final = 15  # three beats: one slow Redis round trip is not a death

log = logging.getLogger(__name__)

TOKEN: Final = f"{socket.gethostname()}|{os.getpid()}|{uuid.uuid4().hex[:12]}"


def is_alive(client: redis.Redis, token: str) -> bool:
    return bool(token) and bool(client.exists(ALIVE + token))


def alive_among(client: redis.Redis, tokens: Iterable[str]) -> set[str]:
    """The tokens in ``tokens`` whose process has beaten within ``TTL_S``."""
    unique = sorted({t for t in tokens if t})
    if not unique:
        return set()
    pipe = client.pipeline()
    for token in unique:
        pipe.exists(ALIVE + token)
    return {token for token, found in zip(unique, pipe.execute(), strict=True) if found}


def beat(client: redis.Redis, token: str = TOKEN) -> None:
    client.set(ALIVE + token, "1", ex=TTL_S)


def register_node(client: redis.Redis, node: str, token: str = TOKEN) -> str | None:
    """Record that ``node`` now runs as ``token``; the process that ran it before is dead (return its token).

    A supervisor restarts a killed worker under the same node name: its old token stops counting as alive at
    once, instead of after ``TTL_S``.
    """
    old = client.getset(NODE + node, token)
    previous = old.decode() if isinstance(old, bytes) else old
    if previous and previous != token:
        client.delete(ALIVE + previous)
        return previous
    return None


class Heartbeat:
    """A daemon thread that beats for this process and calls ``also`` (re-assert held jobs) each time."""

    def __init__(self, client: redis.Redis, also: Callable[[], None] | None = None, token: str = TOKEN) -> None:
        self.client, self.also, self.token = client, also, token
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lme-enrich-heartbeat", daemon=True)

    def start(self) -> None:
        beat(self.client, self.token)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=BEAT_S * 2)
        # A clean stop hands the tasks back at once (Celery restores their messages); say we are gone.
        with contextlib.suppress(redis.RedisError):
            self.client.delete(ALIVE + self.token)

    def _run(self) -> None:
        while not self._stop.wait(BEAT_S):
            try:
                beat(self.client, self.token)
                if self.also is not None:
                    self.also()
            except Exception as exc:  # Redis away for a while: keep beating once it is back
                log.warning("heartbeat: %s", exc)
