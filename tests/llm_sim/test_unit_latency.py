"""The CPU/slot scheduler as pure logic, driven by a fake clock."""

from __future__ import annotations

import math

import pytest

from tests.fakes.llm.latency import CpuModel, Job, JobState, duration_alone
from tests.fakes.llm.server import SimConfig

PP, TG = 100.0, 10.0  # tokens/s: a 100-token prompt costs 1 s, 10 answer tokens 1 s


def prompt(n: int, tag: str = "p") -> tuple[str, ...]:
    return tuple(f"{tag}{i}" for i in range(n))


def run_until_idle(model: CpuModel) -> None:
    while (t := model.next_event()) is not None:
        model.advance(t)


def test_single_job_takes_the_formula_time() -> None:
    model = CpuModel(4, PP, TG)
    job = Job(prompt(100), 10)
    model.submit(job, 0.0)
    assert model.next_event() == pytest.approx(2.0)
    model.advance(1.0)
    assert job.prompt_done_at == pytest.approx(1.0)
    assert model.tokens_generated(job) == 0
    model.advance(1.5)
    assert model.tokens_generated(job) == 5
    run_until_idle(model)
    assert job.state is JobState.DONE
    assert job.finished_at == pytest.approx(duration_alone(100, 10, PP, TG))
    assert model.busy_time == pytest.approx(2.0)


def test_two_concurrent_jobs_share_the_cpu() -> None:
    model = CpuModel(4, PP, TG)
    a, b = Job(prompt(100, "a"), 10), Job(prompt(100, "b"), 10)
    model.submit(a, 0.0)
    model.submit(b, 0.0)
    run_until_idle(model)
    assert a.finished_at == pytest.approx(4.0)
    assert b.finished_at == pytest.approx(4.0)
    assert model.busy_time == pytest.approx(4.0)


def test_share_is_recomputed_when_a_job_ends() -> None:
    model = CpuModel(4, PP, TG)
    short, long = Job(prompt(100, "s"), 0), Job(prompt(100, "l"), 20)  # 1 s and 3 s of work
    model.submit(short, 0.0)
    model.submit(long, 0.0)
    run_until_idle(model)
    assert short.finished_at == pytest.approx(2.0)  # half speed while both run
    assert long.finished_at == pytest.approx(4.0)  # 1 s done by t=2, then 2 s alone


def test_late_arrival_slows_the_running_job() -> None:
    model = CpuModel(4, PP, TG)
    a, b = Job(prompt(100, "a"), 10), Job(prompt(100, "b"), 10)
    model.submit(a, 0.0)
    model.submit(b, 1.0)  # a has 1 s left; then both share
    run_until_idle(model)
    assert a.finished_at == pytest.approx(3.0)
    assert b.finished_at == pytest.approx(4.0)


def test_jobs_beyond_the_slots_queue_fifo() -> None:
    model = CpuModel(1, PP, TG)
    jobs = [Job(prompt(100, t), 10) for t in "abc"]
    for job in jobs:
        model.submit(job, 0.0)
    assert [j.state for j in jobs] == [JobState.RUNNING, JobState.QUEUED, JobState.QUEUED]
    assert len(model.queue) == 2
    run_until_idle(model)
    assert [j.started_at for j in jobs] == pytest.approx([0.0, 2.0, 4.0])
    assert [j.finished_at for j in jobs] == pytest.approx([2.0, 4.0, 6.0])


def test_prefix_cache_only_charges_new_tokens() -> None:
    model = CpuModel(1, PP, TG)
    system = prompt(80, "sys")
    first = Job(system + prompt(20, "x"), 0)
    model.submit(first, 0.0)
    run_until_idle(model)
    second = Job(system + prompt(20, "y"), 0)
    model.submit(second, 10.0)
    assert second.cached_tokens == 80
    run_until_idle(model)
    assert second.finished_at == pytest.approx(10.2)


def test_identical_prompt_reprocesses_one_token() -> None:
    model = CpuModel(1, PP, TG)
    model.submit(Job(prompt(100), 0), 0.0)
    run_until_idle(model)
    again = Job(prompt(100), 0)
    model.submit(again, 5.0)
    assert again.cached_tokens == 99
    assert again.pp_work == pytest.approx(0.01)


def test_free_slot_with_longest_common_prefix_is_chosen() -> None:
    model = CpuModel(3, PP, TG)
    for i, tag in enumerate("abc"):
        model.submit(Job(prompt(50, tag), 0), float(i))
        run_until_idle(model)
    # Slots 0, 1, 2 hold prompts a, b, c; a request sharing b's prefix goes to slot 1.
    job = Job(prompt(50, "b") + prompt(5, "z"), 0)
    model.submit(job, 10.0)
    assert job.slot == 1
    assert job.cached_tokens == 50


def test_without_similarity_the_least_recently_used_slot_is_taken() -> None:
    model = CpuModel(2, PP, TG)
    model.submit(Job(prompt(10, "a"), 0), 0.0)
    run_until_idle(model)
    model.submit(Job(prompt(10, "b"), 0), 1.0)
    run_until_idle(model)
    third = Job(prompt(10, "c"), 0)
    model.submit(third, 2.0)
    assert third.slot == 0  # slot 0 was last used at 0.1 s, slot 1 at 1.1 s


def test_abandoned_job_keeps_its_slot_until_done() -> None:
    """Nothing in the model reacts to a client hanging up: the job runs to completion."""
    model = CpuModel(1, PP, TG)
    abandoned, nxt = Job(prompt(100, "a"), 10), Job(prompt(10, "b"), 0)
    model.submit(abandoned, 0.0)
    model.submit(nxt, 0.5)  # its client gave up on the first one at 0.5 s
    assert nxt.state is JobState.QUEUED
    run_until_idle(model)
    assert nxt.started_at == pytest.approx(2.0)


