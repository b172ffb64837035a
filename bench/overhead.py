"""``python -m bench.overhead``: lme-enrich's own cost with an instant model, vs LME's script.

5,000 alerts (variants of the in-scope corpus with distinct ids) are written first; then the pipeline
starts and works through them with the simulator in ``--instant`` mode (2 slots, concurrency 2), so
whatever time and CPU it takes is the worker's own, Elasticsearch's and Redis's. Throughput runs from the
first claim to the last ``enriched_at``. CPU seconds per alert are read from /proc for each process tree
(poll worker, assess workers, beat, the two test servers); worker RSS is sampled every second to show
whether it stays flat. Then LME's script answers the same alerts against the same servers.
"""

from __future__ import annotations

import time
from typing import Any

from bench import alerts, baseline, harness, procinfo
from bench.report import emit, machine, parser
from bench.report import r as rnd
from tests import kibana
from tests.fakes.llm.server import SimConfig

ALERTS = 5000
QUICK_ALERTS = 1000
SMOKE_ALERTS = 40
SLOTS = 2


# --no-coalescing: nothing may be shared between alerts (no cache, no coalescing, no incident groups).
NO_COALESCING_ENV = {"LME_ENRICH_CACHE_ENABLED": "false", "LME_ENRICH_GROUP_WINDOW": "0"}


def corpus_variants(n: int, distinct: bool = False) -> list[dict[str, Any]]:
    """``n`` in-scope corpus alerts with distinct ids; ``distinct``: each on a host of its own too, so every
    alert has its own fingerprint (and group key) and nothing coalesces."""
    scoped = [d for d in alerts.distinct_ids(kibana.load_corpus()) if alerts.in_scope(d)]
    docs = kibana.variants(scoped, n, "overhead")
    if distinct:
        for i, doc in enumerate(docs):
            kibana.set_field(doc, "host.name", f"ovh-host-{i}")
    return docs


def per_alert(before: dict[str, float], after: dict[str, float], n: int) -> dict[str, float | None]:
    return {name: rnd((after[name] - before[name]) / n, 5) for name in after}


def run_ours(st: harness.Stack, docs: list[dict[str, Any]], deadline_s: float,
             env_extra: dict[str, str] | None = None) -> dict[str, Any]:
    space = st.space("ovh")
    seeded_at = time.monotonic()
    alerts.seed(st.client, space, docs, chunk=500)
    seed_s = time.monotonic() - seeded_at
    st.sim_clear()
    env = st.pipeline_env(space, LME_ENRICH_POLL_INTERVAL="1s", **(env_extra or {}))
    pipeline = st.start_pipeline(env)
    ready = time.time()
    cpu_before = {**pipeline.cpu(), **st.cpu()}
    sampler = procinfo.RssSampler(pipeline.roots, interval=1.0).start()
    try:
        alerts.wait_finished(st.client, space, len(docs), deadline_s, pipeline=pipeline, interval=1.0)
    finally:
        sampler.stop()
    cpu_after = {**pipeline.cpu(), **st.cpu()}
    memory_at_end = procinfo.memory_mib(pipeline.roots())  # RSS and PSS, once the work is done
    found = alerts.results(st.client, space, len(docs) + 10)
    st.stop_pipeline(pipeline)
    claimed = [at for ai in found.values() if (at := harness.iso_to_epoch(ai.get("claimed_at")))]
    finished = [at for ai in found.values() if (at := harness.iso_to_epoch(ai.get("enriched_at")))]
    start = min(claimed) if claimed else ready
    return {
        "seed_s": seed_s, "busy_s": max(finished) - start, "wall_s": max(finished) - ready,
        **alerts.outcomes(found),
        "llm_calls": len(st.chat_requests()),
        "cpu_per_alert": per_alert(cpu_before, cpu_after, len(docs)),
        "rss": sampler.summary(["poll", "assess", "beat"]), "memory_at_end": memory_at_end,
    }


