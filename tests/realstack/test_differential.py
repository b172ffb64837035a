"""Differential check: a full pipeline run's Elasticsearch requests, replayed on the real node and the test server.

A small run (20 alerts through two racing pairs of real Celery workers and beats, the LLM simulator, a few
Kibana status changes meanwhile, then ``lme-enrich status``) goes
through the fault proxy in front of a fresh test server, which logs every request (Kibana's index template and
write alias, the seeding, mapping puts, polls with point-in-time paging, bulk claims, conditional updates, the
history index, status aggregations). The log is then replayed, in order and one request at a time, against a
fresh real node and a fresh test server, and the two answers to each request are compared: status code and body,
with ``took``, shard counts, point-in-time ids, uuids and creation dates normalised. Point-in-time ids are
mapped from the recorded ones to each target's own. Both targets refresh before every search, because a replay's
timing is not the recording's and near-real-time visibility would otherwise differ by chance.

``KNOWN`` lists each difference that remains, with its reason; any other difference fails the test.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from elasticsearch import Elasticsearch

from tests import kibana
from tests.celery_procs import ROOT, celery_processes
from tests.conftest import start_real_node
from tests.fakes import tls
from tests.fakes.process import RunningServer, start_server
from tests.faults.harness import seed_distinct, start_pipeline
from tests.faults.redis_server import OwnRedis
from tests.integration.conftest import LLM_KEY, LLMSim, llm, llm_cert  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.slow, pytest.mark.real_es]

ALERTS = 20
SEARCHES = re.compile(r"/_search|/_count|/_msearch|/_pit\b|/_async_search")
#: Keys whose values differ between any two clusters, runs or nodes: dropped before comparing.
VOLATILE = {"took", "_shards", "pit_id", "uuid", "index_uuid", "creation_date", "cluster_uuid", "_node",
            "num_reduce_phases"}

#: Known differences that remain, as (request pattern "METHOD path-regex", JSON path regex) -> reason.
KNOWN: dict[tuple[str, str], str] = {
    ("POST /_pit$", r"^id$"):
        "point-in-time ids are opaque, one cluster's own (the replay maps them to each target's)",
    ("POST /_doc$", r"^_id$"):
        "ids Elasticsearch generates (history records) are unique, not reproducible",
    # Found by doc_sort_positions(), not by this pattern: sort values of `_doc` and of `_shard_doc` (which a
    # point-in-time search adds as its last sort key).
    ("POST /_search$", "<_doc and _shard_doc sort values>"):
        "a `_doc`/`_shard_doc` sort value is Lucene's doc id, which depends on segments, updates and merges; its "
        "contract (a stable tiebreaker within the point in time or the shard) holds on both, and the hits and "
        "their order are compared",
}


# -- recording ------------------------------------------------------------------------------------------------
def _worker_env(es_url: str, sim: LLMSim, redis_url: str, space: kibana.Space, ca: tls.TestCA) -> dict[str, str]:
    return {
        "LME_ENRICH_ES_URL": es_url, "LME_ENRICH_ES_USERNAME": "elastic", "LME_ENRICH_ES_PASSWORD": "unused",
        "LME_ENRICH_LLM_URL": sim.url, "LME_ENRICH_LLM_API_KEY": LLM_KEY,
        "LME_ENRICH_LLM_CA_CERT": str(ca.cert_path), "LME_ENRICH_REDIS_URL": redis_url,
        "LME_ENRICH_ALERT_INDEX": space.pattern, "LME_ENRICH_POLL_INTERVAL": "1s", "LME_ENRICH_BATCH_SIZE": "8",
        "LME_ENRICH_CONCURRENCY": "2", "LME_ENRICH_LLM_READ_TIMEOUT": "30s", "LME_ENRICH_CLAIM_LEASE": "5m",
        "LME_ENRICH_LLM_RETRY_WAIT_MAX": "2s", "LME_ENRICH_RETRY_BACKOFF_MAX": "3s",
    }


@pytest.fixture(scope="module")
def recorded(llm: LLMSim, test_ca: tls.TestCA,  # noqa: F811
             tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The request log of one small pipeline run against a fresh test server (through the proxy)."""
    own_redis = OwnRedis(tmp_path_factory.mktemp("diff-redis"), persistent=False)  # no other run's tasks
    own_redis.start()
    redis_url = own_redis.url
    server = start_server("tests.fakes.elasticsearch")
    proxy = start_server("tests.realstack.es_fault_proxy", ["--upstream", server.url])
    try:
        es = Elasticsearch(proxy.url, request_timeout=30)
        space = kibana.Space("tdiff")
        kibana.install(es, space)
        ledger = seed_distinct(es, space, ALERTS, "diff")
        env = _worker_env(proxy.url, llm, redis_url, space, test_ca)
        workdir = tmp_path_factory.mktemp("diff-run")
        with celery_processes(env, workdir) as procs:
            start_pipeline(procs)
            start_pipeline(procs, suffix="-b")  # two beats and pollers racing: claims that conflict (409s)
            for doc_id in sorted(ledger.placed)[:4]:  # Kibana acting meanwhile: conditional writes that conflict
                ledger.kibana_update(doc_id, {"kibana.alert.workflow_status": "acknowledged"})
            ledger.wait_all_final(timeout=120)
        status = subprocess.run([sys.executable, "-m", "worker.admin.cli", "status", "--json"], cwd=ROOT, timeout=120,
                                env={**os.environ, **env}, capture_output=True, text=True, check=False)
        assert status.returncode == 0, status.stderr[-2000:]
        es.close()
        log: list[dict[str, Any]] = httpx.get(proxy.url + "/_fake/requests", timeout=30).json()["requests"]
    finally:
        proxy.stop()
        server.stop()
        own_redis.stop()
    assert len(log) > 50
    return log


