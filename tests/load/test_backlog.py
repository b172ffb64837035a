"""A large backlog with the instant model: nothing lost, memory flat, Redis bounded, and the poll's cost does
not grow with the number of alerts already enriched."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from tests import kibana
from tests.celery_procs import celery_processes, wait_for
from tests.fakes import tls
from tests.fakes.process import RunningServer
from tests.faults.harness import pool_children, start_pipeline
from tests.integration.conftest import LLMSim, start_llm
from tests.invariants import Ledger, check
from worker.alerts import selection
from worker.alerts.es import make_client
from worker.alerts.store import AlertStore
from worker.settings import load_settings

pytestmark = pytest.mark.slow

SEED_CHUNK = 2000


@pytest.fixture
def instant_llm(llm_cert: tls.ServerCert, test_ca: tls.TestCA) -> Iterator[LLMSim]:
    server: RunningServer = start_llm(llm_cert, ["--instant", "--slots", "4"])
    sim = LLMSim(server, test_ca.cert_path)
    yield sim
    sim.http.close()
    server.stop()


def _rss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            continue
    return total


def _poll_query_ms(store: AlertStore, query: dict[str, object], batch: int) -> float:
    """Median time of the poll's search (every page), when it finds nothing new."""
    # Every alert is claimed in the first poll, but on Elasticsearch a claim is searchable only after the next
    # refresh (1 s): make them visible, so the query is timed on the state it will see, never on a lag.
    store.es.indices.refresh(index=store.index_pattern, expand_wildcards="open,hidden")
    times = []
    for _ in range(5):
        started = time.monotonic()
        pages = list(store.search_pages(query, selection.SORT, batch))
        times.append((time.monotonic() - started) * 1000)
        found = sum(len(page) for page in pages)
        assert found == 0, ("the backlog was claimed in the first polls: the poll query must find nothing; found "
                            f"{found}, e.g. {[(d.id, d.source.get('lme')) for d in pages[0][:3]]}")
    return statistics.median(times)


@pytest.mark.parametrize("alerts", [pytest.param(1000, id="1000"),
                                    pytest.param(20000, id="20000", marks=pytest.mark.soak)])
def test_backlog(alerts: int, *, es: Elasticsearch, space: kibana.Space, instant_llm: LLMSim,
                 worker_env: dict[str, str], own_redis: object, tmp_path: Path) -> None:
    from tests.faults.redis_server import OwnRedis

    assert isinstance(own_redis, OwnRedis)
    base = kibana.eligible(kibana.load_corpus())
    placed: dict[str, str] = {}
    for start in range(0, alerts, SEED_CHUNK):
        docs = kibana.variants(base, min(SEED_CHUNK, alerts - start), "load")
        for n, doc in enumerate(docs):
            kibana.set_field(doc, "kibana.alert.uuid", f"load-{start + n}")
            kibana.set_field(doc, "host.name", f"load-host-{start + n}")  # each alert its own model call
        placed.update(kibana.seed(es, space, docs))
    ledger = Ledger.of(es, placed)
    env = {**worker_env, "LME_ENRICH_LLM_URL": instant_llm.url, "LME_ENRICH_REDIS_URL": own_redis.url,
           "LME_ENRICH_CONCURRENCY": "4", "LME_ENRICH_BATCH_SIZE": "500", "LME_ENRICH_BACKFILL_WINDOW": "7d"}
    settings = load_settings(**{k.removeprefix("LME_ENRICH_").lower(): v for k, v in env.items()})
    store = AlertStore(make_client(settings), settings.alert_index)
    query = selection.work_query(settings)
    redis = own_redis.client()
    samples: list[dict[str, float]] = []
    started = time.monotonic()
    with celery_processes(env, tmp_path) as procs:
        start_pipeline(procs, assess_concurrency=4)
        next_mark = 0.0

        claimed_all = False

        def progress() -> bool:
            nonlocal next_mark, claimed_all
            done = ledger.finished()
            # The first poll claims page after page while the first pages' alerts are already assessed: the
            # poll query is timed once every claim is made (a slower store, as real Elasticsearch is, shows it).
            claimed_all = claimed_all or es.count(index=space.pattern, query={"exists": {"field": "lme.ai.status"}},
                                                  expand_wildcards="open,hidden")["count"] == alerts
            if done and claimed_all and (done >= next_mark * alerts or done == alerts):
                pids = [p.pid for p in procs.procs.values()]
                pids += [c for p in list(pids) for c in pool_children(p)]
                samples.append({"done": done, "poll_ms": _poll_query_ms(store, query, settings.batch_size),
                                "rss_mib": _rss_kib(pids) / 1024,
                                "redis_mib": int(redis.info("memory")["used_memory"]) / 2**20,
                                "t": time.monotonic() - started})
                next_mark += 0.2
            return done == alerts

        wait_for(progress, timeout=alerts * 0.5 + 120, interval=1.0, what=f"all {alerts} alerts final")
    elapsed = time.monotonic() - started
    report = check(ledger, instant_llm.chat_requests() if alerts <= 20000 else [], max_attempts=3,
                   allow_failed=False)
    for s in samples:
        print(f"\nLOAD done={s['done']:.0f} poll_ms={s['poll_ms']:.1f} rss_mib={s['rss_mib']:.0f} "
              f"redis_mib={s['redis_mib']:.1f} t={s['t']:.0f}s")
    print(f"\nRELIABILITY load backlog {alerts}: {report.line()} seconds={elapsed:.0f} "
          f"rate={alerts / elapsed:.1f}/s faults_injected=0")
    first, last = samples[1] if len(samples) > 2 else samples[0], samples[-1]
    # Memory flat: the workers hold no per-alert state (allow warm-up and allocator noise).
    assert last["rss_mib"] <= first["rss_mib"] * 1.3 + 30
    # Redis bounded: the waiting set shrinks as alerts finish; only small per-fingerprint cache entries stay.
    assert max(s["redis_mib"] for s in samples) < 16 + alerts * 2 / 1024
    # Poll cost does not grow with enriched alerts (the total number of alerts is the same throughout).
    assert last["poll_ms"] <= max(3 * samples[0]["poll_ms"], samples[0]["poll_ms"] + 50)
    store.es.close()
    redis.close()
