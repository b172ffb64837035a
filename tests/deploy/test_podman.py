"""Build the image with Podman and run it against the test servers (``--network host``).

Skipped, with the reason printed, where containers cannot run: no podman/runc, or no base image. Never
pulls: on machines without a registry make the base with ``deploy/dev/make-base-image.sh`` first. The
build reaches no package index either: the pinned wheels are downloaded by the host's pip and served to
``podman build`` from a loopback index (the Containerfile's ``PIP_INDEX_URL`` build argument).
"""

from __future__ import annotations

import base64
import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch
from packaging.utils import canonicalize_name, parse_wheel_filename

from tests import kibana
from tests.fakes.process import start_server

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "docker.io/library/python:3.11-slim-bookworm"
IMAGE = "localhost/lme-enrich:pytest"
WHEEL_CACHE = Path(os.environ.get("LME_ENRICH_WHEEL_CACHE", "/var/tmp/lme-enrich-wheels"))
API_KEY_ID, API_KEY_SECRET = "pytest-key", "pytest-secret"
LLM_KEY = "sk-pytest-llm"


def _podman(conf: Path, *args: str, timeout: float = 120, check: bool = False) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CONTAINERS_CONF": str(conf)}
    # runc: crun fails on hybrid-cgroup hosts such as ours; harmless elsewhere.
    return subprocess.run(["podman", "--runtime", "runc", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=check)


@pytest.fixture(scope="module")
def podman_conf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    missing = [tool for tool in ("podman", "runc") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"containers cannot run here: {' and '.join(missing)} not installed (apt-get install podman runc)")
    conf = tmp_path_factory.mktemp("podman") / "containers.conf"
    # Podman's default ulimits (RLIMIT_NPROC) cannot be set inside our sandbox.
    conf.write_text("[containers]\ndefault_ulimits = []\n", encoding="utf-8")
    if _podman(conf, "image", "exists", BASE_IMAGE).returncode != 0:
        pytest.skip(f"base image {BASE_IMAGE} is not present locally and this test never pulls; "
                    "make it with deploy/dev/make-base-image.sh (debootstrap + podman import)")
    probe = _podman(conf, "run", "--rm", "--pull=never", "--network", "host", BASE_IMAGE, "true", timeout=60)
    if probe.returncode != 0:
        pytest.skip(f"podman cannot run a container here: {probe.stderr.strip()[-300:]}")
    return conf


def _wheel_index(root: Path, scratch: Path) -> Path:
    """A PEP 503 'simple' tree of the pinned wheels and the build backend, hash-checked by the host's pip."""
    WHEEL_CACHE.mkdir(parents=True, exist_ok=True)
    # The image's base may be Debian's Python 3.11.2: keep the pins whose marker only holds there (async-timeout)
    # by dropping python_full_version markers, so this host's newer 3.11 downloads them too.
    wanted = scratch / "wanted.txt"
    wanted.write_text("".join(re.sub(r" ; python_full_version [^\\]*", " ", (ROOT / "deploy" / lock).read_text())
                              for lock in ("requirements.lock", "build.lock")))
    download = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary", ":all:", "--require-hashes",
         "--no-deps", "--dest", str(WHEEL_CACHE), "-r", str(wanted)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    if download.returncode != 0:
        pytest.skip(f"the host's pip could not fetch the pinned wheels: {download.stderr.strip()[-300:]}")
    simple = root / "simple"
    for wheel in WHEEL_CACHE.glob("*.whl"):
        project = simple / canonicalize_name(parse_wheel_filename(wheel.name)[0])
        project.mkdir(parents=True, exist_ok=True)
        shutil.copy2(wheel, project / wheel.name)
    return simple


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def wheel_index_url(tmp_path_factory: pytest.TempPathFactory, podman_conf: Path) -> Iterator[str]:
    root = tmp_path_factory.mktemp("index")
    _wheel_index(root, tmp_path_factory.mktemp("wanted"))
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/simple/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def image(podman_conf: Path, wheel_index_url: str) -> Iterator[str]:
    # --layers=false: no cached builder-stage images left behind on the machine.
    build = _podman(podman_conf, "build", "--pull=never", "--layers=false", "--network", "host", "--format", "docker",
                    "--build-arg", f"PIP_INDEX_URL={wheel_index_url}", "-t", IMAGE, "-f", "Containerfile", str(ROOT),
                    timeout=900)
    assert build.returncode == 0, f"podman build failed:\n{build.stdout[-3000:]}\n{build.stderr[-3000:]}"
    yield IMAGE
    _podman(podman_conf, "rmi", "--force", IMAGE)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[str, str]]:
    es = start_server("tests.fakes.elasticsearch", ["--api-key", f"{API_KEY_ID}:{API_KEY_SECRET}"])
    llm = start_server("tests.fakes.llm", ["--api-key", LLM_KEY, "--instant"])
    yield es.url, llm.url
    llm.stop()
    es.stop()


