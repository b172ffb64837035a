"""The reliability suites' fixtures (see tests/faults/conftest.py)."""

from tests.faults.conftest import own_redis, redis_url  # noqa: F401  (fixtures, found by pytest by name)
from tests.integration.conftest import (  # noqa: F401  (fixtures, found by pytest through these names)
    clean_redis,
    llm,
    llm_cert,
    slow_llm,
    space,
    worker_env,
)
