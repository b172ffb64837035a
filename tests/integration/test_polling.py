"""One poll on Elasticsearch and Redis (no Celery): its time budget ends the claiming between pages, and the
next poll takes the rest. The real poll worker's task is in tests/integration/test_pipeline.py."""

from __future__ import annotations

from collections.abc import Callable

import redis
from elasticsearch import Elasticsearch

from tests import kibana
from worker.alerts.es import make_client
from worker.alerts.store import AlertStore
from worker.assessing.llm import LLMClient
from worker.assessing.pipeline import Services
from worker.dispatch import heartbeat, polling
from worker.dispatch.scheduler import Job, Scheduler
from worker.settings import Settings

BATCH = 10


def test_a_poll_out_of_budget_stops_between_pages_and_the_next_takes_the_rest(
    es: Elasticsearch, space: kibana.Space, settings_with: Callable[..., Settings], client: redis.Redis
) -> None:
    settings = settings_with(LME_ENRICH_BATCH_SIZE=str(BATCH))
    llm = LLMClient("https://127.0.0.1:9", "k", settings.llm_model)  # dispatch sends to a list, never the model
    services = Services(settings, AlertStore(make_client(settings), settings.alert_index), llm)
    scheduler = Scheduler(client, settings)
    placed = kibana.seed(es, space, kibana.eligible(kibana.load_corpus())[:25])
    sent: list[Job] = []

    first = polling.poll_once(services, scheduler, sent.append, budget_s=0.0)
    # No budget at all: one page is claimed whole and queued, then the poll stops and says more is waiting.
    assert first.more and first.report.claimed == BATCH
    assert heartbeat.last_seen(client, "poll") is not None, "a poll that stops early still records its heartbeat"

    es.indices.refresh(index=space.pattern)
    second = polling.poll_once(services, scheduler, sent.append, budget_s=60.0)
    assert not second.more and second.report.claimed == len(placed) - BATCH

    es.indices.refresh(index=space.pattern)
    statuses = [hit["_source"]["lme"]["ai"]["status"]
                for hit in es.search(index=space.pattern, size=100, query={"match_all": {}})["hits"]["hits"]]
    assert sorted(statuses) == ["queued"] * len(placed)
    # The model's room went out; the rest waits, or follows an alert of the same fingerprint already sent.
    assert len(sent) == 4
    assert scheduler.pending_count() + len(scheduler.following_jobs()) == len(placed) - 4
