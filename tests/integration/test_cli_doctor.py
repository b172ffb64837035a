"""``lme-enrich doctor`` against the Elasticsearch test server, real Redis and the LLM simulator.

fake_only: doctor reads the version from ``GET /`` (rest-root) and the key's privileges from
``_security/user/_has_privileges`` (x-pack security); neither module is on Maven Central, so the real node
answers 405 to the first (doctor stops with an ApiError there) and has no security API.
"""

from __future__ import annotations

import json

import pytest
from elasticsearch import Elasticsearch

from tests import kibana
from tests.es_backends import on_test_server
from tests.integration.conftest import LLMSim
from tests.integration.test_cli import cli

# fake_only: doctor needs GET / (rest-root) and _has_privileges (x-pack security); see the docstring.
pytestmark = [pytest.mark.slow, pytest.mark.fake_only]

es_url, es = on_test_server()


def test_doctor_all_good_and_each_failure(
    es: Elasticsearch, space: kibana.Space, llm: LLMSim, worker_env: dict[str, str]
) -> None:
    kibana.seed(es, space, kibana.eligible(kibana.load_corpus())[:1])
    assert cli(worker_env, "check").returncode == 0
    good = cli(worker_env, "doctor", "--json")
    report = json.loads(good.stdout)
    verdicts = {c["name"]: c["verdict"] for c in report["checks"]}
    assert good.returncode == 0, good.stdout
    assert verdicts["elasticsearch"] == verdicts["mapping"] == verdicts["litellm"] == verdicts["model"] == "ok"
    assert verdicts["redis"] == "ok"
    assert verdicts["beat"] in ("warn", "ok")
    assert worker_env["LME_ENRICH_LLM_API_KEY"] not in good.stdout

    wrong_key = cli({**worker_env, "LME_ENRICH_LLM_API_KEY": "sk-wrong"}, "doctor")
    assert wrong_key.returncode == 1
    assert "FAIL litellm" in wrong_key.stdout
    assert "sk-wrong" not in wrong_key.stdout
    wrong_model = cli({**worker_env, "LME_ENRICH_LLM_MODEL": "gpt-4"}, "doctor")
    assert "lfm2.5-1.2b-instruct" in wrong_model.stdout
    assert wrong_model.returncode == 1
    es_down = cli({**worker_env, "LME_ENRICH_ES_URL": "http://127.0.0.1:9"}, "doctor")
    assert es_down.returncode == 1
    assert "FAIL elasticsearch: cannot reach" in es_down.stdout
    redis_down = cli({**worker_env, "LME_ENRICH_REDIS_URL": "redis://127.0.0.1:9/0"}, "doctor")
    assert "FAIL redis" in redis_down.stdout
