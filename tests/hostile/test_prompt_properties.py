"""Property tests of the prompt builder, the answer parser and the plain-text cleaner on hostile input."""

from __future__ import annotations

import json
import unicodedata
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hostile.strategies import ANY_TEXT, WITH_SURROGATES, alert_docs, deep
from worker.assessing import assessment, prompt
from worker.assessing.assessment import AnswerError

PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _fenced_lines(built: prompt.Prompt) -> list[str]:
    user = built.messages[1]["content"]
    marker = prompt.fence_marker(built.extract)
    lines = user.split("\n")
    assert lines.count(marker) == 2, "the fence marker must appear exactly twice (open and close)"
    start, end = lines.index(marker), len(lines) - 1 - lines[::-1].index(marker)
    return lines[start + 1:end]


def _check_prompt(source: dict[str, Any]) -> prompt.Prompt:
    built = prompt.build(source)
    inside = _fenced_lines(built)
    rule = [pair for pair in built.pairs if pair[0] in prompt.RULE_LABELS]
    event = [pair for pair in built.pairs if pair[0] not in prompt.RULE_LABELS]
    lines = built.messages[1]["content"].split("\n")
    rule_lines = lines[lines.index("Detection rule:") + 1:lines.index("Event data:")]
    # One line per extract field: no value can span lines, open a new block or close the fence.
    assert len(inside) == max(len(event), 1)
    assert len(rule_lines) == max(len(rule), 1)
    for (label, value), line in [*zip(event, inside, strict=False), *zip(rule, rule_lines, strict=False)]:
        assert line == f"{label}: {json.dumps(value, ensure_ascii=False)}"
        assert len(value) <= 700
    json.dumps(built.messages)  # what goes to LiteLLM must serialise
    return built


@PROPS
@given(alert_docs())
def test_the_prompt_builder_fences_any_alert(source: dict[str, Any]) -> None:
    _check_prompt(source)


@PROPS
@given(alert_docs(WITH_SURROGATES))
def test_the_prompt_builder_survives_invalid_surrogates(source: dict[str, Any]) -> None:
    built = prompt.build(source)
    _fenced_lines(built)
    assert built.messages[0]["content"] == prompt.SYSTEM_PROMPT


def test_the_prompt_builder_survives_extremes() -> None:
    huge = "A" * 10_000_000
    cases: list[dict[str, Any]] = [
        {},
        {"kibana.alert.rule.name": huge, "process.command_line": huge},
        {"process.args": list(range(200_000))},
        {"host.name": deep(1_000, "x")}, {"host.name": deep(5_000, "x")},
        {"kibana.alert.rule.threat": deep(2_000, {"tactic": {"id": "TA1"}})},
        {"": {"": ""}, ".": 1, "host..name": "x", "host.": "y", "host": {"": {"name": "z"}}},
        {"kibana.alert.rule.name": "\x00\x07\x1b[31m\u202e\ufeff\U0010ffff\ud800"},
        {"kibana": {"alert": {"rule": {"name": ["a", None, 3, True, {"b": [1.5, {}]}]}}}},
        {"kibana.alert.risk_score": float("1e308"), "source.port": -(2**63)},
    ]
    for source in cases:
        built = _check_prompt(source)
        assert len(built.messages[1]["content"]) < 20_000


@PROPS
@given(st.one_of(WITH_SURROGATES, st.binary(max_size=300).map(lambda b: b.decode("latin-1"))),
       st.sampled_from([None, "stop", "length"]))
def test_the_answer_parser_accepts_or_refuses_clearly(content: str, finish: str | None) -> None:
    try:
        answer = assessment.parse(content, finish)
    except AnswerError as exc:
        assert exc.kind in {"truncated", "empty", "not_json", "schema"}  # noqa: PT017 (a refusal is one valid outcome)
        assert str(exc)  # noqa: PT017 (a refusal is one valid outcome)
    else:
        _check_answer(answer)


def _check_answer(answer: assessment.Assessment) -> None:
    fields = answer.as_fields()
    assert set(fields) == {"summary", "what_happened", "risk_level", "confidence", "recommended_actions"}
    assert fields["what_happened"] is None
    assert answer.risk_level in {"low", "medium", "high", "critical"}
    assert 0 <= answer.confidence <= 1
    assert 1 <= len(answer.recommended_actions) <= assessment.ACTIONS_MAX
    for text, limit in [(answer.summary, assessment.SUMMARY_MAX),
                        *[(a, assessment.ACTION_MAX) for a in answer.recommended_actions]]:
        assert 0 < len(text) <= limit
        _assert_plain(text)


def _assert_plain(text: str) -> None:
    assert all(unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Zl", "Zp") for ch in text), repr(text)
    assert "  " not in text and text == text.strip()


ANSWERS = st.fixed_dictionaries({
    "summary": ANY_TEXT,
    "risk": st.one_of(st.sampled_from(["low", "HIGH", " critical ", "benign", "none", ""]), ANY_TEXT),
    "confidence": st.one_of(st.floats(), st.integers(), st.text(max_size=8), st.none()),
    "actions": st.one_of(st.lists(st.one_of(ANY_TEXT, st.integers()), max_size=12), ANY_TEXT),
}, optional={"lme.ai.status": ANY_TEXT, "_id": ANY_TEXT, "kibana.alert.workflow_status": ANY_TEXT,
             "alerts": st.lists(ANY_TEXT, max_size=3)})


@PROPS
@given(ANSWERS)
def test_schema_shaped_answers_only_ever_yield_our_fields(answer: dict[str, Any]) -> None:
    try:
        parsed = assessment.parse(json.dumps(answer))
    except AnswerError as exc:
        assert exc.kind == "schema"  # noqa: PT017 (a refusal is one valid outcome)
    else:
        _check_answer(parsed)


@PROPS
@given(WITH_SURROGATES, st.integers(min_value=2, max_value=500))
def test_clean_text_is_plain_and_bounded(value: str, limit: int) -> None:
    text = assessment.clean_text(value, limit)
    assert len(text) <= limit
    _assert_plain(text)
    text.encode("utf-8")  # no lone surrogate survives


def test_clean_text_strips_markup_and_invisible_characters() -> None:
    raw = ("<script>alert(1)</script>Run [this](http://evil.example/x) now\x1b[31m\u202egnp.exe\u200b"
           "<img src=x onerror=alert(1)>\r\nnext")
    text = assessment.clean_text(raw, 300)
    assert "<" not in text and ">" not in text
    assert "http://evil.example" not in text
    assert "\u202e" not in text and "\u200b" not in text and "\x1b" not in text
    assert text == "alert(1)Run this now [31mgnp.exe next"
