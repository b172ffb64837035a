"""Beat's poll: recover what dead workers or a lost Redis left, find alerts that need work, claim them, and
dispatch what the model has room for (``worker.dispatch.polling``)."""

from __future__ import annotations

import logging
from typing import Final

from worker.app import app
from worker.dispatch import polling
from worker.dispatch.queueing import send_assessment
from worker.services import get_scheduler, get_services

log = logging.getLogger(__name__)

# A poll claims for at most this long, then sends a poll of its own for the rest: beat's heartbeat task shares
# the poll worker and must not wait behind a backfill of thousands of alerts, and the poll worker runs its tasks
# in a thread, which no time limit can stop (``worker.celery_conf.POOL``).
BUDGET_S: Final = 30.0


@app.task(name="lme_enrich.poll", ignore_result=True)
def poll_alerts() -> dict[str, int]:
    result = polling.poll_once(get_services(), get_scheduler(), send_assessment, budget_s=BUDGET_S)
    report = result.report
    if report.found or report.mapped:
        log.info("poll: %d found, %d claimed; dispatched %d, %d served from cache; mapped %s", report.found,
                 report.claimed, result.sent, result.cached, report.mapped or "nothing new")
    if result.more:
        log.info("poll: the %g s budget ended the claiming; the rest in a poll sent now", BUDGET_S)
        poll_alerts.apply_async()
    return {"found": report.found, "claimed": report.claimed, "dispatched": result.sent,
            "recovered": result.recovered}
