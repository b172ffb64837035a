"""Opt-in CPU profiling of request handling (``--profile FILE``), to find the server's hot spots.

cProfile only sees the thread that enabled it, and every connection has its own handler thread, so each
thread gets its own profiler, switched on only while that thread serves a request (idle keep-alive waits
stay out). Timing is per-thread CPU time, not wall time: waiting for the cluster lock or for the other
core costs nothing here, so the figures add up to the CPU the benchmarks charge to this server.
"""

from __future__ import annotations

import cProfile
import pstats
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class RequestProfiler:
    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()
        self._all: list[cProfile.Profile] = []
        self._busy: set[int] = set()       # id() of the profilers inside a request right now
        self._guard = threading.Lock()
        self._closed = False

    def _own(self) -> cProfile.Profile:
        prof: cProfile.Profile | None = getattr(self._local, "prof", None)
        if prof is None:
            prof = cProfile.Profile(time.thread_time)
            self._local.prof = prof
            with self._guard:
                self._all.append(prof)
        return prof

    @contextmanager
    def request(self) -> Iterator[None]:
        prof = self._own()
        with self._guard:
            closed = self._closed
            if not closed:
                self._busy.add(id(prof))
        if closed:      # already dumped: serve the request unprofiled
            yield
            return
        prof.enable()
        try:
            yield
        finally:
            prof.disable()
            with self._guard:
                self._busy.discard(id(prof))

    def dump(self) -> None:
        """Write the merged statistics (pstats format; read with ``python -m pstats FILE``)."""
        with self._guard:
            self._closed = True
            # One still inside a request (shutdown came mid-request) is left out: disabling it from
            # this thread would not switch it off in the thread that runs it.
            profiles = [p for p in self._all if id(p) not in self._busy]
        merged: pstats.Stats | None = None
        for prof in profiles:
            try:
                stats = pstats.Stats(prof)
            except TypeError:       # a profiler that never recorded anything
                continue
            if merged is None:
                merged = stats
            else:
                merged.add(stats)
        if merged is not None:
            merged.dump_stats(self.path)
