"""Start Celery worker and beat as real processes, as `scripts/run` does, for integration tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from worker.celery_conf import ASSESS_QUEUE, POLL_QUEUE

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")


def wait_for(check: Callable[[], T], *, timeout: float, interval: float = 0.05, what: str = "condition",
             error: type[Exception] = AssertionError) -> T:
    """Poll ``check`` until it returns something truthy; raise ``error`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise error(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)  # sync-ok: polling interval of a deadline-bounded wait


class CeleryProcesses:
    """A set of celery child processes sharing one environment; stopped with SIGTERM."""

    def __init__(self, env: Mapping[str, str], workdir: Path) -> None:
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.args: dict[str, list[str]] = {}

    def _start(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("ab")
        # A session of its own: the whole process group (main process and pool) can be killed at once,
        # as an OOM kill or a host crash would, without touching pytest.
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "worker", *args],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.procs[name] = proc
        self.args[name] = args
        return proc

    def kill(self, name: str) -> None:
        """SIGKILL process ``name`` and its whole process group (its pool too), and reap it."""
        proc = self.procs[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)

    def restart(self, name: str) -> subprocess.Popen[bytes]:
        """Start ``name`` again with the same arguments, as a supervisor would."""
        return self._start(name, self.args[name])

    def worker(self, name: str, queues: tuple[str, ...] = (POLL_QUEUE, ASSESS_QUEUE),
               concurrency: int = 1) -> subprocess.Popen[bytes]:
        return self._start(name, ["worker", "-Q", ",".join(queues), "-c", str(concurrency),
                                  "-n", f"{name}@%h", "--loglevel", "INFO", "--without-gossip",
                                  "--without-mingle"])

    def beat(self, name: str = "beat") -> subprocess.Popen[bytes]:
        return self._start(name, ["beat", "--loglevel", "INFO",
                                  "--schedule", str(self.workdir / "celerybeat-schedule")])

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")

    def stop(self, timeout: float = 20.0) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout)


@contextmanager
def celery_processes(env: Mapping[str, str], workdir: Path) -> Iterator[CeleryProcesses]:
    procs = CeleryProcesses(env, workdir)
    try:
        yield procs
    finally:
        procs.stop()
