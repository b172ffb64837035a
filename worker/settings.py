"""Every setting of lme-enrich, read from ``LME_ENRICH_*`` environment variables and validated at start-up.

Secrets can also come from files (Podman/Docker secrets): ``LME_ENRICH_ES_PASSWORD_FILE=/run/secrets/x``
reads the password from that file. A wrong value raises :class:`ConfigError`, whose message names the
variable and says what is expected — never the secret's value.
"""

from __future__ import annotations

import os
import re
import sys
from datetime import timedelta
from enum import IntEnum
from pathlib import Path
from typing import Annotated, Any, ClassVar
from urllib.parse import urlsplit

from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

ENV_PREFIX = "LME_ENRICH_"
SECRET_FIELDS = ("es_password", "es_api_key", "llm_api_key")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class ConfigError(Exception):
    """The configuration cannot be used; the message lists every problem, one per line."""


class Severity(IntEnum):
    """Kibana alert severities, ordered so that a floor can be compared."""

    low = 1
    medium = 2
    high = 3
    critical = 4


def parse_duration(value: object) -> timedelta:
    """``90``, ``30s``, ``5m``, ``24h``, ``7d``, ``1w`` (a bare number is seconds)."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError("expected a duration such as 30s, 5m, 24h or 7d")
    number, unit = match.groups()
    return timedelta(seconds=float(number) * _UNIT_SECONDS[unit or "s"])


def _split_urls(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _parse_bool_strict(value: object) -> object:
    # pydantic accepts "yes"/"on"/"1"; we add nothing, but reject empty strings that usually mean a typo.
    if isinstance(value, str) and not value.strip():
        raise ValueError("expected true or false")
    return value


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
UrlList = Annotated[list[str], NoDecode, BeforeValidator(_split_urls)]
Flag = Annotated[bool, BeforeValidator(_parse_bool_strict)]


class _SecretFileSource(PydanticBaseSettingsSource):
    """Reads ``LME_ENRICH_<SECRET>_FILE`` for each secret field."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        variable = f"{ENV_PREFIX}{field_name.upper()}_FILE"
        path = os.environ.get(variable)
        if not path or field_name not in SECRET_FIELDS:
            return None, field_name, False
        if os.environ.get(f"{ENV_PREFIX}{field_name.upper()}"):
            raise ConfigError(f"{variable}: set either {ENV_PREFIX}{field_name.upper()} or {variable}, not both")
        try:
            content = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{variable}: cannot read secret file {path!r}: {exc.strerror}") from None
        # Secret files written with `echo` end with a newline that is not part of the secret.
        return content.rstrip("\r\n"), field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, name)
            if value is not None:
                values[key] = value
        return values


