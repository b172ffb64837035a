"""``python -m bench.storm``: the alert corpus replayed as a storm of new alerts, lme-enrich vs LME's script.

The corpus (all docs, duplicate ids made distinct, fresh timestamps, Kibana's layout) is written at once;
then critical copies of some alerts arrive one at a time, at 1/5, 2/5, 3/5 and 4/5 of the storm (counted
in answered alerts). The simulator runs LME-like CPU rates with one slot (``--scale`` or ``--quick`` speed
both rates up by the same factor). Then LME's batch script (``bench.baseline``) answers the same alerts,
with the same injections, against the same servers. Reports makespan, model busy time, LLM calls, time to
enrichment of critical/high alerts, the physical limit and peak worker RSS.

``--grouping both`` (the default) runs lme-enrich twice in the same run, incident groups on
(``LME_ENRICH_GROUP_WINDOW`` 10m) and off (0), on fresh spaces with Redis emptied in between (so the second
run gets no answer cached by the first). The physical limit is one model call per incident group (its
group prompt) with grouping on, one per distinct fingerprint with it off. The poll interval is scaled
with the rates (5 s at x1, so 1.25 s at x4), but never below lme-enrich's minimum of 1 s: at --quick's x80
it is 16 times too long for the rates, see BENCHMARKS.md.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from bench import alerts, baseline, harness, model_time, procinfo
from bench.report import emit, machine, parser
from bench.report import r as rnd
from tests import kibana
from worker.alerts import alert
from worker.assessing import prompt
from worker.settings import Settings, load_settings

CRITICALS = 4
QUICK_SCALE = 80.0
SMOKE_SCALE = 400.0
SMOKE_ALERTS = 24
POLL_AT_X1_S = 5.0  # the poll interval at LME's rates; scaled with --scale
MIN_POLL_S = 1.0  # lme-enrich's minimum (worker.settings)
GROUP_WINDOW = "10m"  # the product's default


def settings_for(env: dict[str, str]) -> Settings:
    return load_settings(**{k.removeprefix("LME_ENRICH_").lower(): v for k, v in env.items()})


def critical_copies(docs: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """``n`` critical alerts: copies of in-scope alerts of different rules, severity critical, risk 99."""
    ranked = sorted((d for d in docs if alerts.in_scope(d)),
                    key=lambda d: -float(alert.first(d, "kibana.alert.risk_score") or 0))
    chosen: list[dict[str, Any]] = []
    rules: set[str] = set()
    for doc in ranked:
        rule = str(alert.first(doc, "kibana.alert.rule.name"))
        if rule not in rules:
            rules.add(rule)
            chosen.append(doc)
        if len(chosen) == n:
            break
    made = []
    for i, doc in enumerate(chosen):
        crit = copy.deepcopy(doc)
        kibana.set_field(crit, "kibana.alert.uuid", f"critical-{i}-{alert.first(doc, 'kibana.alert.uuid')}")
        kibana.set_field(crit, "kibana.alert.severity", "critical")
        kibana.set_field(crit, "kibana.alert.risk_score", 99)
        kibana.set_field(crit, "kibana.alert.workflow_status", "open")
        made.append(crit)
    return made


def corpus(smoke: bool) -> list[dict[str, Any]]:
    docs = alerts.distinct_ids(kibana.load_corpus())
    return docs[:SMOKE_ALERTS] if smoke else docs


def token_means(requests: list[dict[str, Any]]) -> dict[str, float | None]:
    """Mean prompt, prefix-cached and completion tokens of the model calls (the simulator's counts)."""
    def mean(key: str) -> float | None:
        values = [float(r[key]) for r in requests if r.get(key) is not None]
        return rnd(sum(values) / len(values), 1) if values else None

    return {"prompt": mean("prompt_tokens"), "cached": mean("cached_tokens"), "completion": mean("completion_tokens")}


def latency_stats(created: dict[str, float], finished: dict[str, float], ids: list[str]) -> dict[str, float | None]:
    waits = [finished[i] - created[i] for i in ids if i in finished and i in created]
    return {"n": len(waits), "mean_s": rnd(sum(waits) / len(waits)) if waits else None,
            "p95_s": rnd(alerts.percentile(waits, 95)), "max_s": rnd(max(waits)) if waits else None}


@dataclass(frozen=True)
class Plan:
    """What both contenders get: the storm, the critical alerts and when those arrive."""

    docs: list[dict[str, Any]]
    crits: list[dict[str, Any]]
    inject_after: tuple[int, ...]  # critical alert i arrives once inject_after[i] alerts are answered
    deadline_s: float

    @property
    def expected(self) -> int:
        return sum(1 for d in self.docs if alerts.in_scope(d)) + len(self.crits)


def run_ours(st: harness.Stack, plan: Plan, env_extra: dict[str, str]) -> dict[str, Any]:
    space = st.space("storm")
    flush = redis.Redis.from_url(st.redis_url)
    try:
        flush.flushdb()  # nothing cached, grouped or queued by an earlier run in this one
    finally:
        flush.close()
    pipeline = st.start_pipeline(st.pipeline_env(space, **env_extra))
    st.sim_clear()
    before = st.sim_stats()
    cpu_before = pipeline.cpu()
    sampler = procinfo.RssSampler(pipeline.roots, interval=0.5).start()

    def done_at_least(n: int) -> Callable[[], bool]:
        def check() -> bool:
            pipeline.check_alive()
            return alerts.count(st.client, space, {"term": {"lme.ai.status": "done"}}) >= n
        return check

    try:
        t0 = time.time()
        placed = alerts.seed(st.client, space, plan.docs)
        created = {i: at for i, (_, at) in placed.items()}
        for crit, after_n in zip(plan.crits, plan.inject_after, strict=True):
            harness.wait_for(done_at_least(after_n), timeout=plan.deadline_s, interval=0.1,
                             what=f"{after_n} alerts done before a critical one arrives")
            injected = alerts.seed(st.client, space, [crit])
            created.update({i: at for i, (_, at) in injected.items()})
        alerts.wait_finished(st.client, space, plan.expected, plan.deadline_s, pipeline=pipeline)
    finally:
        sampler.stop()
    after = st.sim_stats()
    cpu_after = pipeline.cpu()
    found = alerts.results(st.client, space, len(plan.docs) + len(plan.crits) + 10)
    st.stop_pipeline(pipeline)
    finished = {i: at for i, ai in found.items() if (at := harness.iso_to_epoch(ai.get("enriched_at")))}
    severities = {i: str(ai.get("_severity")) for i, ai in found.items()}
    slowest = max(finished, key=lambda i: finished[i] - created.get(i, t0))
    return {
        "slowest": {"id": slowest, "wait_s": rnd(finished[slowest] - created.get(slowest, t0)),
                    **{k: found[slowest].get(k) for k in ("source", "attempts", "cached", "error_kind", "error")}},
        "t0": t0, "created": created, "finished": finished, "severities": severities,
        "makespan_s": max(finished.values()) - t0,
        "llm_calls": len(calls := st.chat_requests()), "tokens": token_means(calls),
        "model_busy_s": after["cpu_busy_seconds"] - before["cpu_busy_seconds"],
        **alerts.outcomes(found),
        "rss": sampler.summary(["poll", "assess", "beat"]),
        "cpu_s": {k: rnd(cpu_after[k] - cpu_before[k]) for k in cpu_after},
    }


def run_baseline(st: harness.Stack, plan: Plan, model: str) -> dict[str, Any]:
    space = st.space("base")
    st.sim_clear()
    before = st.sim_stats()
    created: dict[str, float] = {}

    def on_answer(n: int) -> None:
        for crit, after_n in zip(plan.crits, plan.inject_after, strict=True):
            if n == after_n:
                created.update({i: at for i, (_, at) in alerts.seed(st.client, space, [crit]).items()})

    t0 = time.time()
    created.update({i: at for i, (_, at) in alerts.seed(st.client, space, plan.docs).items()})
    with st.llm_client() as llm:
        run = baseline.run(st.client, llm, model, space.pattern, on_answer=on_answer,
                           deadline=time.time() + plan.deadline_s)
    after = st.sim_stats()
    return {
        "tokens": token_means(st.chat_requests()),
        "created": created, "finished": run.finished, "makespan_s": max(run.finished.values()) - t0,
        "llm_calls": run.calls, "model_busy_s": after["cpu_busy_seconds"] - before["cpu_busy_seconds"],
    }


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--scale", type=float, help=f"speed up both simulated rates by this factor "
                   f"(default 1; --quick: {QUICK_SCALE:g})")
    p.add_argument("--poll-interval", help="LME_ENRICH_POLL_INTERVAL (default 5s divided by the scale, at least "
                   "1s: 1.25s at x4, 1s at --quick/--smoke)")
    p.add_argument("--grouping", choices=("both", "on", "off"), default="both",
                   help=f"run lme-enrich with incident groups on (LME_ENRICH_GROUP_WINDOW={GROUP_WINDOW}), off (0), "
                        "or both in the same run (default)")
    p.add_argument("--skip-baseline", action="store_true", help="measure lme-enrich only")
    harness.add_es_option(p)
    p.add_argument("--llm", choices=("sim", "real"), default="sim",
                   help="the LLM simulator (default) or the real chain of tests.realstack.llm: llama-server + the "
                        "pinned GGUF behind LiteLLM 1.82.6, one slot, at its own speed (--scale does not apply)")
    p.add_argument("--llm-nice", type=int, help="--llm real: run the chain at this niceness (root, e.g. -10, so "
                   "that other work on a busy machine does not slow the model down)")
    p.add_argument("--alerts", type=int, help="only the first N corpus alerts (e.g. to bound a --llm real run)")
    args = p.parse_args(argv)
    harness.stop_on_sigterm()
    scale = args.scale or (SMOKE_SCALE if args.smoke else QUICK_SCALE if args.quick else 1.0)
    if args.llm == "real":
        scale = 1.0  # the limit below uses the simulator's default rates: those calibrated on the real chain
    poll = args.poll_interval or f"{max(POLL_AT_X1_S / scale, MIN_POLL_S):g}s"
    modes = ("on", "off") if args.grouping == "both" else (args.grouping,)
    rates = harness.Rates(slots=1, scale=scale)
    docs = corpus(args.smoke)[:args.alerts]
    crits = critical_copies(docs, 2 if args.smoke or len(docs) < 40 else CRITICALS)
    scoped = [d for d in docs if alerts.in_scope(d)]
    # Spread through the storm, one at a time: each measures a critical alert arriving mid-storm.
    inject_after = tuple(max(len(scoped) * (i + 1) // (len(crits) + 1), 1) for i in range(len(crits)))
    env_extra = {"LME_ENRICH_POLL_INTERVAL": poll}
    with harness.stack(rates, args.keep, args.es, llm_mode=args.llm, llm_niceness=args.llm_nice) as st:
        settings = settings_for(st.pipeline_env(kibana.Space("x"), **env_extra))
        llm_info = st.real_llm.describe() if st.real_llm is not None else None
        n_ctx = 16384 // rates.slots  # the simulator's default --ctx, split across slots
        limit = model_time.physical_limit(settings, scoped + crits, pp_rate=rates.pp_rate, tg_rate=rates.tg_rate,
                                          slots=rates.slots, n_ctx=n_ctx)
        worst = sum(model_time.sequential_seconds(
            [model_time.call(model_time.worker_body(settings, prompt.build(d).messages), n_ctx)
             for d in scoped + crits], rates.pp_rate, rates.tg_rate))
        window_s = settings_for({**st.pipeline_env(kibana.Space("x"), **env_extra),
                                 "LME_ENRICH_GROUP_WINDOW": GROUP_WINDOW}).group_window.total_seconds()
        glimit = model_time.group_limit(settings, scoped + crits, window_s, pp_rate=rates.pp_rate,
                                        tg_rate=rates.tg_rate, slots=rates.slots, n_ctx=n_ctx)
        slack = 6 if args.llm == "real" else 2  # a real model's answers vary in length and speed
        runs: dict[str, dict[str, Any]] = {}
        for mode in modes:
            window = {"LME_ENRICH_GROUP_WINDOW": GROUP_WINDOW if mode == "on" else "0"}
            runs[mode] = run_ours(st, Plan(docs, crits, inject_after, slack * worst + 180), {**env_extra, **window})
        ours = runs[modes[0]]
        base: dict[str, Any] | None = None
        if not args.skip_baseline:
            base_worst = model_time.script_seconds(settings, scoped + crits, pp_rate=rates.pp_rate,
                                                   tg_rate=rates.tg_rate, n_ctx=n_ctx)
            base = run_baseline(st, Plan(docs, crits, inject_after, slack * base_worst + 180), settings.llm_model)
    poll_s = settings.poll_interval.total_seconds()
    crit_ids = [f for f in ours["created"] if f.startswith("critical-")]
    high_ids = [i for i, s in ours["severities"].items() if s == "high"]
    ours_crit = latency_stats(ours["created"], ours["finished"], crit_ids)
    limits = {"on": (glimit.seconds, glimit.mean_call_s), "off": (limit.seconds, limit.mean_call_s)}

    def summary(mode: str, run: dict[str, Any]) -> dict[str, Any]:
        limit_s, mean_call = limits[mode]
        crit = latency_stats(run["created"], run["finished"], [f for f in run["created"] if f.startswith("critical-")])
        return {
            "group_window": GROUP_WINDOW if mode == "on" else "0",
            "makespan_s": rnd(run["makespan_s"]), "llm_calls": run["llm_calls"],
            "model_busy_s": rnd(run["model_busy_s"]), "tokens_per_call": run["tokens"],
            "done": run["done"], "failed": run["failed"], "cached": run["cached"], "coalesced": run["coalesced"],
            "limit_s": rnd(limit_s), "over_limit": rnd(run["makespan_s"] / limit_s) if limit_s else None,
            "speedup": rnd(base["makespan_s"] / run["makespan_s"]) if base is not None else None,
            "critical_p95_s": crit["p95_s"], "critical": crit,
            "critical_target_s": rnd(poll_s + 2 * mean_call),
            "high": latency_stats(run["created"], run["finished"], high_ids),
            "worker_rss_peak_mib": run["rss"].get("peak_mib"), "slowest_alert": run["slowest"],
        }

    main_limit_s, main_mean_call = limits[modes[0]]
    result: dict[str, Any] = {
        "benchmark": "storm", "mode": "smoke" if args.smoke else "quick" if args.quick else
        "full" if scale == 1 else f"scaled x{scale:g}",
        "machine": machine(), "elasticsearch": args.es, "llm": args.llm,
        "rates": rates.describe() if llm_info is None else {"real_chain": llm_info, "limit_rates": rates.describe()},
        "poll_interval_s": poll_s, "poll_interval_at_x1_s": rnd(poll_s * scale),
        "poll_scaled": abs(poll_s * scale - POLL_AT_X1_S) < 1e-6,
        "grouping": modes[0], "grouping_runs": {m: summary(m, r) for m, r in runs.items()},
        "group_limit": {"window": GROUP_WINDOW, "groups": glimit.groups, "groups_of_two_or_more": glimit.multi,
                        "calls": glimit.calls, "limit_s": rnd(glimit.seconds), "mean_call_s": rnd(glimit.mean_call_s),
                        "group_prompt_tokens_mean": rnd(glimit.group_prompt_tokens_mean, 1)
                        if glimit.group_prompt_tokens_mean is not None else None},
        "fingerprint_limit_s": rnd(limit.seconds),
        "alerts": len(docs), "alerts_in_scope": len(scoped) + len(crits), "critical_injected": len(crits),
        "makespan_s": rnd(ours["makespan_s"]),
        "llm_calls": ours["llm_calls"], "model_busy_s": rnd(ours["model_busy_s"]), "tokens_per_call": ours["tokens"],
        "done": ours["done"], "failed": ours["failed"], "cached": ours["cached"], "coalesced": ours["coalesced"],
        "distinct_fingerprints": limit.fingerprints, "limit_s": rnd(main_limit_s),
        "over_limit": rnd(ours["makespan_s"] / main_limit_s) if main_limit_s else None,
        "mean_call_s": rnd(main_mean_call),
        "critical_p95_s": ours_crit["p95_s"], "critical": ours_crit,
        "critical_target_s": rnd(poll_s + 2 * main_mean_call),
        "high": latency_stats(ours["created"], ours["finished"], high_ids),
        "worker_rss": ours["rss"], "worker_cpu_s": ours["cpu_s"], "slowest_alert": ours["slowest"],
        "baseline_makespan_s": None, "baseline_llm_calls": None, "speedup": None,
    }
    if base is not None:
        result.update({
            "baseline_makespan_s": rnd(base["makespan_s"]), "baseline_llm_calls": base["llm_calls"],
            "baseline_model_busy_s": rnd(base["model_busy_s"]), "baseline_tokens_per_call": base["tokens"],
            "speedup": rnd(base["makespan_s"] / ours["makespan_s"]),
            "baseline_critical": latency_stats(base["created"], base["finished"],
                                               [i for i in base["created"] if i.startswith("critical-")]),
            "baseline_high": latency_stats(base["created"], base["finished"], high_ids),
        })
    lines = [
        f"storm: {result['alerts_in_scope']} alerts in scope, {limit.fingerprints} distinct fingerprints, "
        f"{glimit.groups} incident groups ({glimit.calls} calls at one per group), "
        f"{'the real LLM chain' if args.llm == 'real' else f'rates x{scale:g}'}, 1 slot, poll {poll_s:g}s",
    ]
    for mode, row in result["grouping_runs"].items():
        lines.append(
            f"  lme-enrich, grouping {mode}: makespan {row['makespan_s']}s, {row['llm_calls']} LLM calls, "
            f"model busy {row['model_busy_s']}s, limit {row['limit_s']}s (x{row['over_limit']}), "
            f"critical p95 {row['critical_p95_s']}s (target {row['critical_target_s']}s); speedup x{row['speedup']}")
    lines.append(f"  baseline:   makespan {result['baseline_makespan_s']}s, {result['baseline_llm_calls']} LLM "
                 f"calls")
    emit(result, args.json, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