# -- replaying ------------------------------------------------------------------------------------------------
class Replayer:
    """Sends the recorded requests to one target, mapping point-in-time ids and ``search_after`` values (their
    ``_shard_doc`` tiebreaker is the cluster's own) from the recording's to its own."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=60)
        self.ids: dict[str, str] = {}
        self.sorts: dict[str, list[Any]] = {}

    def _map(self, text: str) -> str:
        for old, new in self.ids.items():
            text = text.replace(old, new)
        return text

    def _learn(self, recorded: Any, answered: Any) -> None:
        for key in ("id", "pit_id"):
            old = recorded.get(key) if isinstance(recorded, dict) else None
            new = answered.get(key) if isinstance(answered, dict) else None
            if isinstance(old, str) and isinstance(new, str) and len(old) > 20 and old != new:
                self.ids[old] = new
        if isinstance(recorded, dict) and isinstance(answered, dict):
            mine = {h.get("_id"): h.get("sort") for h in answered.get("hits", {}).get("hits", [])}
            for hit in recorded.get("hits", {}).get("hits", []):
                if hit.get("sort") is not None and mine.get(hit.get("_id")) is not None:
                    self.sorts[json.dumps(hit["sort"])] = mine[hit["_id"]]

    def send(self, entry: dict[str, Any]) -> tuple[int, Any]:
        uri, body = self._map(entry["uri"]), self._map(entry["body"])
        if '"search_after"' in body:
            parsed = json.loads(body)
            parsed["search_after"] = self.sorts.get(json.dumps(parsed["search_after"]), parsed["search_after"])
            body = json.dumps(parsed)
        if SEARCHES.search(uri.split("?")[0]) and entry["method"] != "DELETE":
            self.http.post("/_refresh", params={"expand_wildcards": "all", "ignore_unavailable": "true"})
        headers = {k: v for k, v in (("Content-Type", entry.get("content_type")),
                                     ("Accept", entry.get("accept"))) if v}
        response = self.http.request(entry["method"], uri, content=body.encode() if body else None, headers=headers)
        answered = _parse(response.text)
        self._learn(_parse(entry["response"]), answered)
        return response.status_code, answered

    def close(self) -> None:
        self.http.close()


def _parse(text: str) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return text


# An index named in an error message carries its uuid ("index [name/uuid] already exists"), one cluster's own.
INDEX_UUID = re.compile(r"(\[[^\[\]/]+/)[A-Za-z0-9_-]{20,24}\]")


def normalise(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    if isinstance(value, str):
        return INDEX_UUID.sub(r"\1<uuid>]", value)
    return value


def differences(a: Any, b: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """(JSON path, real, test server) for every leaf that differs."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(a.keys() | b.keys()):
            yield from differences(a.get(key, "<absent>"), b.get(key, "<absent>"), f"{path}.{key}" if path else key)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for n, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from differences(x, y, f"{path}[{n}]")
    elif a != b:
        yield path, a, b