def _secret(tmp_path: Path, name: str, value: str) -> Path:
    path = tmp_path / name
    path.write_text(value + "\n", encoding="utf-8")
    path.chmod(0o644)  # read by the image's unprivileged user through a bind mount
    return path


def _run_args(tmp_path: Path, es_url: str, llm_url: str) -> list[str]:
    encoded = base64.b64encode(f"{API_KEY_ID}:{API_KEY_SECRET}".encode()).decode()
    es_key = _secret(tmp_path, "es_api_key", encoded)
    llm_key = _secret(tmp_path, "llm_api_key", LLM_KEY)
    return [
        "--pull=never", "--no-healthcheck", "--network", "host", "--read-only",
        "-v", f"{es_key}:/run/secrets/es_api_key:ro", "-v", f"{llm_key}:/run/secrets/llm_api_key:ro",
        "-e", f"LME_ENRICH_ES_URL={es_url}", "-e", "LME_ENRICH_ES_API_KEY_FILE=/run/secrets/es_api_key",
        "-e", f"LME_ENRICH_LLM_URL={llm_url}", "-e", "LME_ENRICH_LLM_API_KEY_FILE=/run/secrets/llm_api_key",
    ]


def test_check_in_the_container_maps_our_fields(podman_conf: Path, image: str, servers: tuple[str, str],
                                                tmp_path: Path) -> None:
    es_url, llm_url = servers
    es = Elasticsearch(es_url, api_key=(API_KEY_ID, API_KEY_SECRET))
    space = kibana.Space()
    kibana.install(es, space)
    result = _podman(podman_conf, "run", "--rm", *_run_args(tmp_path, es_url, llm_url), image, "check")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ready" in result.stdout
    mapping = es.indices.get_mapping(index=space.first_index, expand_wildcards="all")[space.first_index]
    assert "ai" in mapping["mappings"]["properties"]["lme"]["properties"], "check did not map lme.ai.* from the image"


def test_worker_container_reports_healthy(podman_conf: Path, image: str, servers: tuple[str, str], tmp_path: Path,
                                          redis_url: str) -> None:
    es_url, llm_url = servers
    name = f"lme-enrich-pytest-{os.getpid()}"
    started = _podman(podman_conf, "run", "-d", "--name", name, *_run_args(tmp_path, es_url, llm_url),
                      "-e", f"LME_ENRICH_REDIS_URL={redis_url}", image, "worker", "--role", "poll")
    assert started.returncode == 0, started.stderr
    try:
        deadline = time.monotonic() + 90
        health = _podman(podman_conf, "exec", name, "lme-enrich", "health", "poll")
        while health.returncode != 0 and time.monotonic() < deadline:
            health = _podman(podman_conf, "exec", name, "lme-enrich", "health", "poll")
        logs = _podman(podman_conf, "logs", name).stderr[-2000:]
        assert health.returncode == 0, f"poll worker never answered its health check:\n{health.stderr}\n{logs}"
        # The same check for a role this container does not run must fail: the check means something.
        assert _podman(podman_conf, "exec", name, "lme-enrich", "health", "assess").returncode != 0
    finally:
        stopped = _podman(podman_conf, "stop", "--time", "30", name)
        _podman(podman_conf, "rm", "--force", name)
    assert stopped.returncode == 0


def test_setup_credentials_in_the_container_prints_only_the_key(podman_conf: Path, image: str,
                                                                tmp_path: Path) -> None:
    """What deploy/install-lme.sh pipes into `podman secret create`: the encoded key alone on stdout."""
    security = start_server("tests.deploy.security_server", ["--password", "admin-pw"])
    try:
        password = _secret(tmp_path, "elastic", "admin-pw")
        llm_key = _secret(tmp_path, "llm_api_key", LLM_KEY)
        result = _podman(podman_conf, "run", "--rm", "--pull=never", "--no-healthcheck", "--network", "host",
                         "--read-only", "-v", f"{password}:/run/secrets/elastic:ro",
                         "-v", f"{llm_key}:/run/secrets/llm_api_key:ro",
                         "-e", f"LME_ENRICH_ES_URL={security.url}", "-e", "LME_ENRICH_ES_USERNAME=elastic",
                         "-e", "LME_ENRICH_ES_PASSWORD_FILE=/run/secrets/elastic",
                         "-e", "LME_ENRICH_LLM_API_KEY_FILE=/run/secrets/llm_api_key", image, "setup-credentials")
    finally:
        security.stop()
    if "No such command" in result.stderr:
        pytest.skip("`lme-enrich setup-credentials` is not wired into the CLI yet "
                    "(worker/admin/credentials.setup exists)")
    assert result.returncode == 0, result.stderr[-2000:]
    assert base64.b64decode(result.stdout.strip()).decode() == "key-1:secret-key-1"
