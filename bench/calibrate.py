"""``python -m bench.calibrate``: measure the real LLM chain with lme-enrich's own prompts.

Starts the real chain (``tests.realstack.llm``: llama-server from source + the pinned GGUF behind LiteLLM
1.82.6 over HTTPS, one slot), then sends the body lme-enrich's LLM client sends (``worker.assessing.prompt.build`` on
corpus alerts, one per distinct fingerprint) in rounds. Each round takes new alerts (llama-server keeps whole
prompts in a RAM cache: a repeated prompt is not re-read), two of each rule one after the other, so every
other call follows a call for the same rule (the rule's fields open the prompt: llama.cpp's prefix cache)
and the rest follow another rule. Calls alternate between
the proxy and llama-server directly. From llama.cpp's ``timings`` of every answer it derives:

- prompt processing and generation rates (tokens/s, median and spread): llama.cpp's own tokens, and the
  prompt rate in the simulator's tokens (``tests.fakes.llm.tokens``), which is what the simulator's
  ``--pp-rate`` must be for a prompt to take as long as on the real server;
- the prefix cache: cached tokens and prompt time after a call of the same rule vs of another rule;
- LiteLLM's own time per request: (wall - llama.cpp's time) through the proxy minus the same directly, and a
  tiny cached request alternately through both;
- answer length against prompt length (least-squares line and a table by prompt-size third).

The machine may be busy: every figure is a median over all calls with its spread (min-max and
interquartile), and the 1-minute load average is recorded per round.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import alerts, model_time, realllm
from bench.harness import BenchError, stop_on_sigterm
from bench.report import emit, machine, parser
from bench.report import r as rnd
from tests import kibana
from tests.fakes.llm.answers import expected_answer
from tests.fakes.llm.tokens import common_prefix, prompt_tokens
from worker.alerts import alert
from worker.assessing import prompt
from worker.settings import Settings, load_settings

KEY = "sk-calibrate"
DEFAULT_PAIRS = 4
DEFAULT_ROUNDS = 3


def settings() -> Settings:
    """lme-enrich's defaults (model alias, max_tokens, temperature); the URLs are never used."""
    return load_settings(es_url="http://127.0.0.1:9", es_username="elastic", es_password="unused",
                         llm_url="https://127.0.0.1:9", llm_api_key=KEY)


def pick_pairs(n_pairs: int) -> list[dict[str, Any]]:
    """``n_pairs`` rules with two distinct fingerprints each, as A1 A2 B1 B2 ... (corpus order)."""
    st = settings()
    by_rule: dict[str, list[dict[str, Any]]] = {}
    seen: set[str] = set()
    for doc in alerts.distinct_ids(kibana.load_corpus()):
        if not alerts.in_scope(doc):
            continue
        fp = model_time.fingerprint_of(st, doc)
        if fp in seen:
            continue
        seen.add(fp)
        by_rule.setdefault(str(alert.first(doc, "kibana.alert.rule.name")), []).append(doc)
    rules = [docs for docs in by_rule.values() if len(docs) >= 2]
    if len(rules) < n_pairs:
        raise BenchError(f"the corpus has only {len(rules)} rules with two distinct fingerprints")
    # Spread over rules of different sizes: every len(rules)/n_pairs-th rule.
    step = len(rules) / n_pairs
    return [doc for i in range(n_pairs) for doc in rules[int(i * step)][:2]]


def timed(client: Any, path: str, body: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    t0 = time.perf_counter()
    response = client.post(path, json=body)
    wall = time.perf_counter() - t0
    if response.status_code != 200:
        raise BenchError(f"{path} answered {response.status_code}: {response.text[:300]}")
    data: dict[str, Any] = response.json()
    return wall, data


def spread(values: Sequence[float], digits: int = 1) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "median": None, "min": None, "max": None, "p25": None, "p75": None}
    ordered = sorted(values)
    q = statistics.quantiles(ordered, n=4) if len(ordered) >= 2 else [ordered[0]] * 3
    return {"n": len(ordered), "median": rnd(statistics.median(ordered), digits), "min": rnd(ordered[0], digits),
            "max": rnd(ordered[-1], digits), "p25": rnd(q[0], digits), "p75": rnd(q[2], digits)}


def fit(xs: Sequence[float], ys: Sequence[float]) -> dict[str, float | None]:
    """Least squares y = a + b·x, with Pearson's r."""
    if len(xs) < 3 or len(set(xs)) < 2:
        return {"intercept": None, "slope": None, "r": None}
    slope, intercept = statistics.linear_regression(xs, ys)
    corr = statistics.correlation(xs, ys) if len(set(ys)) > 1 else 0.0
    return {"intercept": rnd(intercept, 1), "slope": rnd(slope, 4), "r": rnd(corr, 3)}


