"""``bench.ceiling`` computes the storm's cap per group window as the storm benchmark computes its limit."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bench import alerts, ceiling, harness, model_time
from bench.storm import corpus, critical_copies


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert ceiling.main(["--smoke", "--json", *argv]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert isinstance(result, dict)
    return result


def test_wider_windows_never_cost_more_calls_and_the_cap_follows_the_model_time(
        capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, "--windows", "0,10m,1d,none")
    rows = result["windows"]
    assert [r["window"] for r in rows] == ["0", "10m", "1d", "none"]
    assert [r["calls"] for r in rows] == sorted((r["calls"] for r in rows), reverse=True)
    assert rows[-1]["calls"] < rows[0]["calls"], "the smoke corpus has bursts: grouping must save calls"
    for r in rows:
        assert r["model_s"] == pytest.approx(r["prompt_s"] + r["answer_s"], abs=0.002)
        assert r["cap"] == pytest.approx(result["script_model_s"] / r["model_s"], rel=1e-3)
        assert r["cap_answers_free"] > r["cap"]
    assert result["target_model_s"] == pytest.approx(result["script_model_s"] / ceiling.TARGET, rel=1e-3)


def test_its_figures_are_the_storm_benchmarks_limits(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, "--windows", "0,10m")
    docs = corpus(True)
    sources = [d for d in docs if alerts.in_scope(d)] + critical_copies(docs, 2)
    settings, rates = ceiling.offline_settings(), harness.Rates(slots=1)
    off, on = result["windows"]
    by_fingerprint = model_time.physical_limit(settings, sources, pp_rate=rates.pp_rate, tg_rate=rates.tg_rate,
                                               slots=1, n_ctx=16384)
    grouped = model_time.group_limit(settings, sources, 600, pp_rate=rates.pp_rate, tg_rate=rates.tg_rate, slots=1,
                                     n_ctx=16384)
    assert result["alerts"] == len(sources)
    assert off["calls"] == by_fingerprint.fingerprints
    assert off["model_s"] == pytest.approx(by_fingerprint.seconds, abs=0.002)
    assert (on["calls"], on["model_s"]) == (grouped.calls, pytest.approx(grouped.seconds, abs=0.002))


def test_a_window_that_is_not_a_duration_is_refused_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        ceiling.main(["--smoke", "--windows", "10m,soon"])
    assert exc.value.code == 2
    assert "--windows: 'soon'" in capsys.readouterr().err
