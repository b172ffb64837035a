"""The ``lme-enrich`` command.

Errors are one clear line on stderr and exit code 2 (configuration or a dependency) unless ``--debug``
asks for the traceback. Every command reads the same ``LME_ENRICH_*`` settings.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from worker import heartbeat, preflight
from worker.app import app
from worker.celery_conf import ASSESS_QUEUE, POLL_QUEUE
from worker.config import get_settings
from worker.redis_client import get_redis
from worker.settings import ConfigError
from worker.store import StoreError

F = TypeVar("F", bound=Callable[..., Any])
QUEUES = {"poll": (POLL_QUEUE,), "assess": (ASSESS_QUEUE,), "all": (POLL_QUEUE, ASSESS_QUEUE)}


def _friendly(func: F) -> F:
    """Turn our expected errors into one line and exit code 2, unless --debug."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (ConfigError, StoreError) as exc:
            if click.get_current_context().find_root().params.get("debug"):
                raise
            message = str(exc).replace("\n", "\n  ")
            click.echo(f"lme-enrich: {message}", err=True)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


@click.group()
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
def main(debug: bool) -> None:
    """AI assessments for LME security alerts, written back into Elasticsearch."""
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _state_dir() -> Path:
    path = Path(os.environ.get("LME_ENRICH_STATE_DIR", ".state"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _preflight() -> None:
    preflight.run()


@main.command()
@_friendly
def check() -> None:
    """Validate the settings, map our fields in Elasticsearch and check the LLM model; then exit."""
    _preflight()
    click.echo("lme-enrich: configuration, Elasticsearch mapping and LLM model are ready")


@main.command()
@click.option("--role", type=click.Choice(sorted(QUEUES)), default="all", show_default=True,
              help="poll: the poll queue only; assess: LLM assessments only; all: both.")
@click.option("--concurrency", type=int, default=None, help="Parallel assessments (default LME_ENRICH_CONCURRENCY).")
@click.option("--skip-checks", is_flag=True, help="Start without the start-up checks (check runs them).")
@_friendly
def worker(role: str, concurrency: int | None, skip_checks: bool) -> None:
    """Run a Celery worker with the project's settings."""
    settings = get_settings()
    if not skip_checks:
        _preflight()
    slots = 1 if role == "poll" else (concurrency or settings.concurrency)
    app.worker_main(["worker", "-Q", ",".join(QUEUES[role]), "-c", str(slots), "-n", f"{role}@%h",
                     "--loglevel", "INFO"])


@main.command()
@_friendly
def beat() -> None:
    """Run Celery beat: the poll schedule and the heartbeat."""
    get_settings()
    app.start(["beat", "--loglevel", "INFO", "--schedule", str(_state_dir() / "celerybeat-schedule")])


@main.command()
@_friendly
def run() -> None:
    """Run everything on one host: beat, a poll worker and the assessment workers; stop all on SIGTERM."""
    get_settings()
    _preflight()
    base = [sys.executable, "-m", "worker.cli"]
    commands = [[*base, "beat"], [*base, "worker", "--role", "poll", "--skip-checks"],
                [*base, "worker", "--role", "assess", "--skip-checks"]]
    children = [subprocess.Popen(cmd) for cmd in commands]

    def stop(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # Run while all three do: if one stops, stop the others rather than run half a pipeline.
    exited = _wait_any(children)
    stop(signal.SIGTERM, None)
    for child in children:
        child.wait()
    sys.exit(exited.returncode or 0)


def _wait_any(children: list[subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    while True:
        pid, _status = os.wait()
        for child in children:
            if child.pid == pid:
                child.returncode = os.waitstatus_to_exitcode(_status)
                return child


@main.command()
@click.argument("role", type=click.Choice(["poll", "assess", "beat"]))
@_friendly
def health(role: str) -> None:
    """Exit 0 when this host's ROLE is alive: a worker answers a Celery ping, beat's heartbeat is recent."""
    settings = get_settings()
    if role == "beat":
        interval = min(settings.poll_interval.total_seconds(), 30.0)
        if not heartbeat.beat_is_fresh(get_redis(), max_age=3 * interval + 30):
            raise click.ClickException("beat has not recorded a heartbeat recently")
        return
    node = f"{role}@{socket.gethostname()}"
    if not app.control.ping(destination=[node], timeout=5.0):
        raise click.ClickException(f"worker {node} does not answer a ping")


if __name__ == "__main__":
    main()
