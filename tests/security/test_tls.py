"""TLS is verified by default against the configured CA, for Elasticsearch and LiteLLM: a wrong CA or host
name fails start-up with a clear error, and turning verification off must be asked for and is logged."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.celery_procs import ROOT
from tests.fakes import tls
from tests.fakes.process import RunningServer, start_server
from tests.integration.conftest import LLM_KEY, start_llm

# fake_only: Elasticsearch must serve HTTPS (x-pack security, not on Maven Central): a test server of its own.
pytestmark = pytest.mark.fake_only


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> tls.TestCA:
    """A CA that signed nothing we talk to (an attacker's, or simply the wrong file)."""
    return tls.TestCA.create(tmp_path_factory.mktemp("other-ca"))


@pytest.fixture(scope="module")
def tls_es(server_cert: tls.ServerCert) -> Iterator[RunningServer]:
    server = start_server("tests.fakes.elasticsearch", ["--tls-cert", str(server_cert.cert),
                                                        "--tls-key", str(server_cert.key)])
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tls_llm(llm_cert: tls.ServerCert) -> Iterator[RunningServer]:
    server = start_llm(llm_cert, ["--instant"])
    yield server
    server.stop()


@pytest.fixture(scope="module")
def misnamed_llm(test_ca: tls.TestCA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """Signed by the right CA, but for another host name than the one we connect to."""
    cert = test_ca.issue(tmp_path_factory.mktemp("misnamed"), "not-litellm.example", ("not-litellm.example",))
    server = start_llm(cert, ["--instant"])
    yield server
    server.stop()


def _env(es: RunningServer, llm: RunningServer, test_ca: tls.TestCA, tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LME_ENRICH_")}
    env.update({
        "LME_ENRICH_ES_URL": es.url, "LME_ENRICH_ES_USERNAME": "elastic", "LME_ENRICH_ES_PASSWORD": "pw",
        "LME_ENRICH_ES_CA_CERT": str(test_ca.cert_path), "LME_ENRICH_LLM_URL": llm.url,
        "LME_ENRICH_LLM_API_KEY": LLM_KEY, "LME_ENRICH_LLM_CA_CERT": str(test_ca.cert_path),
        "LME_ENRICH_ALERT_INDEX": ".alerts-security.alerts-tlstest*", "LME_ENRICH_STATE_DIR": str(tmp),
        **extra,
    })
    return env


def _preflight(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "worker.admin.preflight"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def _error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("lme-enrich:")]
    assert len(lines) == 1, result.stderr[-2000:]
    return lines[0]


def test_verified_tls_to_both_starts(tls_es: RunningServer, tls_llm: RunningServer, test_ca: tls.TestCA,
                                     tmp_path: Path) -> None:
    result = _preflight(_env(tls_es, tls_llm, test_ca, tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "verification" not in result.stderr.lower()


def test_llm_signed_by_another_ca_fails_clearly(tls_es: RunningServer, tls_llm: RunningServer, test_ca: tls.TestCA,
                                                other_ca: tls.TestCA, tmp_path: Path) -> None:
    line = _error_line(_preflight(_env(tls_es, tls_llm, test_ca, tmp_path,
                                       LME_ENRICH_LLM_CA_CERT=str(other_ca.cert_path))))
    assert "TLS verification" in line and "LME_ENRICH_LLM_CA_CERT" in line


def test_llm_with_the_wrong_host_name_fails_clearly(tls_es: RunningServer, misnamed_llm: RunningServer,
                                                    test_ca: tls.TestCA, tmp_path: Path) -> None:
    line = _error_line(_preflight(_env(tls_es, misnamed_llm, test_ca, tmp_path)))
    assert "TLS verification" in line and "mismatch" in line.lower()


def test_elasticsearch_signed_by_another_ca_fails_clearly(
    tls_es: RunningServer, tls_llm: RunningServer, test_ca: tls.TestCA, other_ca: tls.TestCA, tmp_path: Path
) -> None:
    line = _error_line(_preflight(_env(tls_es, tls_llm, test_ca, tmp_path,
                                       LME_ENRICH_ES_CA_CERT=str(other_ca.cert_path))))
    assert "Elasticsearch" in line and "certificate verify failed" in line.lower()


def test_elasticsearch_with_the_wrong_host_name_fails_clearly(tls_llm: RunningServer, test_ca: tls.TestCA,
                                                              tmp_path: Path) -> None:
    cert = test_ca.issue(tmp_path / "misnamed-es", "not-es.example", ("not-es.example",))
    es = start_server("tests.fakes.elasticsearch", ["--tls-cert", str(cert.cert), "--tls-key", str(cert.key)])
    try:
        line = _error_line(_preflight(_env(es, tls_llm, test_ca, tmp_path)))
    finally:
        es.stop()
    assert "Elasticsearch" in line and "TLS error" in line and "doesn't match 'not-es.example'" in line


def test_turning_verification_off_must_be_explicit_and_is_logged(
    tls_es: RunningServer, tls_llm: RunningServer, test_ca: tls.TestCA, other_ca: tls.TestCA, tmp_path: Path
) -> None:
    # With the wrong CA and verification off it connects, and says loudly that it does not verify.
    env = _env(tls_es, tls_llm, test_ca, tmp_path, LME_ENRICH_ES_CA_CERT=str(other_ca.cert_path),
               LME_ENRICH_LLM_CA_CERT=str(other_ca.cert_path), LME_ENRICH_ES_VERIFY_CERTS="false",
               LME_ENRICH_LLM_VERIFY_CERTS="false")
    result = _preflight(env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "TLS verification of Elasticsearch is OFF" in result.stderr
    assert "TLS verification of LiteLLM is OFF" in result.stderr
    # Anything but an explicit false is refused, not read as "off".
    bad = _preflight({**env, "LME_ENRICH_ES_VERIFY_CERTS": "maybe"})
    assert bad.returncode == 2 and "LME_ENRICH_ES_VERIFY_CERTS" in bad.stderr
