"""Settings output and settings errors never show a secret, including a password inside a URL."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.celery_procs import ROOT

SECRET = "s3cr3t-in-url"
BASE = {"LME_ENRICH_ES_USERNAME": "u", "LME_ENRICH_ES_PASSWORD": "es-" + SECRET,
        "LME_ENRICH_LLM_API_KEY": "sk-" + SECRET}


def _settings(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LME_ENRICH_")}
    return subprocess.run([sys.executable, "-m", "worker.settings"], cwd=ROOT, env={**clean, **BASE, **env},
                          capture_output=True, text=True, timeout=60, check=False)


def test_printed_settings_mask_every_secret() -> None:
    result = _settings(LME_ENRICH_REDIS_URL=f"redis://:{SECRET}@127.0.0.1:6379/0")
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert "LME_ENRICH_REDIS_URL=redis://:********@127.0.0.1:6379/0" in result.stdout
    assert "LME_ENRICH_ES_PASSWORD=********" in result.stdout


@pytest.mark.parametrize("env", [
    {"LME_ENRICH_ES_URL": f"https://elastic:{SECRET}@lme-elasticsearch:9200"},
    {"LME_ENRICH_ES_URL": f"ftp://elastic:{SECRET}@lme-elasticsearch:9200"},
    {"LME_ENRICH_LLM_URL": f"gopher://x:{SECRET}@lme-litellm:4000"},
    {"LME_ENRICH_REDIS_URL": f"http://:{SECRET}@127.0.0.1:6379/0"},
])
def test_settings_errors_never_echo_a_secret(env: dict[str, str]) -> None:
    result = _settings(**env)
    assert result.returncode == 2
    name = next(iter(env))
    assert name in result.stderr
    assert SECRET not in result.stdout + result.stderr
