"""One assessment per dispatched alert; its result also serves the alerts that waited for it."""

from __future__ import annotations

import logging
from typing import Any

import redis
from elasticsearch import ApiError, TransportError

from worker.app import app
from worker.assessing import pipeline
from worker.assessing.pipeline import Services
from worker.dispatch import coordinator, liveness
from worker.dispatch.queueing import send_assessment
from worker.dispatch.scheduler import Job, Scheduler
from worker.services import get_scheduler, get_services

log = logging.getLogger(__name__)


def _es_unavailable(exc: Exception) -> bool:
    """Elasticsearch refused or did not answer for a while (not a request it will never accept)."""
    return isinstance(exc, TransportError) or (isinstance(exc, ApiError) and (
        exc.meta.status in (408, 429) or exc.meta.status >= 500))


@app.task(name="lme_enrich.assess", bind=True, ignore_result=True, max_retries=None)
def assess_alert(self: Any, /, index: str, alert_id: str, claim_id: str, **meta: Any) -> str:
    job = Job(index, alert_id, claim_id, **meta)
    services, scheduler = get_services(), get_scheduler()
    if not scheduler.start(job, self.request.id or "", liveness.TOKEN):
        # Recovery sent this job again under a new task id (its worker had died): this is the old copy.
        log.info("alert %s: task %s was replaced by a newer one; dropping it", alert_id, self.request.id)
        return "replaced"
    try:
        outcome = pipeline.assess(services, job, task_retries=self.request.retries,
                                  peers=lambda: scheduler.followers_of(job))
    except (ApiError, TransportError) as exc:
        if not _es_unavailable(exc):  # a request Elasticsearch will never accept: retrying cannot help
            log.exception("alert %s: Elasticsearch refused a request", alert_id)
            reason = f"Elasticsearch refused a request ({str(exc)[:300]}); requeue to try again"
            return _settle(services, scheduler, job, pipeline.fail_unexpected(services, job, "elasticsearch", reason))
        # Keep the claim, the slot and the followers, and come back: the alert would otherwise wait in
        # `running` for its whole lease. A run that comes back to a finished alert is superseded.
        scheduler.keep_leading(job)
        cap = services.settings.retry_backoff_max.total_seconds()
        raise self.retry(countdown=min(5.0 * 2**min(self.request.retries, 10), cap), exc=exc) from exc
    except redis.RedisError:
        # Redis stayed away longer than the client rides through: nothing can be settled now. The heartbeat
        # hands this job back once Redis returns (``worker.dispatch.lifecycle``), and recovery sends it again.
        raise
    except Exception as exc:
        log.exception("alert %s: unexpected error", alert_id)
        reason = f"internal error ({type(exc).__name__}: {str(exc)[:300]}); requeue to try again"
        outcome = pipeline.fail_unexpected(services, job, "internal", reason)
    if outcome.result == "retry":
        scheduler.keep_leading(job)
        raise self.retry(countdown=outcome.retry_in)
    return _settle(services, scheduler, job, outcome)


def _settle(services: Services, scheduler: Scheduler, job: Job, outcome: pipeline.Outcome) -> str:
    coordinator.settle(services, scheduler, job, outcome, send_assessment)
    return outcome.result
