"""``scripts/demo``: its help, and a ``--once`` run with two sample alerts on the real stack.

The ``--once`` run needs the real LLM chain prepared (``python -m tests.realstack.llm --prepare-only``; skipped
otherwise unless ``LME_REAL_LLM_REQUIRED=1``) and, for the real Elasticsearch node, Java and Maven (without them
the demo uses the test server and says so, which the test checks).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.realstack.conftest import require_prepared_chain

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "scripts" / "demo"


def test_help_lists_the_options_without_bootstrapping() -> None:
    out = subprocess.run([str(DEMO), "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
                         env={**os.environ, "LME_ENRICH_PYTHON": sys.executable})
    for option in ("--once", "--alerts", "--elasticsearch", "--redis-url", "--workdir"):
        assert option in out.stdout
    assert "real LLM" in out.stdout


@pytest.mark.real_llm
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_once_enriches_every_sample_alert(tmp_path: Path) -> None:
    require_prepared_chain()
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (the demo would install it with apt)")
    run = subprocess.run([str(DEMO), "--once", "--alerts", "2", "--workdir", str(tmp_path), "--timeout", "600"],
                         cwd=ROOT, capture_output=True, text=True, timeout=880, check=False,
                         env={**os.environ, "LME_ENRICH_PYTHON": sys.executable})
    out = run.stdout
    assert run.returncode == 0, out[-3000:] + run.stderr[-3000:]
    assert "2/2 assessed" in out
    assert "rule" in out and "AI risk" in out and "summary" in out
    table = out[out.index("AI risk"):]
    assert table.count(" done ") == 2, table
    if shutil.which("java") is None or shutil.which("mvn") is None:
        assert "TEST SERVER" in out
    else:
        assert "real Elasticsearch 8.18.8 node" in out
    assert "stopped everything it started" in out
