"""Seed alerts, run the real pipeline processes, and report the invariants: shared by the fault suites."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from typing import Any

from elasticsearch import Elasticsearch

from tests import kibana
from tests.celery_procs import CeleryProcesses, wait_for
from tests.invariants import Ledger
from worker.celery_conf import ASSESS_QUEUE, POLL_QUEUE


def seed_distinct(es: Elasticsearch, space: kibana.Space, count: int, prefix: str) -> Ledger:
    """``count`` distinct alerts (each its own prompt, so coalescing does not hide double work), recorded."""
    base = kibana.eligible(kibana.load_corpus())
    docs = kibana.variants(base, count, prefix)
    for n, doc in enumerate(docs):
        # A distinct host makes each prompt (and fingerprint) distinct.
        kibana.set_field(doc, "host.name", f"{prefix}-host-{n}")
    return Ledger.of(es, kibana.seed(es, space, docs))


def seed_corpus(es: Elasticsearch, space: kibana.Space, count: int) -> Ledger:
    """The first ``count`` eligible corpus alerts as they are (storms share fingerprints)."""
    return Ledger.of(es, kibana.seed(es, space, kibana.eligible(kibana.load_corpus())[:count]))


def start_pipeline(procs: CeleryProcesses, *, assess_concurrency: int = 2, suffix: str = "") -> None:
    procs.worker(f"poll{suffix}", queues=(POLL_QUEUE,), concurrency=1)
    procs.worker(f"assess{suffix}", queues=(ASSESS_QUEUE,), concurrency=assess_concurrency)
    procs.beat(f"beat{suffix}")


def pool_children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False)
    return [int(p) for p in out.stdout.split()]


def crash(procs: CeleryProcesses, name: str) -> None:
    """SIGKILL worker ``name`` (its whole process group, as the OOM killer or a crash would) and return once
    the supervisor (``CeleryProcesses.supervise``) has started it again under the same node name: a second
    crash must hit the new process, not the one already dead."""
    proc = procs.procs[name]
    assert proc.poll() is None, f"{name} was not running when it was to be crashed"
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)
    wait_for(lambda: procs.procs[name] is not proc, timeout=30, what=f"the supervisor to restart {name}")


def status_counts(es: Elasticsearch, space: kibana.Space, *, refresh: bool = False) -> dict[str, int]:
    """Alerts per ``lme.ai.status``; with ``refresh``, every write made so far counts (search lags by up to 1 s)."""
    if refresh:
        es.indices.refresh(index=space.pattern)
    response = es.search(index=space.pattern, size=0, aggs={"s": {"terms": {"field": "lme.ai.status"}}})
    buckets: list[dict[str, Any]] = response["aggregations"]["s"]["buckets"]
    return {str(b["key"]): int(b["doc_count"]) for b in buckets}