def run_baseline(st: harness.Stack, docs: list[dict[str, Any]], model: str, deadline_s: float) -> dict[str, Any]:
    space = st.space("base")
    alerts.seed(st.client, space, docs, chunk=500)
    st.sim_clear()
    cpu_before = {**st.cpu(), "script": procinfo.own_cpu_seconds()}
    with st.llm_client() as llm:
        run = baseline.run(st.client, llm, model, space.pattern, deadline=time.time() + deadline_s)
    cpu_after = {**st.cpu(), "script": procinfo.own_cpu_seconds()}
    return {"busy_s": run.makespan, "llm_calls": run.calls, "answered": len(run.finished),
            "cpu_per_alert": per_alert(cpu_before, cpu_after, len(docs))}


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--alerts", type=int, help=f"how many alerts (default {ALERTS}; --quick: {QUICK_ALERTS})")
    p.add_argument("--skip-baseline", action="store_true", help="measure lme-enrich only")
    p.add_argument("--no-coalescing", action="store_true",
                   help="every alert on a host of its own, the cache off and incident groups off: one LLM call "
                        "per alert, so the figure is the cost of an alert rather than of coalescing")
    harness.add_es_option(p)
    args = p.parse_args(argv)
    harness.stop_on_sigterm()
    n = args.alerts or (SMOKE_ALERTS if args.smoke else QUICK_ALERTS if args.quick else ALERTS)
    docs = corpus_variants(n, distinct=args.no_coalescing)
    rates = harness.Rates(slots=SLOTS, instant=True)
    with harness.stack(rates, args.keep, args.es) as st:
        ours = run_ours(st, docs, deadline_s=60 + n * 0.5,
                        env_extra=NO_COALESCING_ENV if args.no_coalescing else None)
        base = None if args.skip_baseline else run_baseline(st, docs, SimConfig().models[0], 60 + n * 0.5)
    result: dict[str, Any] = {
        "benchmark": "overhead", "mode": "smoke" if args.smoke else "quick" if args.quick else "full",
        "machine": machine(), "elasticsearch": args.es, "rates": rates.describe(), "alerts": n,
        "coalescing": not args.no_coalescing,
        "alerts_per_s": rnd(n / ours["busy_s"], 1), "seconds": rnd(ours["busy_s"]),
        "wall_s_from_ready": rnd(ours["wall_s"]), "seed_s": rnd(ours["seed_s"]),
        "done": ours["done"], "failed": ours["failed"], "cached": ours["cached"], "coalesced": ours["coalesced"],
        "llm_calls": ours["llm_calls"],
        "cpu_s_per_alert": ours["cpu_per_alert"], "worker_rss": ours["rss"],
        "worker_memory_at_end": ours["memory_at_end"],
        "baseline_alerts_per_s": None,
    }
    if base is not None:
        result.update({
            "baseline_alerts_per_s": rnd(n / base["busy_s"], 1), "baseline_seconds": rnd(base["busy_s"]),
            "baseline_llm_calls": base["llm_calls"], "baseline_cpu_s_per_alert": base["cpu_per_alert"],
        })
    lines = [
        f"overhead: {n} alerts, instant model, {SLOTS} slots"
        f"{', no coalescing (distinct hosts, cache and groups off)' if args.no_coalescing else ''}",
        f"  lme-enrich: {result['alerts_per_s']} alerts/s ({result['seconds']}s), {ours['llm_calls']} LLM calls, "
        f"{ours['cached']} cached, {ours['coalesced']} coalesced, peak worker RSS {ours['rss'].get('peak_mib')} MiB "
        f"(at the end: RSS {ours['memory_at_end']['rss_mib']}, PSS {ours['memory_at_end']['pss_mib']} MiB)",
        f"  baseline:   {result['baseline_alerts_per_s']} alerts/s",
    ]
    emit(result, args.json, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