def test_cancel_mid_prompt_waits_for_the_batch_then_keeps_the_prompt() -> None:
    model = CpuModel(1, PP, TG)  # n_batch 2048: the 100-token prompt is one batch
    first, nxt = Job(prompt(100, "a"), 10), Job(prompt(100, "a"), 0)
    model.submit(first, 0.0)
    model.submit(nxt, 0.0)
    model.cancel(first, 0.5)
    assert first.state.value == "running"  # still decoding its prompt batch
    run_until_idle(model)
    assert first.state.value == "cancelled"
    assert first.finished_at == pytest.approx(1.0)
    assert nxt.started_at == pytest.approx(1.0)
    assert nxt.cached_tokens == 99
    assert model.cancelled == 1


def test_cancel_with_small_batches_stops_at_the_next_batch() -> None:
    model = CpuModel(1, PP, TG, n_batch=32)
    first, nxt = Job(prompt(100, "a"), 10), Job(prompt(100, "a"), 0)
    model.submit(first, 0.0)
    model.submit(nxt, 0.0)
    model.cancel(first, 0.5)  # 50 tokens done: the batch ends at 64
    run_until_idle(model)
    assert first.finished_at == pytest.approx(0.64)
    assert nxt.cached_tokens == 64
    assert nxt.finished_at == pytest.approx(1.0)


def test_cancel_while_generating_stops_after_the_current_token() -> None:
    model = CpuModel(1, PP, TG)
    job = Job(prompt(100), 10)
    model.submit(job, 0.0)
    model.cancel(job, 1.25)  # 2.5 tokens generated
    assert model.next_event() == pytest.approx(1.3)
    run_until_idle(model)
    assert job.state is JobState.CANCELLED
    assert job.finished_at == pytest.approx(1.3)
    assert model.slots[0].job is None
    assert len(model.slots[0].cache) == 100


def test_cancel_a_held_job_frees_at_once() -> None:
    model = CpuModel(1, PP, TG)
    job = Job(prompt(10), 0, hold=True)
    model.submit(job, 0.0)
    run_until_idle(model)
    model.cancel(job, 1.0)
    assert job.state is JobState.CANCELLED
    assert model.busy_slots == 0


def test_cancel_a_queued_job_removes_it() -> None:
    model = CpuModel(1, PP, TG)
    running, queued = Job(prompt(10, "a"), 0), Job(prompt(10, "b"), 0)
    model.submit(running, 0.0)
    model.submit(queued, 0.0)
    model.cancel(queued, 0.01)
    assert not model.queue
    assert queued.state is JobState.CANCELLED


def test_held_job_keeps_slot_until_released() -> None:
    model = CpuModel(1, PP, TG)
    hung, nxt = Job(prompt(10, "h"), 0, hold=True), Job(prompt(10, "n"), 0)
    model.submit(hung, 0.0)
    model.submit(nxt, 0.0)
    run_until_idle(model)
    assert hung.state is JobState.HELD
    assert nxt.state is JobState.QUEUED
    assert model.computing == []  # a held job uses no CPU
    model.release(hung, 5.0)
    assert nxt.state.value == "running"
    assert nxt.started_at == pytest.approx(5.0)


def test_release_before_completion_lets_job_finish_normally() -> None:
    model = CpuModel(1, PP, TG)
    hung = Job(prompt(100), 10, hold=True)
    model.submit(hung, 0.0)
    model.release(hung, 0.5)
    assert hung.state.value == "running"
    run_until_idle(model)
    assert hung.state.value == "done"
    assert hung.finished_at == pytest.approx(2.0)


def test_slow_generation_scale() -> None:
    model = CpuModel(1, PP, TG)
    job = Job(prompt(100), 10, tg_scale=10.0)
    model.submit(job, 0.0)
    run_until_idle(model)
    assert job.finished_at == pytest.approx(11.0)


def test_instant_rates_finish_at_submit() -> None:
    model = CpuModel(2, math.inf, math.inf)
    job = Job(prompt(1000), 500)
    model.submit(job, 3.0)
    assert job.state is JobState.DONE
    assert job.finished_at == 3.0
    assert model.next_event() is None


def test_eta_follows_current_share() -> None:
    model = CpuModel(2, PP, TG)
    a, b = Job(prompt(100, "a"), 10), Job(prompt(100, "b"), 10)
    model.submit(a, 0.0)
    assert model.eta(a, a.token_work(5)) == pytest.approx(1.5)
    model.submit(b, 0.0)
    assert model.eta(a, a.token_work(5)) == pytest.approx(3.0)
    assert model.eta(Job(prompt(1), 1), 1.0) is None


def test_default_rates_are_the_calibrated_ones() -> None:
    """BENCHMARKS.md "Calibration" (python -m bench.calibrate on the real chain): medians of pp 170.7 simulator
    tokens/s, tg 46.4 tokens/s, LiteLLM 27.4 ms per request; one alert (663 prompt, 53 answer tokens) ~5 s."""
    config = SimConfig()
    assert 4.0 <= duration_alone(663, 53, config.pp_rate, config.tg_rate) + config.overhead <= 6.0
    assert 165 <= config.pp_rate <= 175
    assert 44 <= config.tg_rate <= 48
    assert 0.020 <= config.overhead <= 0.035
    assert (config.slots, config.n_ctx_slot) == (4, 4096)
