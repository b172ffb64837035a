"""``lme-enrich doctor``: check every dependency and say what is wrong and how to fix it.

Read-only: it changes nothing (``lme-enrich check`` is the one that maps fields). Secrets are never
printed; errors quote what the server said, which never contains them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, Literal

import redis
from elastic_transport import ConnectionError as ESConnectionError
from elastic_transport import TlsError
from elasticsearch import ApiError, AuthenticationException, AuthorizationException, Elasticsearch

from worker.admin import credentials
from worker.alerts import fields
from worker.alerts.es import make_client
from worker.alerts.store import AlertStore, mapped_paths
from worker.assessing.llm import LLMClient, LLMError
from worker.dispatch import heartbeat
from worker.settings import Settings

Verdict = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    name: str
    verdict: Verdict
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _es_checks(settings: Settings, es: Elasticsearch) -> Iterator[Check]:
    where = ", ".join(settings.es_url)
    try:
        version = str(es.info()["version"]["number"])
    except AuthorizationException:
        # The least-privilege key has no cluster `monitor`: the server answered, which is what we need.
        version = "8.x (version hidden from this key)"
    except TlsError as exc:
        yield Check("elasticsearch", "fail", f"TLS to {where} failed: {exc.message}",
                    "set LME_ENRICH_ES_CA_CERT to LME's CA (lme_certs volume, ca/ca.crt)")
        return
    except AuthenticationException:
        yield Check("elasticsearch", "fail", f"{where} refused the credentials (401)",
                    "check LME_ENRICH_ES_USERNAME/LME_ENRICH_ES_PASSWORD or LME_ENRICH_ES_API_KEY")
        return
    except ESConnectionError as exc:
        yield Check("elasticsearch", "fail", f"cannot reach {where}: {exc.message}",
                    "is Elasticsearch running and LME_ENRICH_ES_URL right? (LME: https://lme-elasticsearch:9200)")
        return
    except ApiError as exc:
        # A cluster without the root endpoint (a proxy in front, or a node without the rest-root module)
        # still answered: go on with the checks that matter.
        yield Check("elasticsearch", "warn", f"{where} answers, but not GET / (HTTP {exc.meta.status}): version "
                    "unknown", "lme-enrich needs Elasticsearch 8.x; check the version in Kibana (Stack Management)")
        version = ""
    if version and not version.startswith("8."):
        yield Check("elasticsearch", "fail", f"{where} runs Elasticsearch {version}; lme-enrich needs 8.x")
        return
    if version:
        yield Check("elasticsearch", "ok", f"{where} answers, Elasticsearch {version}")

    try:
        needed = credentials.role_body(settings.alert_index)["indices"]
        granted = es.security.has_privileges(
            index=[{"names": group["names"], "privileges": group["privileges"]} for group in needed])
    except (ApiError, ValueError) as exc:
        status = f"HTTP {exc.meta.status}" if isinstance(exc, ApiError) else str(exc)
        yield Check("privileges", "warn", f"could not check privileges ({status})",
                    "make sure the user has the lme-enrich role (`lme-enrich setup-credentials`)")
    else:
        missing = [f"{name}: {priv}" for name, privs in granted["index"].items()
                   for priv, ok in privs.items() if not ok]
        if missing:
            yield Check("privileges", "fail", "missing " + "; ".join(missing),
                        "grant the lme-enrich role (README: least-privilege role)")
        else:
            yield Check("privileges", "ok", "read, update and map the alert indices; manage the history index")

    store = AlertStore(es, settings.alert_index)
    try:
        indices = store.backing_indices()
        mappings = es.indices.get_mapping(index=",".join(indices)).body if indices else {}
    except ApiError as exc:
        yield Check("alert indices", "fail", f"cannot read {settings.alert_index}: HTTP {exc.meta.status}",
                    "grant read and view_index_metadata on the alert indices")
        return
    if not indices:
        yield Check("alert indices", "warn", f"no index matches {settings.alert_index} yet",
                    "Kibana creates it with the first detection alert; check LME_ENRICH_ALERT_INDEX")
        return
    wanted = set(fields.leaf_paths())
    unmapped = [i for i in indices if not wanted <= mapped_paths(mappings.get(i, {}).get("mappings", {}))]
    if unmapped:
        yield Check("mapping", "fail", f"lme.ai.* is not mapped on {', '.join(unmapped)}",
                    "run `lme-enrich check` (workers also do it at start and on every poll)")
    else:
        yield Check("mapping", "ok", f"lme.ai.* mapped on all {len(indices)} backing indices")


def _llm_checks(llm: LLMClient, settings: Settings) -> Iterator[Check]:
    try:
        models = llm.list_models()
    except LLMError as exc:
        fixes = {"tls": "set LME_ENRICH_LLM_CA_CERT to LME's CA (lme_certs volume, ca/ca.crt)",
                 "auth": "check LME_ENRICH_LLM_API_KEY (LME: LiteLLM's master key)",
                 "connection": "is lme-litellm running and LME_ENRICH_LLM_URL right? (LME: https://lme-litellm:4000)"}
        yield Check("litellm", "fail", str(exc), fixes.get(exc.kind, ""))
        return
    yield Check("litellm", "ok", f"{settings.llm_url} answers and accepts the key")
    if llm.model not in models:
        yield Check("model", "fail", f"{llm.model!r} is not served; LiteLLM serves: {', '.join(models) or 'nothing'}",
                    "set LME_ENRICH_LLM_MODEL to one of those")
        return
    started = time.monotonic()
    try:
        llm.complete([{"role": "user", "content": "Reply with OK."}], max_tokens=1)
    except LLMError as exc:
        yield Check("model", "fail", f"{llm.model!r} is listed but a 1-token completion failed: {exc}",
                    "check that LME's llama.cpp container (lme-llama-cpp) is running")
        return
    yield Check("model", "ok", f"{llm.model!r} answered a 1-token completion in {time.monotonic() - started:.1f}s")


def _redis_checks(settings: Settings, client: redis.Redis) -> Iterator[Check]:
    try:
        client.ping()
    except redis.RedisError as exc:
        yield Check("redis", "fail", f"cannot reach Redis: {exc}", "is Redis running and LME_ENRICH_REDIS_URL right?")
        return
    yield Check("redis", "ok", "Redis answers")
    seen = heartbeat.last_seen(client, "beat")
    interval = min(settings.poll_interval.total_seconds(), 30.0)
    if seen is None:
        yield Check("beat", "warn", "beat has never recorded a heartbeat", "start it: `lme-enrich beat` or `run`")
    elif not heartbeat.beat_is_fresh(client, max_age=3 * interval + 30):
        yield Check("beat", "fail", f"beat last seen {time.time() - seen:.0f}s ago",
                    "beat or the poll worker is down: check `lme-enrich beat` and `lme-enrich worker --role poll`")
    else:
        yield Check("beat", "ok", f"beat last seen {time.time() - seen:.0f}s ago")


def run(settings: Settings, *, make_llm: Callable[[Settings], LLMClient], redis_client: redis.Redis) -> list[Check]:
    checks = list(_es_checks(settings, make_client(settings)))
    llm = make_llm(settings)
    try:
        checks += _llm_checks(llm, settings)
    finally:
        llm.close()
    checks += _redis_checks(settings, redis_client)
    return checks
