"""``python -m bench.ceiling``: how far any scheduler could beat LME's script on the storm corpus, per group window.

The storm benchmark runs lme-enrich at ~1.0x its physical limit (one model call per incident group, one per
distinct fingerprint among alerts alone), so the speed-up over LME's batch script is capped by the script's
model time over that limit. This computes the cap without running anything: the same alerts as ``bench.storm``
(the corpus in scope plus its critical copies), the calls each group window costs, their model time at the
calibrated simulator's rates (LME's speed, x1), split into reading the prompt and generating the answer, and
the cap with and without the answers (``answers_free``: if the model answered in zero tokens, an upper bound
no prompt change could pass). The window ``none`` has no time limit at all (every alert of one rule, host and
user is one group): the most grouping by the issue's key can give. Seconds; one slot, as on LME.
"""

from __future__ import annotations

from typing import Any

from bench import alerts, harness, model_time
from bench.report import emit, parser
from bench.report import r as rnd
from bench.storm import CRITICALS, corpus, critical_copies
from worker.settings import Settings, load_settings, parse_duration

DEFAULT_WINDOWS = ("0", "10m", "1h", "1d", "none")
UNBOUNDED_S = float(10 ** 9)
TARGET = 10.0  # issue 13's speed-up over the script


def offline_settings() -> Settings:
    """Settings that build prompts as the worker does; no server is contacted."""
    return load_settings(es_url="http://127.0.0.1:9", es_api_key="unused", llm_url="http://127.0.0.1:9",
                         llm_api_key="unused", redis_url="redis://127.0.0.1:6379/0")


def window_seconds(text: str) -> float:
    return UNBOUNDED_S if text == "none" else parse_duration(text).total_seconds()


def ceiling(settings: Settings, sources: list[dict[str, Any]], window: str, script_s: float, *, rates: harness.Rates,
            n_ctx: int) -> dict[str, Any]:
    """One window's calls, model time and cap on the speed-up over the script."""
    groups, calls, _ = model_time.group_calls(settings, sources, window_seconds(window), n_ctx=n_ctx)
    split = model_time.sequential_split(calls, rates.pp_rate, rates.tg_rate)
    reading, generating = sum(p for p, _ in split), sum(g for _, g in split)
    return {
        "window": window, "groups": len(groups), "calls": len(calls),
        "model_s": rnd(reading + generating), "prompt_s": rnd(reading), "answer_s": rnd(generating),
        "mean_call_s": rnd((reading + generating) / len(calls)) if calls else None,
        "cap": rnd(script_s / (reading + generating)) if calls else None,
        "cap_answers_free": rnd(script_s / reading) if calls and reading else None,
    }


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--windows", default=",".join(DEFAULT_WINDOWS),
                   help="comma-separated LME_ENRICH_GROUP_WINDOW values; 0 is grouping off, 'none' no time limit "
                        f"(default {','.join(DEFAULT_WINDOWS)})")
    args = p.parse_args(argv)
    windows = [w.strip() for w in args.windows.split(",") if w.strip()]
    for w in windows:
        try:
            window_seconds(w)
        except ValueError as exc:
            p.error(f"--windows: {w!r}: {exc}")
    docs = corpus(args.smoke)
    crits = critical_copies(docs, 2 if args.smoke else CRITICALS)
    sources = [d for d in docs if alerts.in_scope(d)] + crits
    settings = offline_settings()
    rates = harness.Rates(slots=1)
    n_ctx = 16384  # the simulator's default context, one slot
    script_s = model_time.script_seconds(settings, sources, pp_rate=rates.pp_rate, tg_rate=rates.tg_rate, n_ctx=n_ctx)
    rows = [ceiling(settings, sources, w, script_s, rates=rates, n_ctx=n_ctx) for w in windows]
    result = {"benchmark": "ceiling", "alerts": len(sources), "rates": rates.describe(), "script_calls": len(sources),
              "script_model_s": rnd(script_s), "target": TARGET, "target_model_s": rnd(script_s / TARGET),
              "windows": rows}
    lines = [f"ceiling: {len(sources)} alerts; LME's script: {len(sources)} calls, {script_s:.1f}s of model time at "
             f"x1; {TARGET:g}x needs at most {script_s / TARGET:.1f}s"]
    lines += [f"  window {r['window']:>4}: {r['groups']} groups, {r['calls']} calls, model {r['model_s']}s "
              f"(prompt {r['prompt_s']}s + answers {r['answer_s']}s): cap x{r['cap']}, "
              f"x{r['cap_answers_free']} if answers were free" for r in rows]
    emit(result, args.json, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
