"""Which received assess tasks a worker hands back: those out of its hands for two beats, not a retry waiting."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from worker.dispatch import lifecycle, liveness


@pytest.fixture
def in_hand(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    held: set[str] = set()
    monkeypatch.setattr(lifecycle, "_requests_in_hand", lambda: set(held))
    return held


def test_a_task_still_in_hand_is_never_handed_back(in_hand: set[str]) -> None:
    tracker = lifecycle._Unsettled()
    tracker.received("t1", "c1", 0.0)
    in_hand.add("t1")
    assert [tracker.ended(1000.0 + beat * liveness.BEAT_S) for beat in range(10)] == [[]] * 10


def test_an_ended_task_is_handed_back_after_two_beats_out_of_hand(in_hand: set[str]) -> None:
    tracker = lifecycle._Unsettled()
    tracker.received("t1", "c1", 0.0)
    assert tracker.ended(1000.0) == []  # one beat: its retry's message may be on its way
    assert tracker.ended(1005.0) == [("t1", "c1")]
    assert tracker.ended(1010.0) == [], "handed back once, then forgotten"


def test_a_retry_received_between_two_beats_starts_the_count_again(in_hand: set[str]) -> None:
    tracker = lifecycle._Unsettled()
    tracker.received("t1", "c1", 0.0)
    assert tracker.ended(1000.0) == []
    tracker.received("t1", "c1", 1000.0 + 60)  # the retry, due in a minute: held in the worker's timer
    assert tracker.ended(1005.0) == [] and tracker.ended(1010.0) == []
    assert tracker.ended(1060.0 + 2 * liveness.BEAT_S) == []
    assert tracker.ended(1065.0 + 2 * liveness.BEAT_S) == [("t1", "c1")]


def test_eta_of_a_request_is_read_from_celery_s_iso_text() -> None:
    due = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert lifecycle._eta_epoch(SimpleNamespace(eta=due.isoformat())) == due.timestamp()
    assert lifecycle._eta_epoch(SimpleNamespace(eta=due)) == due.timestamp()
    assert lifecycle._eta_epoch(SimpleNamespace(eta=None)) == 0.0
    assert lifecycle._eta_epoch(SimpleNamespace(eta="not a date")) > datetime.now(UTC).timestamp()
