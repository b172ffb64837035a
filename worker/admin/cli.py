"""The ``lme-enrich`` command.

Errors are one clear line on stderr and exit code 2 (configuration or a dependency) unless ``--debug``
asks for the traceback. Every command reads the same ``LME_ENRICH_*`` settings.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from worker.admin import credentials
from worker.admin.cli_kibana import kibana as kibana_group
from worker.alerts.errors import StoreError
from worker.app import app
from worker.celery_conf import ASSESS_QUEUE, POLL_QUEUE, worker_argv
from worker.config import get_settings
from worker.settings import ConfigError, parse_duration

if TYPE_CHECKING:
    from worker.alerts.claiming import ClaimReport

# The Elasticsearch client, the pipeline and the Redis scheduler are imported by the commands that use them:
# beat and the container healthcheck (`health`) start without them (beat: ~35 MiB less resident memory).

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
    # Commands people type print their own lines; only the long-running roles log progress at INFO.
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not debug:
        # The client retries a dead node and says so at WARNING; our one-line error says it better.
        logging.getLogger("elastic_transport").setLevel(logging.ERROR)


def _state_dir() -> Path:
    path = Path(os.environ.get("LME_ENRICH_STATE_DIR", ".state"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _preflight() -> None:
    from worker.admin import preflight

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
    logging.getLogger().setLevel(logging.INFO)
    slots = 1 if role == "poll" else (concurrency or settings.concurrency)
    app.worker_main(worker_argv(QUEUES[role], slots, f"{role}@%h"))


@main.command()
@_friendly
def beat() -> None:
    """Run Celery beat: the poll schedule and the heartbeat."""
    get_settings()
    # Beat sends its tasks by name (routed by task_routes): importing their modules and the pipeline behind
    # them would only cost memory (~25 MiB).
    app.conf.include = []
    app.start(["beat", "--loglevel", "INFO", "--schedule", str(_state_dir() / "celerybeat-schedule")])


@main.command()
@_friendly
def run() -> None:
    """Run everything on one host: beat, a poll worker and the assessment workers; stop all on SIGTERM."""
    get_settings()
    _preflight()
    base = [sys.executable, "-m", "worker.admin.cli"]
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
    from worker.dispatch import heartbeat
    from worker.dispatch.redis_client import get_redis

    settings = get_settings()
    if role == "beat":
        interval = min(settings.poll_interval.total_seconds(), 30.0)
        if not heartbeat.beat_is_fresh(get_redis(ride_through=False), max_age=3 * interval + 30):
            raise click.ClickException("beat has not recorded a heartbeat recently")
        return
    node = f"{role}@{socket.gethostname()}"
    if not app.control.ping(destination=[node], timeout=5.0):
        raise click.ClickException(f"worker {node} does not answer a ping")


def _duration(_ctx: click.Context, _param: click.Parameter, value: str | None) -> timedelta | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@main.command()
@click.argument("ids", nargs=-1)
@click.option("--rule", help="Alerts of this rule (kibana.alert.rule.name).")
@click.option("--status", "status_", type=click.Choice(["failed", "done"]), help="Alerts with this lme.ai.status.")
@click.option("--since", callback=_duration, help="Alerts from the last DURATION, e.g. 2h or 7d.")
@click.option("--severity", help="Comma-separated Kibana severities, e.g. high,critical.")
@click.option("--query", "raw_query", help="An Elasticsearch query (JSON) that selects the alerts.")
@click.option("--dry-run", is_flag=True, help="Print how many and which alerts, queue nothing.")
@_friendly
def requeue(ids: tuple[str, ...], rule: str | None, status_: str | None, since: timedelta | None,
            severity: str | None, raw_query: str | None, dry_run: bool) -> None:
    """Assess alerts again, ahead of the backlog. Alerts already queued or running are not queued twice."""
    from elasticsearch import ApiError

    from worker.admin import operations
    from worker.alerts import selection
    from worker.dispatch.queueing import send_assessment
    from worker.services import get_scheduler, get_services

    raw = None
    if raw_query is not None:
        try:
            raw = json.loads(raw_query)
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--query") from None
        if not isinstance(raw, dict):
            raise click.BadParameter("expected a JSON object such as {\"term\": {...}}", param_hint="--query")
    severities = [s.strip().lower() for s in severity.split(",") if s.strip()] if severity else None
    settings = get_settings()
    try:
        query = selection.requeue_query(settings, ids=list(ids), rule=rule, status=status_, since=since,
                                        severities=severities, raw=raw)
    except selection.SelectionError as exc:
        raise click.UsageError(str(exc)) from None
    services = get_services()
    try:
        unknown = operations.missing(services, list(ids))
        if unknown:
            raise click.ClickException(
                f"no alert with id {', '.join(unknown)} behind {settings.alert_index}; nothing was requeued "
                "(check the id in Kibana's alert flyout: kibana.alert.uuid)")
        if dry_run:
            found = operations.preview(services, query)
            click.echo(f"{found.count} alert(s) would be requeued")
            for alert_id in found.ids:
                click.echo(f"  {alert_id}")
            if found.count > len(found.ids):
                click.echo(f"  ... and {found.count - len(found.ids)} more")
            return
        report = operations.requeue(services, get_scheduler(), query, send_assessment)
    except ApiError as exc:
        raise StoreError(f"Elasticsearch refused the selection: {exc.message}") from exc
    click.echo(f"requeued {report.queued} alert(s) ahead of the backlog"
               + (f"; {report.found - report.claimed} changed meanwhile and were skipped"
                  if report.found > report.claimed else ""))


@main.command()
@click.option("--since", callback=_duration, required=True, help="How far back, e.g. 7d.")
@_friendly
def backfill(since: timedelta) -> None:
    """Claim and queue older never-assessed alerts, behind new work. Safe to interrupt and run again."""
    from worker.admin import operations
    from worker.alerts import selection
    from worker.dispatch.queueing import send_assessment
    from worker.services import get_scheduler, get_services

    services = get_services()
    query = selection.backfill_query(services.settings, since)
    total = services.store.count(query)
    if total == 0:
        click.echo("nothing to backfill")
        return
    interrupted = False

    def on_interrupt(_signum: int, _frame: object) -> None:
        nonlocal interrupted
        interrupted = True  # finish queueing the current page's claims, then stop

    previous = signal.signal(signal.SIGINT, on_interrupt)
    done = 0
    try:
        with click.progressbar(length=total, label="backfill", show_eta=True, show_pos=True,
                               file=sys.stderr) as bar:
            def on_page(report: ClaimReport) -> None:
                nonlocal done
                bar.update(report.found - done)
                done = report.found

            report = operations.backfill(services, get_scheduler(), since, send_assessment, on_page=on_page,
                                         should_stop=lambda: interrupted)
    finally:
        signal.signal(signal.SIGINT, previous)
    click.echo(f"queued {report.queued} of {total} alert(s)"
               + ("; interrupted: run the same command again to continue" if interrupted else ""))
    if interrupted:
        sys.exit(130)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for scripts.")
@_friendly
def status(as_json: bool) -> None:
    """Counts per status, queue depths, throughput, backlog ETA, and whether beat and workers are alive."""
    import redis
    from elastic_transport import TransportError as ESTransportError
    from elasticsearch import ApiError

    from worker.admin import operations
    from worker.services import get_scheduler, get_services

    services = get_services()
    try:
        report = operations.status(services, get_scheduler(), _alive_workers)
    except (ApiError, ESTransportError) as exc:
        raise StoreError(f"cannot read status from Elasticsearch: {exc}") from exc
    except redis.RedisError as exc:
        raise StoreError(f"cannot read queues from Redis: {exc}") from exc
    if as_json:
        click.echo(json.dumps(report, sort_keys=True))
        return
    click.echo(_status_table(report))


def _alive_workers() -> list[str]:
    replies = app.control.ping(timeout=2.0) or []
    return [name for reply in replies for name in reply]


def _ago(stamp: float | None) -> str:
    return "never" if stamp is None else f"{time.time() - stamp:.0f}s ago"


def _status_table(r: dict[str, Any]) -> str:
    alerts, hour = r["alerts"], r["last_hour"]
    by_status = ", ".join(f"{k} {v}" for k, v in sorted(alerts["by_status"].items())) or "none yet"
    eta = "-" if r["backlog_eta_s"] is None else f"{r['backlog_eta_s'] / 60:.1f} min"
    rows = [
        ("alerts", by_status),
        ("waiting", f"{alerts['waiting']} (oldest {alerts['oldest_wait_s'] or 0:.0f}s); "
                    f"{alerts['unassessed_in_window']} not yet claimed"),
        ("queues", ", ".join(f"{k} {v}" for k, v in r["queues"].items())),
        ("last hour", f"{hour['assessed']} assessed, {hour['failed']} failed, "
                      f"mean {hour['mean_duration_ms'] or 0:.0f} ms, p95 {hour['p95_duration_ms'] or 0:.0f} ms"),
        ("backlog ETA", eta),
        ("last poll", _ago(r["last_poll_at"])),
        ("beat", ("alive, " if r["beat"]["alive"] else "NOT ALIVE, ") + "last seen " + _ago(r["beat"]["last_seen_at"])),
        ("workers", ", ".join(r["workers"]["alive"]) or "NONE ANSWERED"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for scripts.")
@_friendly
def doctor(as_json: bool) -> None:
    """Check Elasticsearch, LiteLLM, Redis and beat; say what is wrong and how to fix it."""
    from worker.admin import doctor as doctor_module
    from worker.dispatch.redis_client import get_redis
    from worker.services import make_llm

    settings = get_settings()
    checks = doctor_module.run(settings, make_llm=make_llm, redis_client=get_redis(ride_through=False))
    failed = any(c.verdict == "fail" for c in checks)
    if as_json:
        click.echo(json.dumps({"ok": not failed, "checks": [c.as_dict() for c in checks]}))
    else:
        marks = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}
        for check in checks:
            click.echo(f"{marks[check.verdict]} {check.name}: {check.detail}")
            if check.fix and check.verdict != "ok":
                click.echo(f"     fix: {check.fix}")
    if failed:
        sys.exit(1)


@main.command("setup-credentials")
@click.option("--name", default=credentials.API_KEY_NAME, show_default=True, help="Name of the API key.")
@click.option("--expiration", help="Key lifetime, e.g. 365d (default: no expiry).")
@click.option("--mapping-privilege", type=click.Choice(["write", "manage"]), default="write", show_default=True,
              help="Index privilege that allows putting our mapping on Kibana's backing indices.")
@_friendly
def setup_credentials(name: str, expiration: str | None, mapping_privilege: str) -> None:
    """Create the least-privilege role and an API key for lme-enrich; print only the encoded key.

    Run it once with administrator credentials (LME: elastic); the key goes into LME_ENRICH_ES_API_KEY.
    """
    from elasticsearch import ApiError

    from worker.alerts.es import make_client

    settings = get_settings()
    try:
        key = credentials.setup(make_client(settings), alerts_pattern=settings.alert_index, name=name,
                                expiration=expiration,
                                put_mapping_via="manage" if mapping_privilege == "manage" else "write")
    except ValueError as exc:
        raise ConfigError(f"LME_ENRICH_ALERT_INDEX: {exc}") from exc
    except ApiError as exc:
        raise StoreError(f"Elasticsearch refused to create the role or key (HTTP {exc.meta.status}): "
                         f"{exc.message}; run this with a user that has manage_security (LME: elastic)") from exc
    click.echo(key)


main.add_command(kibana_group)


if __name__ == "__main__":
    main()
