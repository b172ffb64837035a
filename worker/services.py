"""Build the per-process clients from the settings, and check them once at start-up."""

from __future__ import annotations

import logging
from functools import lru_cache

from worker.alerts.es import make_client
from worker.alerts.store import AlertStore
from worker.assessing.llm import LLMClient, LLMError, tls_verify
from worker.assessing.pipeline import Services
from worker.config import get_settings
from worker.dispatch.grouping import Groups
from worker.dispatch.redis_client import get_redis
from worker.dispatch.scheduler import Scheduler
from worker.settings import ConfigError, Settings

log = logging.getLogger(__name__)


def make_llm(settings: Settings) -> LLMClient:
    if not settings.llm_verify_certs:
        log.warning(
            "TLS verification of LiteLLM is OFF (LME_ENRICH_LLM_VERIFY_CERTS=false): the API key and alert data "
            "can be read by anyone on the path. Set LME_ENRICH_LLM_CA_CERT instead."
        )
    assert settings.llm_api_key is not None  # settings validation guarantees it
    return LLMClient(
        settings.llm_url,
        settings.llm_api_key.get_secret_value(),
        settings.llm_model,
        verify=tls_verify(settings.llm_ca_cert, settings.llm_verify_certs),
        connect_timeout=settings.llm_connect_timeout.total_seconds(),
        read_timeout=settings.llm_read_timeout.total_seconds(),
        max_tokens=settings.llm_max_tokens,
        temperature=settings.llm_temperature,
    )


def build_services(settings: Settings) -> Services:
    groups = Groups(get_redis(), settings.group_window.total_seconds())
    return Services(settings, AlertStore(make_client(settings), settings.alert_index), make_llm(settings),
                    groups if groups.enabled else None)


@lru_cache(maxsize=1)
def get_services() -> Services:
    """This process's clients (thread-safe, shared by its task threads), made when the worker is ready."""
    return build_services(get_settings())


@lru_cache(maxsize=1)
def get_scheduler() -> Scheduler:
    """This process's view of the waiting alerts (in Redis)."""
    settings = get_settings()
    groups = Groups(get_redis(), settings.group_window.total_seconds())
    return Scheduler(get_redis(), settings, regrown=groups.regrown if groups.enabled else None)


def check_model(llm: LLMClient) -> None:
    """Stop with a clear error when LiteLLM answers but does not serve the configured model.

    An unreachable LiteLLM is only logged: LME's offline installs may bring the LLM stack later, and
    claimed alerts wait in the queue with retries until it answers.
    """
    try:
        models = llm.list_models()
    except LLMError as exc:
        if exc.kind in ("auth", "tls"):
            raise ConfigError(str(exc)) from exc
        log.warning("LiteLLM is not answering yet (%s); assessments will wait and retry", exc)
        return
    if llm.model not in models:
        served = ", ".join(sorted(models)) or "none"
        raise ConfigError(
            f"LME_ENRICH_LLM_MODEL: LiteLLM does not serve {llm.model!r}; the models it serves are: {served}"
        )
