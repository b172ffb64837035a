"""Fixtures for the reliability and security suites: the pipeline fixtures of tests/integration, and
Redis servers of their own (the machine's Redis is shared with other test runs, which empty it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.es_backends import es_fault_proxy  # noqa: F401  (fixture, found by pytest through this name)
from tests.faults.redis_server import OwnRedis
from tests.integration.conftest import (  # noqa: F401  (fixtures, found by pytest through these names)
    clean_redis,
    llm,
    llm_cert,
    paced_llm,
    slow_llm,
    space,
    worker_env,
)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server of these suites' own, so no other test run can empty it under a running worker."""
    server = OwnRedis(tmp_path_factory.mktemp("suite-redis"))
    server.start()
    yield server.url
    server.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    """A redis-server of this test's own (append-only file in a tmp dir), safe to kill and restart."""
    server = OwnRedis(tmp_path / "redis")
    server.start()
    yield server
    server.stop()

