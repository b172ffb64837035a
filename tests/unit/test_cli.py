"""The lme-enrich command turns expected errors into one clear line and exit code 2."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from worker.admin.cli import main
from worker.config import get_settings


@pytest.fixture(autouse=True)
def fresh_settings(monkeypatch: pytest.MonkeyPatch):
    for name in list(__import__("os").environ):
        if name.startswith("LME_ENRICH_"):
            monkeypatch.delenv(name)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_a_wrong_setting_is_one_line_and_exit_2(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LME_ENRICH_ES_USERNAME", "elastic")
    monkeypatch.setenv("LME_ENRICH_ES_PASSWORD", "pw")
    monkeypatch.setenv("LME_ENRICH_LLM_API_KEY", "k")
    monkeypatch.setenv("LME_ENRICH_BATCH_SIZE", "many")
    result = CliRunner().invoke(main, ["check"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[0].startswith("lme-enrich: LME_ENRICH_BATCH_SIZE:")
    assert "Traceback" not in result.output


def test_debug_shows_the_traceback(monkeypatch: pytest.MonkeyPatch):
    result = CliRunner().invoke(main, ["--debug", "check"])
    assert result.exit_code != 0
    assert result.exception is not None
    assert "credentials are missing" in str(result.exception)


def test_help_lists_the_commands():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in ("run", "worker", "beat", "check", "health"):
        assert command in result.output
