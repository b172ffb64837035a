"""``lme-enrich kibana ...``: install lme-enrich's Kibana views (``main.add_command(kibana)`` registers it).

Reads its own ``LME_ENRICH_KIBANA_*`` variables (falling back to the Elasticsearch credentials and CA, which
are the same on LME) rather than the full worker settings, so it runs without an LLM key or Redis.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from worker.admin import kibana as kibana_api  # its HTTP client is imported by the command that uses it

_P = "LME_ENRICH_"


def _env(*names: str) -> str | None:
    """The first of ``names`` that is set, also as ``NAME_FILE`` (a Podman secret file)."""
    for name in names:
        value = os.environ.get(_P + name)
        if value:
            return value
        path = os.environ.get(f"{_P}{name}_FILE")
        if path:
            try:
                return Path(path).read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise click.UsageError(f"{_P}{name}_FILE: cannot read {path!r}: {exc.strerror}") from None
    return None


def _flag(name: str, default: bool) -> bool:
    raw = os.environ.get(_P + name)
    if raw is None or not raw.strip():
        return default
    if raw.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if raw.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise click.UsageError(f"{_P}{name}: expected true or false, got {raw!r}")


def _auth(username: str | None, password: str | None, api_key: str | None) -> kibana_api.Auth:
    from worker.admin import kibana as kibana_api

    if api_key and (username or password):
        raise click.UsageError("give either an API key or a username and password for Kibana, not both")
    if api_key:
        return kibana_api.ApiKey(api_key)
    if username and password:
        return kibana_api.BasicAuth(username, password)
    if username or password:
        raise click.UsageError("Kibana needs both a username and a password (LME_ENRICH_KIBANA_USERNAME/PASSWORD)")
    return None


@click.group("kibana")
def kibana() -> None:
    """Kibana views of the AI fields: saved objects and the re-assess tag."""


@kibana.command("install")
@click.option("--url", help="Kibana URL [env LME_ENRICH_KIBANA_URL; default https://lme-kibana:5601]")
@click.option("--file", "ndjson", type=click.Path(dir_okay=False, path_type=Path),
              help="saved objects to import [default kibana/lme-enrich.ndjson]")
@click.option("--tag", help="alert tag that asks for a re-assessment [env LME_ENRICH_REASSESS_TAG; default "
                            "'AI: Re-assess']")
@click.option("--wait", type=click.FloatRange(min=0), default=120.0, show_default=True,
              help="seconds to wait for a Kibana that is still starting")
@click.option("--insecure", is_flag=True, help="do not verify Kibana's TLS certificate (not for production)")
def install(url: str | None, ndjson: Path | None, tag: str | None, wait: float, insecure: bool) -> None:
    """Import the data views, saved search and dashboard, and add the re-assess tag to the alert tag menu.

    Credentials: LME_ENRICH_KIBANA_USERNAME/PASSWORD or LME_ENRICH_KIBANA_API_KEY, else the Elasticsearch
    ones (LME_ENRICH_ES_*); each also as *_FILE. CA: LME_ENRICH_KIBANA_CA_CERT, else LME_ENRICH_ES_CA_CERT.
    Safe to run again: nothing is duplicated.
    """
    from worker.admin import kibana as kibana_api

    base = url or _env("KIBANA_URL") or "https://lme-kibana:5601"
    if _env("KIBANA_USERNAME", "KIBANA_PASSWORD", "KIBANA_API_KEY"):
        auth = _auth(_env("KIBANA_USERNAME"), _env("KIBANA_PASSWORD"), _env("KIBANA_API_KEY"))
    else:
        auth = _auth(_env("ES_USERNAME"), _env("ES_PASSWORD"), _env("ES_API_KEY"))
    ca = _env("KIBANA_CA_CERT", "ES_CA_CERT")
    verify: bool | str = False if insecure or not _flag("KIBANA_VERIFY_CERTS", True) else (ca or True)
    reassess = (tag or _env("REASSESS_TAG") or "AI: Re-assess").strip()
    if not reassess:
        raise click.UsageError("the re-assess tag must not be empty")
    try:
        result = kibana_api.install(base, auth, verify, ndjson or kibana_api.default_ndjson(), reassess, wait=wait)
    except kibana_api.KibanaError as exc:
        if click.get_current_context().find_root().params.get("debug"):
            raise
        click.echo(f"lme-enrich: {exc}", err=True)
        sys.exit(2)
    version = f" {result.kibana_version}" if result.kibana_version else ""
    click.echo(f"Kibana{version} at {base.rstrip('/')}: imported {len(result.imported)} saved objects")
    for kind, oid, title in result.imported:
        click.echo(f"  {kind:<14} {oid}  {title}")
    state = "added to" if result.tag_added else "already in"
    click.echo(f"alert tag {reassess!r} {state} securitySolution:alertTags: {', '.join(result.alert_tags)}")
    if result.status_level != "available":
        click.echo(f"note: Kibana reports status {result.status_level!r}", err=True)


if __name__ == "__main__":
    kibana()
