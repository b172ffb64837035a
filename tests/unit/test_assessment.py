"""Model replies become validated plain-text assessments, or a failure with its reason."""

from __future__ import annotations

import json

import pytest

from worker.assessing.assessment import ACTIONS_MAX, SUMMARY_MAX, AnswerError, clean_text, parse
from worker.assessing.prompt import ANSWER_SCHEMA

GOOD = {
    "summary": "A user started PowerShell with an encoded command on host1.",
    "risk": "high",
    "confidence": 0.8,
    "actions": ["Isolate host1", "Decode the command"],
}


def test_plain_json_becomes_our_fields():
    result = parse(json.dumps(GOOD), "stop")
    assert result.as_fields() == {
        "summary": GOOD["summary"], "risk_level": "high", "confidence": 0.8,
        "recommended_actions": GOOD["actions"],
        "what_happened": None,  # prompt v2's field: cleared so a re-assessment leaves no stale text
    }


def test_good_answer_is_exactly_the_schema():
    assert set(GOOD) == set(ANSWER_SCHEMA["required"]) == set(ANSWER_SCHEMA["properties"])


@pytest.mark.parametrize(
    "wrap",
    [
        "```json\n{}\n```",
        "Here is my assessment:\n```\n{}\n```\nHope this helps.",
        "Sure! {} That's all.",
    ],
)
def test_fenced_or_loose_json(wrap):
    assert parse(wrap.format(json.dumps(GOOD))).risk_level == "high"


def test_normalises_what_small_models_do():
    answer = {**GOOD, "risk": " High ", "confidence": "85%", "actions": "Isolate host1"}
    result = parse(json.dumps(answer))
    assert result.risk_level == "high"
    assert result.confidence == 0.85
    assert result.recommended_actions == ["Isolate host1"]
    assert parse(json.dumps({**GOOD, "confidence": 70})).confidence == 0.7


@pytest.mark.parametrize(("given", "stored"), [(85, 0.85), (1, 0.01), (0, 0.0), (100, 1.0), (0.8, 0.8), (1.0, 1.0),
                                               (42.5, 0.425), ("85", 0.85)])
def test_confidence_is_a_whole_percent_as_asked_and_a_fraction_when_stored(given, stored):
    # The schema asks for an integer 0-100 (llama.cpp's grammar enforces its bounds); a model without a grammar
    # may still answer a fraction, and a float of at most 1 is read as one.
    assert parse(json.dumps({**GOOD, "confidence": given})).confidence == stored


@pytest.mark.parametrize(
    ("content", "finish", "kind"),
    [
        ('{"summary": "cut', "length", "truncated"),
        ("", "stop", "empty"),
        ("I think this is bad.", "stop", "not_json"),
        (json.dumps({**GOOD, "risk": "catastrophic"}), "stop", "schema"),
        (json.dumps({**GOOD, "confidence": -1}), "stop", "schema"),
        (json.dumps({**GOOD, "confidence": 101}), "stop", "schema"),
        (json.dumps({**GOOD, "confidence": -10.0}), "stop", "schema"),
        (json.dumps({**GOOD, "confidence": True}), "stop", "schema"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "summary"}), "stop", "schema"),
        (json.dumps({**GOOD, "summary": 42}), "stop", "schema"),
        (json.dumps({**GOOD, "actions": [1, 2]}), "stop", "schema"),
        ("[1, 2, 3]", "stop", "not_json"),
    ],
)
def test_unusable_replies_fail_with_a_reason(content, finish, kind):
    with pytest.raises(AnswerError) as err:
        parse(content, finish)
    assert err.value.kind == kind
    assert str(err.value)


def test_output_is_plain_bounded_text():
    hostile = {
        **GOOD,
        "summary": "<script>alert(1)</script>Bad\x00\x1b[31m\u202e thing [click](http://evil) " + "z" * 1000,
        "actions": ["ok"] * 20,
        "extra_field": "ignored",
    }
    result = parse(json.dumps(hostile))
    assert "<script>" not in result.summary and "\x00" not in result.summary and "\u202e" not in result.summary
    assert "http://evil" not in result.summary and "click" in result.summary
    assert len(result.summary) <= SUMMARY_MAX == 300
    assert len(result.recommended_actions) == ACTIONS_MAX == 3
    assert "extra_field" not in result.as_fields()


def test_clean_text_handles_lone_surrogates():
    assert clean_text("a\ud800b", 10) == "a?b"


def test_stored_summary_has_room_for_what_the_guards_add():
    from worker.assessing import guards
    from worker.assessing.assessment import STORED_SUMMARY_MAX

    # The model writes at most SUMMARY_MAX; the guards add a warning and a sentence of the alert's facts.
    assert SUMMARY_MAX + len(guards.WARNING) + 4 * (guards.ENTITY_MAX + 12) <= STORED_SUMMARY_MAX
    assert STORED_SUMMARY_MAX <= 1024  # the summary's .keyword ignore_above


def test_guard_results_are_not_answer_fields():
    result = parse(json.dumps(GOOD))
    assert result.injection_reasons == () and result.guards == ()
    assert "guards" not in result.as_fields() and "injection_reasons" not in result.as_fields()
