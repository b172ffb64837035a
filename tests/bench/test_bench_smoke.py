"""Each benchmark runs end to end in its tiny ``--smoke`` mode and reports sane numbers.

No speed targets here: those live in BENCHMARKS.md. These tests only show that the benchmarks start
everything, measure something real, print the promised JSON keys on the last line and clean up.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.celery_procs import wait_for

ROOT = Path(__file__).resolve().parents[2]
SMOKE_DB = 13  # not the suite's DB (other tests flush theirs) nor the benchmarks' default 14


@pytest.fixture
def bench_redis(redis_url: str) -> str:
    """The suite's Redis server, a DB of the smoke runs' own (each run empties it first)."""
    parts = urlsplit(redis_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{SMOKE_DB}", "", ""))


def run_bench(name: str, redis_url: str, *extra: str, timeout: float = 180) -> dict[str, Any]:
    """Run one benchmark in smoke mode; check it left no process behind; return its JSON result."""
    marker = f"smoke-{uuid.uuid4().hex}"
    proc = subprocess.run(
        [sys.executable, "-m", f"bench.{name}", "--smoke", "--json", *extra], cwd=ROOT, capture_output=True,
        text=True, timeout=timeout, check=False,
        # Every process the benchmark starts inherits this marker, so leftovers can be found.
        env={**os.environ, "LME_ENRICH_REDIS_URL": redis_url, "BENCH_SMOKE_RUN": marker},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert processes_with(marker) == [], "the benchmark left processes running"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert isinstance(result, dict)
    return result


def processes_with(marker: str) -> list[int]:
    """Pids of live processes whose environment holds ``marker``."""
    needle = f"BENCH_SMOKE_RUN={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_prompt_counts_tokens_and_relevant_fields() -> None:
    result = run_bench("prompt", "redis://unused")
    for key in ("tokens_mean", "baseline_tokens_mean", "token_ratio", "relevant_fields_kept",
                "baseline_relevant_fields_kept"):
        assert key in result, key
    assert result["alerts"] == 20
    assert 0 < result["tokens_mean"] < result["tokens_max"] + 1
    assert result["baseline_tokens_mean"] > 0
    assert result["token_ratio"] == pytest.approx(result["tokens_mean"] / result["baseline_tokens_mean"], abs=0.01)
    assert 0 <= result["relevant_fields_kept"] <= 1
    assert 0 <= result["baseline_relevant_fields_kept"] <= 1


@pytest.mark.slow
def test_storm_smoke_enriches_every_alert_and_reports_the_keys(bench_redis: str) -> None:
    result = run_bench("storm", bench_redis)
    for key in ("makespan_s", "baseline_makespan_s", "speedup", "limit_s", "over_limit", "llm_calls",
                "baseline_llm_calls", "critical_p95_s"):
        assert result[key] is not None, key
    in_scope = result["alerts_in_scope"]
    assert result["done"] + result["failed"] == in_scope
    assert result["failed"] == 0
    # At most one call per alert; at least one per distinct fingerprint unless the cache served it.
    assert 0 < result["llm_calls"] <= in_scope
    assert result["baseline_llm_calls"] == in_scope  # the script asks the model for every alert
    assert result["makespan_s"] > 0 and result["baseline_makespan_s"] > 0
    assert result["speedup"] == pytest.approx(result["baseline_makespan_s"] / result["makespan_s"], rel=0.02,
                                              abs=0.002), result
    assert result["limit_s"] > 0
    assert result["over_limit"] == pytest.approx(result["makespan_s"] / result["limit_s"], rel=0.02,
                                                 abs=0.002), result
    assert result["critical"]["n"] == result["critical_injected"] == 2
    assert 0 < result["critical_p95_s"] < result["makespan_s"]
    # The simulator's busy time is what the model did: never less than the calls made need.
    assert result["model_busy_s"] > 0
    assert result["worker_rss"]["samples"] > 0 and result["worker_rss"]["peak_mib"] > 10
    # Grouping on and off in the same run (the default --grouping both); the limit is one call per group.
    runs = result["grouping_runs"]
    assert set(runs) == {"on", "off"} and result["grouping"] == "on"
    for row in runs.values():
        assert row["done"] == in_scope and row["failed"] == 0
        assert row["speedup"] == pytest.approx(result["baseline_makespan_s"] / row["makespan_s"], rel=0.02,
                                               abs=0.002), row
        assert row["critical"]["n"] == 2
    assert runs["on"]["limit_s"] == result["group_limit"]["limit_s"] == result["limit_s"]
    assert runs["off"]["limit_s"] == result["fingerprint_limit_s"]
    assert 0 < result["group_limit"]["calls"] <= result["group_limit"]["groups"] <= in_scope


@pytest.mark.slow
def test_overhead_smoke_measures_throughput_cpu_and_memory(bench_redis: str) -> None:
    result = run_bench("overhead", bench_redis)
    assert result["alerts"] == 40
    assert result["done"] == 40
    assert result["coalescing"] is True
    assert result["alerts_per_s"] > 0 and result["baseline_alerts_per_s"] > 0
    cpu = result["cpu_s_per_alert"]
    assert set(cpu) == {"poll", "assess", "beat", "elasticsearch", "llm"}
    assert all(v is not None and v >= 0 for v in cpu.values())
    assert cpu["assess"] > 0  # the assess workers did the work
    assert result["baseline_cpu_s_per_alert"]["script"] > 0
    assert result["worker_rss"]["peak_mib"] > 10
    memory = result["worker_memory_at_end"]
    assert set(memory["by_process"]) == {"poll", "assess", "beat"}
    assert 10 < memory["pss_mib"] <= memory["rss_mib"]


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@pytest.mark.slow
def test_ctrl_c_stops_everything_the_benchmark_started(bench_redis: str) -> None:
    marker = f"smoke-{uuid.uuid4().hex}"
    bench = subprocess.Popen(
        [sys.executable, "-m", "bench.overhead", "--smoke", "--json"], cwd=ROOT, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, env={**os.environ, "LME_ENRICH_REDIS_URL": bench_redis, "BENCH_SMOKE_RUN": marker},
    )
    try:
        deadline = time.monotonic() + 60
        # Interrupt it once the Celery workers run: servers and pipeline are all up then.
        while not any("worker.admin.cli worker" in _cmdline(pid) for pid in processes_with(marker)):
            assert bench.poll() is None, "the benchmark ended before its workers started"
            assert time.monotonic() < deadline, "the benchmark's workers did not start"
            time.sleep(0.05)  # sync-ok: polling interval of a deadline-bounded wait
        bench.send_signal(signal.SIGINT)
        bench.wait(60)
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait(10)
    # A process SIGKILLed with its group may take a moment to be gone on a loaded machine: it must go, soon.
    try:
        wait_for(lambda: processes_with(marker) == [], timeout=30, what="every process the benchmark started to end")
    except AssertionError as exc:
        left = {pid: _cmdline(pid) for pid in processes_with(marker)}
        raise AssertionError(f"{exc}; the benchmark exited with {bench.returncode}, still running: {left}") from None
