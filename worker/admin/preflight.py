"""``python -m worker.admin.preflight``: check settings, Elasticsearch mappings and the LLM model before start-up.

Exits non-zero with one clear message when lme-enrich cannot do its job with this configuration.
"""

from __future__ import annotations

import logging
import sys

from elasticsearch import ApiError, TransportError

from worker.alerts.errors import StoreError
from worker.config import get_settings
from worker.services import build_services, check_model
from worker.settings import ConfigError


def run() -> None:
    """Raise ConfigError or StoreError when start-up must not go ahead."""
    services = build_services(get_settings())
    try:
        mapped = services.store.ensure_mappings()
        services.store.ensure_history()
    except (ApiError, TransportError) as exc:
        raise StoreError(f"cannot reach Elasticsearch at {', '.join(services.settings.es_url)}: {exc}") from exc
    if mapped:
        logging.getLogger(__name__).info("mapped lme.ai.* on %s", ", ".join(mapped))
    check_model(services.llm)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        run()
    except (ConfigError, StoreError) as exc:
        print(f"lme-enrich: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
