"""``python -m bench.calibrate --smoke``: two of the product's prompts through the real chain, measured.

Needs the real LLM chain prepared (``python -m tests.realstack.llm --prepare-only``); skipped otherwise unless
``LME_REAL_LLM_REQUIRED=1``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.realstack.conftest import require_prepared_chain

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.real_llm, pytest.mark.slow, pytest.mark.timeout(600)]


def test_calibrate_smoke_reports_rates_cache_overhead_and_answer_length() -> None:
    require_prepared_chain()
    run = subprocess.run([sys.executable, "-m", "bench.calibrate", "--smoke", "--json"], cwd=ROOT,
                         capture_output=True, text=True, timeout=580, check=False)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    summary = result["summary"]
    assert summary["calls"] == 2
    assert summary["pp_tok_s"]["median"] > 0 and summary["tg_tok_s"]["median"] > 0
    # The second call is for the same rule: its prompt opens with the first one's rule fields, read from the cache.
    same = summary["cache_after_same_rule"]
    assert same["calls"] == 1 and same["cached_tokens"]["median"] > 100
    assert summary["proxy_overhead_ms"]["tiny_request"]["n"] == 3
    assert "| prompt processing, llama.cpp tokens/s |" in run.stdout