def measure(chain: realllm.RealChain, docs: list[dict[str, Any]], rounds: int, n_ctx: int) -> list[dict[str, Any]]:
    st = settings()
    bodies = [model_time.worker_body(st, prompt.build(d).messages) for d in docs]
    rules = [str(alert.first(d, "kibana.alert.rule.name")) for d in docs]
    calls: list[dict[str, Any]] = []
    previous_rule: str | None = None
    previous_sim: tuple[str, ...] = ()
    per_round = len(docs) // rounds
    with chain.client() as proxy, chain.client(direct=True) as direct:
        for rnd_i in range(rounds):
            load = os.getloadavg()[0]
            part = slice(rnd_i * per_round, (rnd_i + 1) * per_round)
            for i, (body, rule) in enumerate(zip(bodies[part], rules[part], strict=True)):
                via = "proxy" if (i + rnd_i) % 2 == 0 else "direct"
                wall, data = timed(proxy if via == "proxy" else direct, "/v1/chat/completions", body)
                t = data.get("timings") or {}
                usage = data.get("usage") or {}
                sim_prompt = prompt_tokens(body["messages"])
                sim_cached = min(common_prefix(previous_sim, sim_prompt), len(sim_prompt) - 1)
                server_s = (float(t.get("prompt_ms", 0)) + float(t.get("predicted_ms", 0))) / 1000
                calls.append({
                    "round": rnd_i, "index": i, "rule": rule, "via": via, "load1": round(load, 2),
                    "after_same_rule": previous_rule == rule, "wall_s": round(wall, 4), "server_s": round(server_s, 4),
                    "prompt_tokens": usage.get("prompt_tokens"), "completion_tokens": usage.get("completion_tokens"),
                    "cache_n": t.get("cache_n"), "prompt_n": t.get("prompt_n"), "prompt_ms": t.get("prompt_ms"),
                    "predicted_n": t.get("predicted_n"), "predicted_ms": t.get("predicted_ms"),
                    "finish_reason": (data.get("choices") or [{}])[0].get("finish_reason"),
                    "sim_prompt_tokens": len(sim_prompt), "sim_uncached_tokens": len(sim_prompt) - sim_cached,
                    "sim_completion_tokens": expected_answer(body, n_ctx=n_ctx).completion_tokens,
                })
                print(f"  round {rnd_i + 1}/{rounds} call {i + 1}/{per_round} ({via}, "
                      f"{'same rule' if previous_rule == rule else 'new rule'}): {wall:.1f} s, "
                      f"prompt {t.get('prompt_n')}+{t.get('cache_n')} cached, {t.get('predicted_n')} generated",
                      flush=True)
                previous_rule, previous_sim = rule, sim_prompt
    return calls


def overhead_tiny(chain: realllm.RealChain, n: int) -> list[float]:
    """The same one-token, fully cached request alternately through the proxy and straight to llama-server."""
    body = {"model": realllm.MODEL_ALIAS, "max_tokens": 1, "temperature": 0,
            "messages": [{"role": "user", "content": "Say OK."}]}
    diffs = []
    with chain.client() as proxy, chain.client(direct=True) as direct:
        timed(proxy, "/v1/chat/completions", body)
        for _ in range(n):
            via_proxy, _ = timed(proxy, "/v1/chat/completions", body)
            straight, _ = timed(direct, "/v1/chat/completions", body)
            diffs.append((via_proxy - straight) * 1000)
    return diffs