DOC_SORT_REASON = KNOWN[("POST /_search$", "<_doc and _shard_doc sort values>")]


def doc_sort_positions(entry: dict[str, Any]) -> set[int]:
    """Positions in each hit's ``sort`` that hold a Lucene doc id (``_doc``, ``_shard_doc``)."""
    body = _parse(entry["body"])
    if not isinstance(body, dict) or "sort" not in body:
        return set()
    keys = [next(iter(k)) if isinstance(k, dict) else str(k) for k in body["sort"]]
    positions = {n for n, key in enumerate(keys) if key in ("_doc", "_shard_doc")}
    if "pit" in body and "_shard_doc" not in keys:
        positions.add(len(keys))  # the implicit tiebreaker
    return positions


def known(entry: dict[str, Any], path: str) -> str | None:
    sort_value = re.fullmatch(r"hits\.hits\[\d+\]\.sort\[(\d+)\]", path)
    if sort_value and int(sort_value.group(1)) in doc_sort_positions(entry):
        return DOC_SORT_REASON
    target = f"{entry['method']} {entry['uri'].split('?')[0]}"
    for (request, field), reason in KNOWN.items():
        method, _, pattern = request.partition(" ")
        if target.startswith(method + " ") and re.search(pattern, target[len(method) + 1:]) and re.search(field, path):
            return reason
    return None


@pytest.fixture(scope="module")
def targets() -> Iterator[tuple[RunningServer, RunningServer]]:
    real = start_real_node()
    server = start_server("tests.fakes.elasticsearch")
    yield real, server
    server.stop()
    real.stop(timeout=40)


def test_replayed_pipeline_run_answers_alike(recorded: list[dict[str, Any]],
                                             targets: tuple[RunningServer, RunningServer], tmp_path: Path) -> None:
    real, server = (Replayer(t.url) for t in targets)
    unexplained: list[str] = []
    explained: dict[str, int] = {}
    try:
        for n, entry in enumerate(recorded):
            real_status, real_body = real.send(entry)
            test_status, test_body = server.send(entry)
            where = f"#{n} {entry['method']} {entry['uri'][:120]}"
            if real_status != test_status:
                unexplained.append(f"{where}: status real={real_status} test-server={test_status}\n"
                                   f"    real: {json.dumps(real_body)[:400]}\n    test: {json.dumps(test_body)[:400]}")
                continue
            for path, a, b in differences(normalise(real_body), normalise(test_body)):
                reason = known(entry, path)
                if reason is not None:
                    explained[reason] = explained.get(reason, 0) + 1
                else:
                    unexplained.append(f"{where}: {path}: real={json.dumps(a)[:300]} test-server={json.dumps(b)[:300]}")
    finally:
        real.close()
        server.close()
    (tmp_path / "differences.txt").write_text("\n".join(unexplained))
    (tmp_path / "requests.json").write_text(json.dumps(recorded, indent=1))
    kinds: dict[str, int] = {}
    for entry in recorded:
        kind = f"{entry['method']} {re.sub(r'^/[^_][^/]*', '/{index}', entry['uri'].split('?')[0])}"
        kind = re.sub(r"/_(doc|update|create)/[^/]+$", r"/_\1/{id}", kind)
        kinds[kind] = kinds.get(kind, 0) + 1
    print(f"\nDIFFERENTIAL: {len(recorded)} requests replayed; {len(unexplained)} unexplained differences; "
          f"explained: {explained}\nrequests: {json.dumps(kinds, sort_keys=True)}")
    assert not unexplained, f"{len(unexplained)} unexplained differences:\n" + "\n".join(unexplained[:40])