class Settings(BaseSettings):
    """lme-enrich configuration. Field ``x`` is read from ``LME_ENRICH_X``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    # Elasticsearch
    es_url: UrlList = Field(default_factory=lambda: ["https://lme-elasticsearch:9200"])
    es_username: str | None = None
    es_password: SecretStr | None = None
    es_api_key: SecretStr | None = None
    es_ca_cert: Path | None = None
    es_verify_certs: Flag = True
    es_request_timeout: Duration = timedelta(seconds=30)

    # LiteLLM
    llm_url: str = "https://lme-litellm:4000"
    llm_api_key: SecretStr | None = None
    llm_model: str = "lfm2.5-1.2b-instruct"
    llm_ca_cert: Path | None = None
    llm_verify_certs: Flag = True
    llm_connect_timeout: Duration = timedelta(seconds=10)
    # CPU inference takes tens of seconds per answer and queues behind other users of the model.
    llm_read_timeout: Duration = timedelta(seconds=600)
    llm_max_tokens: int = Field(default=400, ge=16, le=4096)
    llm_temperature: float = Field(default=0.2, ge=0.0, le=2.0)

    # Redis (Celery broker and our own small state)
    redis_url: str = "redis://localhost:6379/0"

    # What to enrich
    alert_index: str = ".alerts-security.alerts-*"
    poll_interval: Duration = timedelta(seconds=30)
    batch_size: int = Field(default=200, ge=1, le=10_000)
    backfill_window: Duration = timedelta(hours=24)
    severity_floor: Severity = Severity.low
    skip_building_block: Flag = True
    reassess_tag: str = "AI: Re-assess"
    concurrency: int = Field(default=1, ge=1, le=64)
    claim_lease: Duration = timedelta(hours=2)

    # Throughput on a slow model (see worker/dispatch/scheduler.py).
    dispatch_ahead: int = Field(default=0, ge=0, le=1000)  # 0: concurrency + 1
    priority_aging: Duration = timedelta(minutes=15)
    cache_enabled: Flag = True
    cache_ttl: Duration = timedelta(hours=24)
    # Alerts of one rule on one host (and user) starting within this of each other form an incident group,
    # assessed with one model call (worker/dispatch/grouping.py); 0 turns grouping off.
    group_window: Duration = timedelta(minutes=10)

    # The history index keeps the exact prompt and raw reply of each assessment, cut to this size.
    history_max_chars: int = Field(default=8000, ge=0, le=1_000_000)

    # Retries: a few calls within one task for brief faults, then Celery retries with a growing countdown
    # (so a model that is down for long does not hold a worker slot), then the alert is marked failed.
    llm_attempts: int = Field(default=3, ge=1, le=10)
    llm_retry_wait_max: Duration = timedelta(seconds=60)
    task_retries: int = Field(default=6, ge=0, le=50)
    retry_backoff_max: Duration = timedelta(minutes=30)

    _min_read_timeout: ClassVar[timedelta] = timedelta(seconds=30)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _SecretFileSource(settings_cls))

    @field_validator("severity_floor", mode="before")
    @classmethod
    def _severity_by_name(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return Severity[value.strip().lower()]
            except KeyError:
                raise ValueError("expected one of low, medium, high, critical") from None
        return value

    @field_validator("es_url")
    @classmethod
    def _check_es_urls(cls, urls: list[str]) -> list[str]:
        if not urls:
            raise ValueError("expected at least one URL such as https://lme-elasticsearch:9200")
        for url in urls:
            _check_http_url(url)
        return urls

    @field_validator("llm_url", "redis_url")
    @classmethod
    def _check_url(cls, url: str, info: Any) -> str:
        if info.field_name == "redis_url":
            if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
                raise ValueError("expected a redis://, rediss:// or unix:// URL")
            return url
        return _check_http_url(url).rstrip("/")

    @field_validator("es_ca_cert", "llm_ca_cert")
    @classmethod
    def _check_ca_file(cls, path: Path | None) -> Path | None:
        if path is not None and not path.is_file():
            raise ValueError(f"CA certificate file {str(path)!r} does not exist")
        return path

    @field_validator("alert_index", "llm_model", "reassess_tag")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

    @model_validator(mode="after")
    def _check_combinations(self) -> Settings:
        if self.es_api_key is not None and (self.es_username or self.es_password):
            raise ValueError(
                f"{ENV_PREFIX}ES_API_KEY: give either an API key or {ENV_PREFIX}ES_USERNAME/"
                f"{ENV_PREFIX}ES_PASSWORD, not both"
            )
        if self.es_api_key is None and not (self.es_username and self.es_password):
            raise ValueError(
                f"{ENV_PREFIX}ES_API_KEY: Elasticsearch credentials are missing; set {ENV_PREFIX}ES_API_KEY "
                f"(or _FILE), or both {ENV_PREFIX}ES_USERNAME and {ENV_PREFIX}ES_PASSWORD (or _FILE)"
            )
        if self.llm_api_key is None:
            raise ValueError(
                f"{ENV_PREFIX}LLM_API_KEY: the LiteLLM key is missing; set it or {ENV_PREFIX}LLM_API_KEY_FILE"
            )
        if self.llm_read_timeout < self._min_read_timeout:
            raise ValueError(
                f"{ENV_PREFIX}LLM_READ_TIMEOUT: {self.llm_read_timeout.total_seconds():g}s is too short for CPU "
                "inference; expected at least 30s (default 600s)"
            )
        if self.poll_interval < timedelta(seconds=1):
            raise ValueError(f"{ENV_PREFIX}POLL_INTERVAL: expected at least 1s")
        if self.group_window < timedelta(0) or self.group_window > timedelta(days=1):
            raise ValueError(f"{ENV_PREFIX}GROUP_WINDOW: expected 0 (no grouping) up to 1d, e.g. 10m")
        needed = self.longest_assessment() + self.retry_backoff_max
        if self.claim_lease < needed:
            raise ValueError(
                f"{ENV_PREFIX}CLAIM_LEASE: {self.claim_lease.total_seconds():g}s is shorter than one assessment can "
                f"legitimately take ({needed.total_seconds():g}s: LLM_ATTEMPTS x (LLM_READ_TIMEOUT + "
                "LLM_CONNECT_TIMEOUT) plus waits, plus RETRY_BACKOFF_MAX); a live claim would be taken over. Raise it "
                "or lower those."
            )
        return self

    def dispatch_window(self) -> int:
        """How many assess tasks may be in Celery at once: the model's slots plus one in hand."""
        return self.dispatch_ahead or self.concurrency + 1

    def longest_assessment(self) -> timedelta:
        """The longest one assessment task run may take: every LLM attempt running into its deadline (the
        answer whole within the connect and read timeouts, ``worker.assessing.llm``), plus waits."""
        calls = (self.llm_read_timeout + self.llm_connect_timeout) * self.llm_attempts
        waits = self.llm_retry_wait_max * (self.llm_attempts - 1)
        # Elasticsearch reads and writes around the calls: a handful, each bounded by its request timeout.
        return calls + waits + self.es_request_timeout * 4


def _check_http_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http:// or https:// URL such as https://host:9200, not {url!r}")
    if parts.username or parts.password:
        # Credentials in URLs end up in logs; they have their own variables.
        raise ValueError("put credentials in their own variables, not in the URL")
    return url


def load_settings(**overrides: Any) -> Settings:
    """Read and validate the settings; raise :class:`ConfigError` naming each wrong variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError("\n".join(_describe(err) for err in exc.errors())) from None


def mask_url_passwords(text: str) -> str:
    """``text`` with the password of any ``scheme://user:password@host`` URL in it masked: it is a secret too."""
    return re.sub(r"(://[^/@:\s]*:)[^/@\s]+@", r"\1********@", text)


def _describe(error: Any) -> str:
    loc = [str(part) for part in error.get("loc", ()) if not isinstance(part, int)]
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    if message.startswith(ENV_PREFIX):
        return message  # already names its variable
    variable = ENV_PREFIX + loc[0].upper() if loc else ENV_PREFIX + "*"
    raw = error.get("input")
    echoes_input = "not '" in message
    if loc and loc[0] not in SECRET_FIELDS and isinstance(raw, str | int | float) and not echoes_input:
        return mask_url_passwords(f"{variable}: {message} (got {error['input']!r})")
    return mask_url_passwords(f"{variable}: {message}")


def _main() -> int:
    """``python -m worker.settings``: validate the environment and print the effective settings."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"lme-enrich: configuration error:\n{exc}", file=sys.stderr)
        return 2
    for name, value in settings.model_dump().items():
        shown = "********" if name in SECRET_FIELDS and value is not None else value
        shown = mask_url_passwords(str(shown))
        print(f"{ENV_PREFIX}{name.upper()}={shown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
