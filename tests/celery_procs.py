"""Start Celery worker and beat as real processes, as `scripts/run` does, for integration tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from worker.celery_conf import ASSESS_QUEUE, POLL_QUEUE, worker_argv

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
        self.restarts: list[tuple[str, int | None]] = []  # (name, exit code) of each restart by supervise()
        self._down: set[str] = set()  # killed on purpose: not restarted by supervise()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None

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
        with self._lock:
            self._down.add(name)
        proc = self.procs[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)

    def restart(self, name: str) -> subprocess.Popen[bytes]:
        """Start ``name`` again with the same arguments, as a supervisor would."""
        with self._lock:
            self._down.discard(name)
            return self._start(name, self.args[name])

    def supervise(self) -> None:
        """Restart a process that exits on its own, as LME's supervisors do (systemd quadlets, compose restart
        policies): Celery's Redis transport can end a worker when Redis goes away (an AttributeError in kombu's
        reconnect, celery/kombu#582 and kin), and what users get is the restart. Each one is in ``restarts``."""
        def watch() -> None:
            while not self._stopping.wait(0.5):  # sync-ok: a supervisor's polling interval, not a test's wait
                with self._lock:
                    for name, proc in list(self.procs.items()):
                        if name not in self._down and proc.poll() is not None:
                            self.restarts.append((name, proc.returncode))
                            self._start(name, self.args[name])

        self._supervisor = threading.Thread(target=watch, name="celery-supervisor", daemon=True)
        self._supervisor.start()

    def worker(self, name: str, queues: tuple[str, ...] = (POLL_QUEUE, ASSESS_QUEUE),
               concurrency: int = 1) -> subprocess.Popen[bytes]:
        # The product's own arguments (those of ``lme-enrich worker``), quieter.
        return self._start(name, [*worker_argv(queues, concurrency, f"{name}@%h"), "--without-gossip",
                                  "--without-mingle"])

    def beat(self, name: str = "beat") -> subprocess.Popen[bytes]:
        return self._start(name, ["beat", "--loglevel", "INFO",
                                  "--schedule", str(self.workdir / "celerybeat-schedule")])

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")

    def stop(self, timeout: float = 20.0) -> None:
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join()
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
