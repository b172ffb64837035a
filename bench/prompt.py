"""``python -m bench.prompt``: prompt tokens per alert and the analyst-relevant fields that reach the model.

Over the corpus, ours (``worker.assessing.prompt.build``) against LME's script (``bench.baseline.messages``:
``json.dumps(alert, indent=2)[:4000]``), counted with the simulator's tokenizer approximation and chat
template (``tests.fakes.llm.tokens``). A relevant field (rule, severity, host, user, process command line,
parent, MITRE) counts as kept when the alert has it and its value, or a recognisable prefix of it (first
40 characters, JSON-escaped or not), appears in the prompt. No servers are needed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from bench import baseline
from bench.report import emit, machine, parser
from bench.report import r as rnd
from tests import kibana
from tests.fakes.llm.tokens import count_prompt_tokens, count_tokens
from worker.alerts import alert
from worker.assessing import prompt as ours

SMOKE_ALERTS = 20
PREFIX_CHARS = 40

# Analyst-relevant fields: the first path with a value stands for the field.
RELEVANT: dict[str, tuple[str, ...]] = {
    "rule": ("kibana.alert.rule.name",),
    "severity": ("kibana.alert.severity",),
    "host": ("host.name", "host.hostname"),
    "user": ("user.name",),
    "process_command_line": ("process.command_line",),
    "parent": ("process.parent.command_line", "process.parent.executable", "process.parent.name"),
    "mitre": ("kibana.alert.rule.threat.technique.id", "kibana.alert.rule.threat.tactic.id"),
}


def _values(source: dict[str, Any], paths: tuple[str, ...]) -> list[str]:
    for path in paths:
        found = [v for v in alert.values(source, path) if v not in (None, "", [])]
        if found:
            return [v if isinstance(v, str) else json.dumps(v) for v in found]
    return []


def _mitre_ids(source: dict[str, Any]) -> list[str]:
    ids = []
    for threat in alert.values(source, "kibana.alert.rule.threat"):
        if isinstance(threat, dict):
            ids += [str(v) for v in alert.values(threat, "technique.id") or alert.values(threat, "tactic.id")]
    return ids


def _present(value: str, text: str) -> bool:
    probe = value[:PREFIX_CHARS]
    return probe in text or json.dumps(probe)[1:-1] in text


def fields_kept(source: dict[str, Any], text: str) -> tuple[int, int, list[str]]:
    """(relevant fields the alert has, how many of them reach ``text``, names of the lost ones)."""
    has = kept = 0
    lost = []
    for name, paths in RELEVANT.items():
        values = _mitre_ids(source) if name == "mitre" else _values(source, paths)
        if not values:
            continue
        has += 1
        # Every value must be there (a MITRE rule lists several techniques); lists are capped at 5 in ours.
        if all(_present(v, text) for v in values[:5]):
            kept += 1
        else:
            lost.append(name)
    return has, kept, lost


def measure(docs: list[dict[str, Any]], build: Callable[[dict[str, Any]], list[dict[str, str]]]) -> dict[str, Any]:
    tokens = []
    has = kept = 0
    lost: dict[str, int] = {}
    for doc in docs:
        messages = build(doc)
        tokens.append(count_prompt_tokens(messages))
        h, k, gone = fields_kept(doc, "\n".join(m["content"] for m in messages))
        has += h
        kept += k
        for name in gone:
            lost[name] = lost.get(name, 0) + 1
    ordered = sorted(tokens)
    return {"tokens_mean": sum(tokens) / len(tokens), "tokens_p50": ordered[len(ordered) // 2],
            "tokens_max": ordered[-1], "relevant_fields_kept": kept / has if has else 1.0,
            "alerts_losing_field": lost}


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__).parse_args(argv)
    docs = kibana.load_corpus()
    if args.smoke:
        docs = docs[:SMOKE_ALERTS]
    mine = measure(docs, lambda d: ours.build(d).messages)
    base = measure(docs, baseline.messages)
    result = {
        "benchmark": "prompt", "mode": "smoke" if args.smoke else "full", "alerts": len(docs),
        "machine": machine(), "system_prompt_tokens": count_tokens(ours.SYSTEM_PROMPT),
        "tokens_mean": rnd(mine["tokens_mean"], 1), "baseline_tokens_mean": rnd(base["tokens_mean"], 1),
        "token_ratio": rnd(mine["tokens_mean"] / base["tokens_mean"]),
        "relevant_fields_kept": rnd(mine["relevant_fields_kept"], 4),
        "baseline_relevant_fields_kept": rnd(base["relevant_fields_kept"], 4),
        "tokens_p50": mine["tokens_p50"], "tokens_max": mine["tokens_max"],
        "baseline_tokens_p50": base["tokens_p50"], "baseline_tokens_max": base["tokens_max"],
        "alerts_losing_field": mine["alerts_losing_field"],
        "baseline_alerts_losing_field": base["alerts_losing_field"],
    }
    lines = [
        f"prompt: {len(docs)} alerts; mean prompt tokens {result['tokens_mean']} vs baseline "
        f"{result['baseline_tokens_mean']} (ratio {result['token_ratio']})",
        f"  relevant fields kept: ours {result['relevant_fields_kept']}, baseline "
        f"{result['baseline_relevant_fields_kept']}",
    ]
    emit(result, args.json, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
