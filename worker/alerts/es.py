"""Build the official Elasticsearch 8.x client from our settings."""

from __future__ import annotations

import logging
from typing import Any

from elasticsearch import Elasticsearch

from worker.settings import Settings

log = logging.getLogger(__name__)


def client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for :class:`Elasticsearch`: auth, TLS and time-outs."""
    options: dict[str, Any] = {
        "request_timeout": settings.es_request_timeout.total_seconds(),
        # The client retries connection errors and these statuses across nodes with back-off.
        "max_retries": 3,
        "retry_on_timeout": True,
        "retry_on_status": (429, 502, 503, 504),
    }
    if settings.es_api_key is not None:
        options["api_key"] = settings.es_api_key.get_secret_value()
    elif settings.es_username and settings.es_password is not None:
        options["basic_auth"] = (settings.es_username, settings.es_password.get_secret_value())
    if any(url.startswith("https:") for url in settings.es_url):
        if settings.es_verify_certs:
            if settings.es_ca_cert is not None:
                options["ca_certs"] = str(settings.es_ca_cert)
        else:
            options["verify_certs"] = False
            options["ssl_show_warn"] = False
    return options


def make_client(settings: Settings) -> Elasticsearch:
    if not settings.es_verify_certs:
        log.warning(
            "TLS verification of Elasticsearch is OFF (LME_ENRICH_ES_VERIFY_CERTS=false): anyone on the path "
            "can read and change what lme-enrich sends and receives. Set LME_ENRICH_ES_CA_CERT instead."
        )
    return Elasticsearch(settings.es_url, **client_options(settings))
