"""Run a test server (`python -m tests.fakes.X`) as a real child process.

Each server prints ``listening on URL`` on its first stdout line once it accepts
connections; we wait for that line (with a deadline) instead of guessing with sleeps.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

READY_PREFIX = "listening on "
ROOT = Path(__file__).resolve().parents[2]


class ServerStartError(RuntimeError):
    pass


@dataclass
class RunningServer:
    url: str
    process: subprocess.Popen[str]

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then wait; SIGKILL only if it does not stop in time. Returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode


def start_server(module: str, args: Sequence[str] = (), *, timeout: float = 30.0,
                 env: dict[str, str] | None = None) -> RunningServer:
    """Start ``python -m module --port 0 *args`` and return once it printed its URL."""
    cmd = [sys.executable, "-m", module, "--host", "127.0.0.1", "--port", "0", *args]
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=None,  # inherit: server logs show up in pytest's captured output
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                proc.kill()
                raise ServerStartError(f"{module} printed no '{READY_PREFIX}URL' line within {timeout}s")
            if not sel.select(remaining):
                continue
            line = proc.stdout.readline()
            if not line:
                code = proc.wait(timeout)
                raise ServerStartError(f"{module} exited with {code} before it was ready")
            if line.startswith(READY_PREFIX):
                return RunningServer(line[len(READY_PREFIX):].strip(), proc)
    finally:
        sel.close()
