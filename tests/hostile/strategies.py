"""Hypothesis strategies for hostile alert documents: whatever an attacker or a broken shipper can produce."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

# Every Unicode plane, control characters included; surrogates only where asked (JSON cannot carry them).
ANY_TEXT = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=["Cs"]), max_size=200)
WITH_SURROGATES = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=200)
KEYS = st.one_of(st.sampled_from(["", ".", "a.", ".b", "a..b", "host.name", "kibana.alert.rule.name",
                                  "process", "name", "host", "user.name", "kibana.alert.reason"]), ANY_TEXT)
# Paths the prompt reads, so hostile values reach the extract and not only ignored corners.
PROMPT_PATHS = ["kibana.alert.rule.name", "kibana.alert.reason", "kibana.alert.severity", "kibana.alert.risk_score",
                "host.name", "user.name", "process.command_line", "process.args", "kibana.alert.rule.threat",
                "file.path", "url.full", "source.ip", "dns.question.name", "kibana.alert.rule.description"]


def scalars(text: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1),
                     st.floats(allow_nan=False, allow_infinity=False), text)


def values(text: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars(text),
        lambda inner: st.one_of(st.lists(inner, max_size=6), st.dictionaries(KEYS, inner, max_size=5)),
        max_leaves=25,
    )


def alert_docs(text: st.SearchStrategy[str] = ANY_TEXT) -> st.SearchStrategy[dict[str, Any]]:
    """Alert sources with hostile values at the paths the prompt reads, as flat or nested keys."""
    flat = st.dictionaries(st.sampled_from(PROMPT_PATHS), values(text), max_size=8)
    extra = st.dictionaries(KEYS, values(text), max_size=4)
    return st.builds(lambda a, b: {**b, **a}, flat, extra)


def deep(depth: int, leaf: Any) -> Any:
    node = leaf
    for n in range(depth):
        node = {"k": node} if n % 2 else [node]
    return node


TEXT_PATHS = [p for p in PROMPT_PATHS if p not in ("kibana.alert.risk_score", "kibana.alert.rule.threat",
                                                   "source.ip")]
SAFE_KEYS = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x10FFFF, exclude_categories=["Cs"],
                                  exclude_characters="."), min_size=1, max_size=12)


def storable_docs() -> st.SearchStrategy[dict[str, Any]]:
    """Hostile alerts Elasticsearch stores (right types where Kibana maps a field): they reach the worker."""
    text_or_list = st.one_of(ANY_TEXT, st.lists(ANY_TEXT, max_size=8))
    mapped = st.dictionaries(st.sampled_from(TEXT_PATHS), text_or_list, max_size=8)
    unmapped = st.dictionaries(SAFE_KEYS.filter(lambda k: not k.startswith(("lme", "kibana", "@", "_"))),
                               values(ANY_TEXT), max_size=3)
    named = st.fixed_dictionaries({"id": ANY_TEXT, "name": ANY_TEXT})
    threat = st.lists(st.fixed_dictionaries({"tactic": named}, optional={"technique": st.lists(named, max_size=3)}),
                      max_size=3)
    return st.builds(lambda a, b, t: {**b, **a, "kibana.alert.rule.threat": t}, mapped, unmapped, threat)
