"""Hostile alert documents through claim and assessment against the real Elasticsearch test server: every
alert Elasticsearch accepts ends done or failed with a reason, and nothing outside ``lme.ai`` changes."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from elasticsearch import ApiError, Elasticsearch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import kibana
from tests.hostile import inproc
from tests.hostile.strategies import alert_docs, deep, storable_docs
from tests.invariants import outside_ours
from worker.assessing import prompt

_ids = itertools.count()
SEEN = {"accepted": 0, "refused_by_es": 0}


def _no_ours(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if not k.startswith("lme")}


def _run_one(es: Elasticsearch, svc: Any, space: kibana.Space, doc: dict[str, Any]) -> None:
    doc_id = f"hostile-{next(_ids)}"
    stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    body = {**_no_ours(doc), "kibana.alert.uuid": doc_id, "@timestamp": stamp}
    try:
        index = es.index(index=space.alias, id=doc_id, document=body, refresh=True, op_type="create")["_index"]
    except ApiError as exc:
        # Elasticsearch refuses it (a wrong type for a mapped field, an empty field name): the worker never
        # sees it. Only a refusal of the document is acceptable here.
        assert exc.meta.status == 400, exc  # noqa: PT017 (refusing is one valid outcome, accepting the other)
        SEEN["refused_by_es"] += 1
        return
    SEEN["accepted"] += 1
    before = es.get(index=index, id=doc_id)["_source"]
    outcomes = inproc.assess_ids(svc, [doc_id])
    assert set(outcomes) == {doc_id}, "a stored alert in scope must be claimed"
    outcome = outcomes[doc_id]
    after = es.get(index=index, id=doc_id)["_source"]
    assert outside_ours(after) == outside_ours(before)
    ai = after["lme"]["ai"]
    assert outcome.result in ("done", "failed")
    assert ai["status"] == outcome.result
    if outcome.result == "failed":
        assert ai["error"] and ai["error_kind"]


def _echo(body: dict[str, Any]) -> dict[str, Any]:
    """A model that repeats the alert data back in its answer (as a small model may)."""
    data = body["messages"][-1]["content"]
    return {**inproc.GOOD, "summary": data, "actions": [data[:400], data[-400:]]}


@pytest.fixture
def svc(es_url: str, space: kibana.Space) -> Any:
    return inproc.services(inproc.settings_for(es_url, space), inproc.answering(_echo))


@pytest.mark.slow
def test_generated_hostile_alerts_end_done_or_failed(es: Elasticsearch, svc: Any, space: kibana.Space) -> None:
    SEEN.update(accepted=0, refused_by_es=0)
    @settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(st.one_of(storable_docs(), storable_docs(), alert_docs()))
    def check(doc: dict[str, Any]) -> None:
        _run_one(es, svc, space, doc)

    check()
    print(f"\nRELIABILITY hostile generated: {json.dumps(SEEN)}")
    assert SEEN["accepted"] >= 30


EVERY_PLANE = "".join(chr(plane * 0x10000 + 0x41) for plane in range(17)) + "\u0000\u0007\u001b\u2028\ufeff"


def test_extreme_alerts_end_done_or_failed(es: Elasticsearch, svc: Any, space: kibana.Space) -> None:
    SEEN.update(accepted=0, refused_by_es=0)
    cases: list[dict[str, Any]] = [
        {"message": "M" * 10_000_000},  # a 10 MB field
        {"evil": {"blob": "B" * 10_000_000}, "kibana.alert.rule.name": "x"},
        {"process.args": [str(n) for n in range(100_000)]},  # a huge array
        {"host": deep(300, "x")},  # deep nesting (the ES test server fails at ~900 levels)
        {"kibana.alert.rule.threat": deep(400, {"tactic": {"id": "TA1"}})},
        {"host.name": EVERY_PLANE, "user.name": "\x00" * 100, "kibana.alert.reason": "\ud7ff\ue000\ufffd"},
        {"a.b": {"c.d": {"": 1}}, "kibana": {"alert.rule": {"name": "dotted and nested"}}},
        {"kibana.alert.risk_score": "not a number"},
        {},
    ]
    for doc in cases:
        _run_one(es, svc, space, doc)
    print(f"\nRELIABILITY hostile extremes: {json.dumps(SEEN)}")


def test_surrogates_never_reach_json_but_the_builder_survives_them() -> None:
    built = prompt.build({"host.name": "a\ud800b", "kibana.alert.reason": "\udfff"})
    assert built.messages[1]["content"].count(prompt.fence_marker(built.extract)) == 2  # open and close
