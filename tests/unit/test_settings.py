"""Settings come from LME_ENRICH_* variables and fail with messages that name the variable."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from worker.settings import ConfigError, Severity, load_settings, parse_duration

BASE = {
    "LME_ENRICH_ES_USERNAME": "elastic",
    "LME_ENRICH_ES_PASSWORD": "es-secret-value",
    "LME_ENRICH_LLM_API_KEY": "sk-secret-value",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch):
    for name in list(__import__("os").environ):
        if name.startswith("LME_ENRICH_"):
            monkeypatch.delenv(name)
    for name, value in BASE.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_defaults_match_lme(env):
    s = load_settings()
    assert s.es_url == ["https://lme-elasticsearch:9200"]
    assert s.llm_url == "https://lme-litellm:4000"
    assert s.llm_model == "lfm2.5-1.2b-instruct"
    assert s.alert_index == ".alerts-security.alerts-*"
    assert s.backfill_window == timedelta(hours=24)
    assert s.llm_read_timeout >= timedelta(seconds=300)
    assert s.es_verify_certs is True and s.llm_verify_certs is True
    assert s.reassess_tag == "AI: Re-assess"


def test_values_are_parsed(env):
    env.setenv("LME_ENRICH_ES_URL", "https://a:9200, https://b:9200")
    env.setenv("LME_ENRICH_POLL_INTERVAL", "2m")
    env.setenv("LME_ENRICH_SEVERITY_FLOOR", "High")
    env.setenv("LME_ENRICH_ES_VERIFY_CERTS", "false")
    env.setenv("LME_ENRICH_LLM_URL", "https://llm:4000/")
    s = load_settings()
    assert s.es_url == ["https://a:9200", "https://b:9200"]
    assert s.poll_interval == timedelta(minutes=2)
    assert s.severity_floor is Severity.high
    assert s.es_verify_certs is False
    assert s.llm_url == "https://llm:4000"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("LME_ENRICH_POLL_INTERVAL", "soon", "LME_ENRICH_POLL_INTERVAL: expected a duration"),
        ("LME_ENRICH_ES_URL", "ftp://x", "LME_ENRICH_ES_URL: expected an http:// or https:// URL"),
        ("LME_ENRICH_ES_URL", "https://elastic:pw@h:9200", "LME_ENRICH_ES_URL: put credentials in their own"),
        ("LME_ENRICH_SEVERITY_FLOOR", "huge", "LME_ENRICH_SEVERITY_FLOOR: expected one of low, medium"),
        ("LME_ENRICH_BATCH_SIZE", "0", "LME_ENRICH_BATCH_SIZE:"),
        ("LME_ENRICH_LLM_READ_TIMEOUT", "5s", "LME_ENRICH_LLM_READ_TIMEOUT: 5s is too short"),
        ("LME_ENRICH_REDIS_URL", "http://x", "LME_ENRICH_REDIS_URL: expected a redis://"),
        ("LME_ENRICH_ES_CA_CERT", "/nonexistent/ca.crt", "LME_ENRICH_ES_CA_CERT: CA certificate file"),
        ("LME_ENRICH_ES_VERIFY_CERTS", "", "LME_ENRICH_ES_VERIFY_CERTS: expected true or false"),
    ],
)
def test_wrong_value_names_the_variable(env, variable, value, expected):
    env.setenv(variable, value)
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert expected in str(err.value)


def test_every_problem_is_reported_at_once(env):
    env.setenv("LME_ENRICH_POLL_INTERVAL", "soon")
    env.setenv("LME_ENRICH_BATCH_SIZE", "-1")
    message = str(pytest.raises(ConfigError, load_settings).value)
    assert "LME_ENRICH_POLL_INTERVAL" in message and "LME_ENRICH_BATCH_SIZE" in message


def test_missing_credentials(env):
    env.delenv("LME_ENRICH_ES_PASSWORD")
    assert "credentials are missing" in str(pytest.raises(ConfigError, load_settings).value)
    env.setenv("LME_ENRICH_ES_PASSWORD", "x")
    env.delenv("LME_ENRICH_LLM_API_KEY")
    assert "LME_ENRICH_LLM_API_KEY" in str(pytest.raises(ConfigError, load_settings).value)


def test_api_key_and_password_together_are_refused(env):
    env.setenv("LME_ENRICH_ES_API_KEY", "abc")
    assert "not both" in str(pytest.raises(ConfigError, load_settings).value)


def test_secrets_from_files(env, tmp_path: Path):
    secret = tmp_path / "elastic"
    secret.write_text("from-a-file\n")
    env.delenv("LME_ENRICH_ES_PASSWORD")
    env.setenv("LME_ENRICH_ES_PASSWORD_FILE", str(secret))
    s = load_settings()
    assert s.es_password is not None
    assert s.es_password.get_secret_value() == "from-a-file"


def test_secret_file_errors(env, tmp_path: Path):
    env.setenv("LME_ENRICH_LLM_API_KEY_FILE", str(tmp_path / "missing"))
    assert "set either" in str(pytest.raises(ConfigError, load_settings).value)
    env.delenv("LME_ENRICH_LLM_API_KEY")
    message = str(pytest.raises(ConfigError, load_settings).value)
    assert message.startswith("LME_ENRICH_LLM_API_KEY_FILE: cannot read secret file")


def test_secrets_never_appear_in_errors_or_repr(env):
    env.setenv("LME_ENRICH_BATCH_SIZE", "nope")
    message = str(pytest.raises(ConfigError, load_settings).value)
    assert "es-secret-value" not in message and "sk-secret-value" not in message
    env.setenv("LME_ENRICH_BATCH_SIZE", "10")
    shown = repr(load_settings())
    assert "es-secret-value" not in shown and "sk-secret-value" not in shown


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("30s", 30), ("5m", 300), ("24h", 86400), ("7d", 604800), ("1.5h", 5400), ("250ms", 0.25)],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text).total_seconds() == pytest.approx(seconds)