def summarise(calls: list[dict[str, Any]], tiny_ms: list[float]) -> dict[str, Any]:
    ok = [c for c in calls if c["prompt_ms"] and c["predicted_ms"]]
    pp = [c["prompt_n"] / c["prompt_ms"] * 1000 for c in ok if c["prompt_n"] >= 64]
    pp_sim = [c["sim_uncached_tokens"] / c["prompt_ms"] * 1000 for c in ok if c["prompt_n"] >= 64]
    tg = [c["predicted_n"] / c["predicted_ms"] * 1000 for c in ok if c["predicted_n"] >= 8]
    tok_ratio = [c["sim_prompt_tokens"] / c["prompt_tokens"] for c in ok if c["prompt_tokens"]]

    def cache_side(same: bool) -> dict[str, Any]:
        side = [c for c in ok if c["after_same_rule"] is same and not (c["round"] == 0 and c["index"] == 0)]
        return {"calls": len(side), "cached_tokens": spread([c["cache_n"] or 0 for c in side], 0),
                "prompt_tokens": spread([c["prompt_tokens"] for c in side], 0),
                "cached_share": spread([(c["cache_n"] or 0) / c["prompt_tokens"] for c in side], 3),
                "prompt_s": spread([c["prompt_ms"] / 1000 for c in side], 3),
                "sim_cached_tokens": spread([c["sim_prompt_tokens"] - c["sim_uncached_tokens"] for c in side], 0)}

    def proxy_extra(via: str) -> list[float]:
        return [(c["wall_s"] - c["server_s"]) * 1000 for c in ok if c["via"] == via]

    extra_proxy, extra_direct = proxy_extra("proxy"), proxy_extra("direct")
    by_size = sorted(ok, key=lambda c: c["prompt_tokens"])
    thirds = [by_size[i * len(by_size) // 3:(i + 1) * len(by_size) // 3] for i in range(3)]
    return {
        "calls": len(calls),
        "pp_tok_s": spread(pp), "pp_sim_tok_s": spread(pp_sim), "tg_tok_s": spread(tg),
        "sim_tokens_per_real_token": spread(tok_ratio, 3),
        "cache_after_same_rule": cache_side(True), "cache_after_other_rule": cache_side(False),
        "proxy_overhead_ms": {
            "from_calls": rnd(statistics.median(extra_proxy) - statistics.median(extra_direct), 1)
            if extra_proxy and extra_direct else None,
            "wall_minus_server_proxy_ms": spread(extra_proxy), "wall_minus_server_direct_ms": spread(extra_direct),
            "tiny_request": spread(tiny_ms)},
        "answer": {
            "completion_tokens": spread([c["completion_tokens"] for c in ok], 0),
            "sim_completion_tokens": spread([c["sim_completion_tokens"] for c in ok], 0),
            "finish_reasons": {r: sum(1 for c in ok if c["finish_reason"] == r)
                               for r in sorted({str(c["finish_reason"]) for c in ok})},
            "vs_prompt_fit": fit([float(c["prompt_tokens"]) for c in ok], [float(c["completion_tokens"]) for c in ok]),
            "by_prompt_third": [{"prompt_tokens": f"{part[0]['prompt_tokens']}-{part[-1]['prompt_tokens']}",
                                 "completion_tokens": spread([c["completion_tokens"] for c in part], 0)}
                                for part in thirds if part],
        },
        "load1": spread(sorted({c["load1"] for c in calls}), 2),
    }


def markdown(s: dict[str, Any]) -> list[str]:
    def ms(d: dict[str, Any]) -> str:
        return f"{d['median']} (IQR {d['p25']}-{d['p75']}, range {d['min']}-{d['max']}, n {d['n']})"

    same, other = s["cache_after_same_rule"], s["cache_after_other_rule"]
    fit_ = s["answer"]["vs_prompt_fit"]
    rows = [
        "| measured (median, spread) | value |", "| --- | --- |",
        f"| prompt processing, llama.cpp tokens/s | {ms(s['pp_tok_s'])} |",
        f"| prompt processing, simulator tokens/s | {ms(s['pp_sim_tok_s'])} |",
        f"| generation, tokens/s | {ms(s['tg_tok_s'])} |",
        f"| simulator tokens per llama.cpp token (prompt) | {ms(s['sim_tokens_per_real_token'])} |",
        f"| cached prompt tokens after a call of the same rule | {ms(same['cached_tokens'])} of "
        f"{same['prompt_tokens']['median']}; prompt time {same['prompt_s']['median']} s |",
        f"| cached prompt tokens after a call of another rule | {ms(other['cached_tokens'])} of "
        f"{other['prompt_tokens']['median']}; prompt time {other['prompt_s']['median']} s |",
        f"| LiteLLM overhead per request, ms (from the calls) | {s['proxy_overhead_ms']['from_calls']} |",
        f"| LiteLLM overhead per request, ms (tiny request) | {ms(s['proxy_overhead_ms']['tiny_request'])} |",
        f"| answer tokens | {ms(s['answer']['completion_tokens'])}; finish {s['answer']['finish_reasons']} |",
        f"| answer tokens vs prompt tokens | {fit_['intercept']} + {fit_['slope']} x prompt (r {fit_['r']}) |",
    ]
    rows += [f"| answer tokens, prompts of {t['prompt_tokens']} tokens | {ms(t['completion_tokens'])} |"
             for t in s["answer"]["by_prompt_third"]]
    return rows


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--pairs", type=int, default=DEFAULT_PAIRS, help=f"rules, two alerts each (default {DEFAULT_PAIRS})")
    p.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help=f"times the series is sent (default "
                   f"{DEFAULT_ROUNDS})")
    p.add_argument("--nice", type=int, default=None,
                   help="run llama-server's threads at this niceness (e.g. -10 as root on a busy machine)")
    p.add_argument("--tiny", type=int, default=20, help="tiny requests for the proxy overhead (default 20)")
    args = p.parse_args(argv)
    if args.smoke:
        args.pairs, args.rounds, args.tiny = 1, 1, 3
    stop_on_sigterm()
    with tempfile.TemporaryDirectory(prefix="lme-calibrate-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        docs = pick_pairs(args.pairs * args.rounds)  # new alerts every round: llama-server caches whole prompts
        chain = realllm.start(workdir, KEY, parallel=1, niceness=args.nice)
        try:
            n_ctx = 4096
            calls = measure(chain, docs, args.rounds, n_ctx)
            tiny = overhead_tiny(chain, args.tiny)
            info = chain.describe()
        finally:
            chain.stop()
    summary = summarise(calls, tiny)
    result = {"benchmark": "calibrate", "machine": machine(), "chain": info,
              "model": "SmolLM2-135M-Instruct Q4_1 (tests/realstack/llm_pins.toml), 2 threads, 1 slot, ctx 4096",
              "summary": summary, "calls": calls}
    emit(result, args.json, markdown(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
