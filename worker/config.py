"""The process-wide settings, loaded once on first use."""

from __future__ import annotations

from functools import lru_cache

from worker.settings import Settings, load_settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Load and validate the settings the first time they are needed (raises ConfigError)."""
    return load_settings()
