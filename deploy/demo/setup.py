"""Demo stack helper, run in the lme-enrich image by compose.yaml's ``demo`` profile.

    python /demo/setup.py passwords   # before Kibana: give kibana_system its password
    python /demo/setup.py seed        # after Kibana: Kibana's alert index layout + sample alerts, fresh timestamps

Connects as ``elastic`` (``ELASTIC_PASSWORD_FILE``) to ``DEMO_ES_URL`` verifying ``DEMO_CA_CERT``. Each step is
idempotent: a restarted demo re-seeds with new alert ids, so there is always fresh work for the workers.
Standalone on purpose: the image must not depend on the project's tests.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from elasticsearch import ApiError, AuthenticationException, Elasticsearch, TransportError

SPACE = "default"
ALIAS = f".alerts-security.alerts-{SPACE}"
FIRST_INDEX = f".internal.alerts-security.alerts-{SPACE}-000001"
TEMPLATE = f".alerts-security.alerts-{SPACE}-index-template"
SAMPLE = Path(__file__).with_name("alerts-sample.ndjson")

# The part of Kibana's alert mapping the sample and lme-enrich use, with Kibana's types; used only when
# Kibana has not installed its own template yet (Kibana later puts its full mapping on the same index).
_KW = {"type": "keyword"}
_MAPPING: dict[str, Any] = {
    "dynamic": False,
    "properties": {
        "@timestamp": {"type": "date"},
        "event": {"properties": {"kind": _KW, "action": _KW, "category": _KW}},
        "host": {"properties": {"name": _KW}},
        "user": {"properties": {"name": _KW}},
        "kibana": {"properties": {
            "space_ids": _KW, "version": _KW,
            "alert": {"properties": {
                "uuid": _KW, "status": _KW, "severity": _KW, "risk_score": {"type": "float"},
                "workflow_status": _KW, "workflow_tags": _KW, "building_block_type": _KW,
                "original_time": {"type": "date"}, "start": {"type": "date"},
                "reason": {"type": "keyword", "fields": {"text": {"type": "match_only_text"}}},
                "rule": {"properties": {"name": _KW, "uuid": _KW, "rule_id": _KW, "severity": _KW,
                                        "risk_score": {"type": "float"}, "description": _KW, "tags": _KW}},
            }},
        }},
    },
}


def _client() -> Elasticsearch:
    password = Path(os.environ.get("ELASTIC_PASSWORD_FILE", "/run/secrets/elastic_password")).read_text().strip()
    tls: dict[str, Any] = {"ca_certs": os.environ["DEMO_CA_CERT"]} if os.environ.get("DEMO_CA_CERT") else {}
    return Elasticsearch(os.environ.get("DEMO_ES_URL", "https://lme-elasticsearch:9200"),
                         basic_auth=("elastic", password), request_timeout=30, **tls)


def _wait_for(es: Elasticsearch) -> None:
    deadline = time.monotonic() + float(os.environ.get("DEMO_WAIT_SECONDS", "300"))
    while True:
        try:
            es.cluster.health(wait_for_status="yellow", timeout="5s")
            return
        except AuthenticationException as exc:
            raise SystemExit(f"demo: Elasticsearch refused the elastic password (401): {exc}") from exc
        except (ApiError, TransportError) as exc:
            if time.monotonic() > deadline:
                raise SystemExit(f"demo: Elasticsearch did not become ready: {exc}") from exc
            time.sleep(3)  # sync-ok: polling a remote service with a deadline


def set_passwords(es: Elasticsearch) -> None:
    password = Path(os.environ.get("KIBANA_SYSTEM_PASSWORD_FILE",
                                   "/run/secrets/kibana_system_password")).read_text().strip()
    es.security.change_password(username="kibana_system", password=password)
    print("demo: kibana_system password set")


def install_layout(es: Elasticsearch) -> None:
    """Kibana's hidden concrete index behind a hidden write alias, as Kibana 8.18 lays it out."""
    if es.indices.exists_alias(name=ALIAS, expand_wildcards="all"):
        return
    if not es.indices.exists_index_template(name=TEMPLATE):
        es.indices.put_index_template(
            name=TEMPLATE, index_patterns=[f".internal.alerts-security.alerts-{SPACE}-*"], priority=7,
            template={"settings": {"index.hidden": True, "index.mapping.total_fields.limit": 2500,
                                   "index.number_of_replicas": 0},
                      "mappings": _MAPPING},
        )
    es.indices.create(index=FIRST_INDEX, aliases={ALIAS: {"is_write_index": True, "is_hidden": True}})
    print(f"demo: created {FIRST_INDEX} behind {ALIAS}")


def _fresh(doc: dict[str, Any], when: datetime) -> tuple[str, dict[str, Any]]:
    """The alert as if its rule had just fired: new id (= kibana.alert.uuid), recent timestamps."""
    alert_id = uuid.uuid4().hex
    stamp = when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    fresh = dict(doc)
    fresh["@timestamp"] = stamp
    for key in ("kibana.alert.uuid",):
        if key in fresh:
            fresh[key] = alert_id
    kibana = fresh.get("kibana")
    if isinstance(kibana, dict) and isinstance(kibana.get("alert"), dict):
        kibana["alert"] = {**kibana["alert"], "uuid": alert_id}
    fresh.pop("lme", None)
    return alert_id, fresh


def seed(es: Elasticsearch) -> int:
    docs = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]
    now = datetime.now(UTC)
    operations: list[dict[str, Any]] = []
    for position, doc in enumerate(docs):
        alert_id, fresh = _fresh(doc, now - timedelta(seconds=len(docs) - position))
        operations += [{"create": {"_index": ALIAS, "_id": alert_id}}, fresh]
    response = es.bulk(operations=operations, refresh=True)
    failed = [item["create"] for item in response["items"] if item["create"].get("status", 500) >= 300]
    if failed:
        raise SystemExit(f"demo: {len(failed)} alerts were refused, first: {failed[0].get('error')}")
    print(f"demo: wrote {len(docs)} sample alerts into {ALIAS}; open Kibana > Security > Alerts")
    return len(docs)


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in ("passwords", "seed"):
        print(__doc__, file=sys.stderr)
        return 2
    es = _client()
    _wait_for(es)
    if argv[0] == "passwords":
        set_passwords(es)
    else:
        install_layout(es)
        seed(es)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
