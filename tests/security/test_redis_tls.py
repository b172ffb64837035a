"""Redis with a password over TLS, as SECURITY.md documents it: both our client and Celery's broker connect
with `rediss://:password@host/0?ssl_cert_reqs=required&ssl_ca_certs=CA`, and refuse another CA."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.celery_procs import ROOT, wait_for
from tests.fakes import tls
from tests.faults.redis_server import _free_port

PASSWORD = "redis-tls-pw"
PROBE = """
from worker.app import app
from worker.dispatch.redis_client import get_redis
assert get_redis().ping()
with app.connection_for_write() as conn:
    conn.ensure_connection(max_retries=1)
print("connected")
"""


@pytest.fixture
def tls_redis(server_cert: tls.ServerCert, test_ca: tls.TestCA, tmp_path: Path) -> Iterator[int]:
    binary = shutil.which("redis-server")
    assert binary
    port = _free_port()
    proc = subprocess.Popen([binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
                             "--tls-cert-file", str(server_cert.cert), "--tls-key-file", str(server_cert.key),
                             "--tls-ca-cert-file", str(test_ca.cert_path), "--tls-auth-clients", "no",
                             "--requirepass", PASSWORD, "--dir", str(tmp_path), "--save", ""],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _probe(port, test_ca.cert_path).returncode == 0, timeout=20, interval=0.3,
                 what="redis-server with TLS")
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def _probe(port: int, ca: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LME_ENRICH_")}
    env.update({"LME_ENRICH_REDIS_URL": f"rediss://:{PASSWORD}@localhost:{port}/0?ssl_cert_reqs=required"
                                        f"&ssl_ca_certs={ca}",
                "LME_ENRICH_ES_URL": "http://127.0.0.1:9", "LME_ENRICH_ES_USERNAME": "u",
                "LME_ENRICH_ES_PASSWORD": "p", "LME_ENRICH_LLM_API_KEY": "k"})
    return subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60, check=False)


def test_rediss_with_a_password_connects(tls_redis: int, test_ca: tls.TestCA) -> None:
    result = _probe(tls_redis, test_ca.cert_path)
    assert result.returncode == 0, result.stderr[-1500:]
    assert "connected" in result.stdout


def test_rediss_refuses_a_server_from_another_ca(tls_redis: int, tmp_path: Path) -> None:
    other = tls.TestCA.create(tmp_path / "other")
    result = _probe(tls_redis, other.cert_path)
    assert result.returncode != 0
    assert "certificate verify failed" in result.stderr.lower()
    assert PASSWORD not in result.stdout + result.stderr
