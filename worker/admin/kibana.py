"""Install lme-enrich's Kibana views: import the saved objects and offer the re-assess tag in the alert tag menu.

Three public Kibana 8.18 APIs, in this order: ``GET /api/status`` (wait until Kibana answers and its core
services are up), ``POST /api/saved_objects/_import?overwrite=true`` (the NDJSON in ``kibana/``, the same
way LME installs its dashboards) and ``GET``/``POST /api/kibana/settings`` (add the tag to the advanced
setting ``securitySolution:alertTags``, keeping what an admin already put there). Running it twice changes
nothing the second time. Every failure is a :class:`KibanaError` with a one-line message.
"""

from __future__ import annotations

import json
import ssl
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx

ALERT_TAGS_SETTING: Final = "securitySolution:alertTags"
# Kibana's value while nobody has changed the setting (security_solution common/constants.ts).
DEFAULT_ALERT_TAGS: Final = ("Duplicate", "False Positive", "Further investigation required")
DEFAULT_NDJSON: Final = Path(__file__).resolve().parents[2] / "kibana" / "lme-enrich.ndjson"
_XSRF: Final = {"kbn-xsrf": "true"}
_POLL_EVERY: Final = 2.0


def default_ndjson() -> Path:
    """The saved objects file: in the source tree, where pip installed it, or ``kibana/`` here."""
    installed = Path(sys.prefix) / "share" / "lme-enrich" / "kibana" / DEFAULT_NDJSON.name  # pip install
    for candidate in (DEFAULT_NDJSON, installed, Path.cwd() / "kibana" / DEFAULT_NDJSON.name):
        if candidate.is_file():
            return candidate
    return DEFAULT_NDJSON


class KibanaError(Exception):
    """Kibana could not be used; the message is one line and says what to fix."""


@dataclass(frozen=True)
class BasicAuth:
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class ApiKey:
    """An Elasticsearch API key in its encoded form (what ``Authorization: ApiKey ...`` carries)."""

    encoded: str = field(repr=False)


Auth = BasicAuth | ApiKey | None


@dataclass
class InstallResult:
    kibana_version: str | None
    status_level: str
    imported: list[tuple[str, str, str]]  # (type, id, title) of every imported object
    alert_tags: list[str]
    tag_added: bool


def install(base_url: str, auth: Auth, verify: bool | str | Path, ndjson_path: str | Path, reassess_tag: str, *,
            wait: float = 60.0, timeout: float = 30.0, overwrite: bool = True,
            sleep: Callable[[float], None] = time.sleep) -> InstallResult:
    """Import ``ndjson_path`` into Kibana at ``base_url`` and add ``reassess_tag`` to the alert tag options.

    ``verify`` is True (system CAs), False (no verification) or the path of a CA file such as LME's
    ``ca.crt``. ``wait`` is how long to wait for a Kibana that is still starting (unreachable or 503).
    """
    path = Path(ndjson_path)
    try:
        payload = path.read_bytes()
    except OSError as exc:
        raise KibanaError(f"cannot read the saved objects file {str(path)!r}: {exc.strerror}") from None
    url = base_url.rstrip("/")
    with _client(url, auth, verify, timeout) as client:
        status = _wait_until_ready(client, url, wait, sleep)
        imported = _import(client, url, path.name, payload, overwrite)
        tags, added = _ensure_alert_tag(client, url, reassess_tag)
    version = status.get("version", {}).get("number") if isinstance(status.get("version"), dict) else None
    level = str(status.get("status", {}).get("overall", {}).get("level", "available"))
    return InstallResult(version, level, imported, tags, added)


def _client(url: str, auth: Auth, verify: bool | str | Path, timeout: float) -> httpx.Client:
    headers = {"accept": "application/json"}
    if isinstance(auth, ApiKey):
        headers["authorization"] = f"ApiKey {auth.encoded}"
    basic = httpx.BasicAuth(auth.username, auth.password) if isinstance(auth, BasicAuth) else None
    return httpx.Client(base_url=url, headers=headers, auth=basic, verify=_tls(verify),
                        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)))


def _tls(verify: bool | str | Path) -> ssl.SSLContext | bool:
    if verify is False:
        return False
    if verify is True:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=str(verify))
    except (OSError, ssl.SSLError) as exc:
        raise KibanaError(f"cannot load the CA certificate {str(verify)!r} for Kibana: {exc}") from None


def _request(client: httpx.Client, url: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    try:
        return client.request(method, path, **kwargs)
    except httpx.ConnectError as exc:
        if _is_tls_failure(exc):
            raise KibanaError(_tls_message(url, exc)) from None
        raise _Unreachable(f"cannot reach Kibana at {url}: {_reason(exc)}") from None
    except httpx.ConnectTimeout:
        raise _Unreachable(f"cannot reach Kibana at {url}: no answer to the connection attempt") from None
    except httpx.TimeoutException:
        raise KibanaError(f"Kibana at {url} did not answer {method} {path} in time") from None
    except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
        hint = " (is it an https:// URL?)" if url.startswith("http://") else ""
        raise KibanaError(f"Kibana at {url} closed the connection on {method} {path}{hint}: {_reason(exc)}") from None
    except httpx.HTTPError as exc:
        raise KibanaError(f"request to Kibana at {url} failed: {_reason(exc)}") from None


class _Unreachable(KibanaError):
    """Nothing answers yet; worth waiting for while Kibana starts."""


def _wait_until_ready(client: httpx.Client, url: str, wait: float, sleep: Callable[[float], None]) -> dict[str, Any]:
    deadline = time.monotonic() + wait
    while True:
        try:
            response = _request(client, url, "GET", "/api/status")
            problem = _not_ready(response, url)
            if problem is None:
                body = _json(response)
                return body if isinstance(body, dict) else {}
        except _Unreachable as exc:
            problem = str(exc)
        if time.monotonic() >= deadline:
            waited = f" (waited {wait:g}s)" if wait > 0 else ""
            raise KibanaError(f"{problem}{waited}")
        sleep(min(_POLL_EVERY, max(0.0, deadline - time.monotonic())))


def _not_ready(response: httpx.Response, url: str) -> str | None:
    """None when Kibana can take requests; else why not (raises for what waiting cannot fix)."""
    if response.status_code in (401, 403):
        raise KibanaError(_auth_message(url, response, "GET /api/status"))
    level = _level(response)
    # /api/status answers 503 exactly when Kibana's core services are unavailable or critical.
    if response.status_code == 503:
        return f"Kibana at {url} is not ready (status {level or 'unavailable'}): {_message(response) or 'starting'}"
    if response.status_code != 200:
        raise KibanaError(f"Kibana at {url} answered GET /api/status with HTTP {response.status_code}: "
                          f"{_message(response)}")
    if level in ("unavailable", "critical"):
        return f"Kibana at {url} is not ready (status {level})"
    return None


def _level(response: httpx.Response) -> str | None:
    body = _json(response)
    try:
        return str(body["status"]["overall"]["level"])
    except (KeyError, TypeError):
        return None


def _import(client: httpx.Client, url: str, filename: str, payload: bytes,
            overwrite: bool) -> list[tuple[str, str, str]]:
    # Kibana refuses any upload whose file name does not end in .ndjson.
    name = filename if filename.lower().endswith(".ndjson") else "lme-enrich.ndjson"
    response = _request(client, url, "POST", "/api/saved_objects/_import",
                        params={"overwrite": "true" if overwrite else "false"}, headers=_XSRF,
                        files={"file": (name, payload, "application/ndjson")})
    _raise_for(response, url, "the saved objects import")
    body = _json(response)
    if not isinstance(body, dict) or "success" not in body:
        raise KibanaError(f"Kibana at {url} answered the import with an unexpected body: {response.text[:200]}")
    errors = body.get("errors") or []
    if not body.get("success") or errors:
        described = "; ".join(describe_import_error(e) for e in errors) or "no error details"
        raise KibanaError(f"Kibana imported {body.get('successCount', 0)} objects but refused "
                          f"{len(errors)}: {described}")
    return [(str(r.get("type")), str(r.get("id")), str((r.get("meta") or {}).get("title", "")))
            for r in body.get("successResults") or []]


def describe_import_error(error: dict[str, Any]) -> str:
    """``dashboard lme-enrich-dashboard ("LME AI enrichment"): conflict`` and the like."""
    title = (error.get("meta") or {}).get("title") or error.get("title")
    name = f"{error.get('type')} {error.get('id')}" + (f" ({title!r})" if title else "")
    detail = error.get("error") or {}
    kind = str(detail.get("type", "unknown"))
    if kind == "missing_references":
        missing = ", ".join(f"{r.get('type')} {r.get('id')}" for r in detail.get("references", []))
        return f"{name}: references missing objects: {missing}"
    if kind == "conflict":
        return f"{name}: conflict (an object with this id exists; import with overwrite)"
    if kind == "ambiguous_conflict":
        return f"{name}: ambiguous conflict with {len(detail.get('destinations', []))} existing objects"
    if kind == "unsupported_type":
        return f"{name}: unsupported type (is the plugin that owns it enabled?)"
    message = detail.get("message")
    return f"{name}: {kind}" + (f" ({message})" if message else "")


def _ensure_alert_tag(client: httpx.Client, url: str, tag: str) -> tuple[list[str], bool]:
    response = _request(client, url, "GET", "/api/kibana/settings")
    _raise_for(response, url, "reading the advanced settings")
    current = _current_tags(_json(response), url)
    if tag in current:
        return current, False
    wanted = [*current, tag]
    response = _request(client, url, "POST", "/api/kibana/settings", headers=_XSRF,
                        json={"changes": {ALERT_TAGS_SETTING: wanted}})
    _raise_for(response, url, f"setting {ALERT_TAGS_SETTING}")
    stored = _current_tags(_json(response), url)
    if tag not in stored:
        raise KibanaError(f"Kibana at {url} accepted the change of {ALERT_TAGS_SETTING} but does not list "
                          f"{tag!r} afterwards (now {stored})")
    return stored, True


def _current_tags(body: Any, url: str) -> list[str]:
    try:
        entry = body["settings"].get(ALERT_TAGS_SETTING)
    except (KeyError, TypeError, AttributeError):
        raise KibanaError(f"Kibana at {url} answered /api/kibana/settings without a 'settings' object") from None
    if not entry or entry.get("userValue") is None:
        return list(DEFAULT_ALERT_TAGS)  # only values someone changed are listed
    if entry.get("isOverridden"):
        raise KibanaError(f"{ALERT_TAGS_SETTING} is fixed by uiSettings.overrides in kibana.yml; add the "
                          "re-assess tag there")
    value = entry["userValue"]
    if isinstance(value, str):  # older Kibanas kept array settings as JSON text
        try:
            value = json.loads(value)
        except ValueError:
            value = [value]
    if not isinstance(value, list):
        raise KibanaError(f"{ALERT_TAGS_SETTING} in Kibana at {url} is not a list of tags: {value!r}")
    return [str(item) for item in value]


def _raise_for(response: httpx.Response, url: str, what: str) -> None:
    if response.status_code == 200:
        return
    if response.status_code in (401, 403):
        raise KibanaError(_auth_message(url, response, what))
    if response.status_code == 503:
        raise KibanaError(f"Kibana at {url} is not ready for {what} (HTTP 503): {_message(response)}")
    if response.status_code == 413:
        raise KibanaError(f"Kibana at {url} refused {what}: the file is larger than savedObjects."
                          "maxImportPayloadBytes")
    raise KibanaError(f"Kibana at {url} refused {what} with HTTP {response.status_code}: {_message(response)}")


def _auth_message(url: str, response: httpx.Response, what: str) -> str:
    if response.status_code == 401:
        sent = "authorization" in response.request.headers
        problem = "refused the credentials" if sent else "requires credentials"
        return (f"Kibana at {url} {problem} (HTTP 401) for {what}: set LME_ENRICH_KIBANA_USERNAME/PASSWORD or "
                "LME_ENRICH_KIBANA_API_KEY")
    return (f"Kibana at {url} denied {what} (HTTP 403: {_message(response)}); the user needs the privileges to "
            "manage saved objects and advanced settings (LME's 'elastic' user has them)")


def _message(response: httpx.Response) -> str:
    body = _json(response)
    if isinstance(body, dict) and body.get("message"):
        return " ".join(str(body["message"]).split())[:300]
    return " ".join(response.text.split())[:300]


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _is_tls_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    text = str(exc)
    return "CERTIFICATE_VERIFY_FAILED" in text or "SSL" in text or "TLS" in text


def _tls_message(url: str, exc: BaseException) -> str:
    reason = _reason(exc)
    if "CERTIFICATE_VERIFY_FAILED" in reason or "verify failed" in reason:
        hint = "set LME_ENRICH_KIBANA_CA_CERT to LME's CA (lme_certs volume: ca/ca.crt)"
    elif "WRONG_VERSION_NUMBER" in reason or "record layer" in reason:
        hint = "the server does not speak TLS; use an http:// URL or enable TLS in Kibana"
    else:
        hint = "check the URL and the CA certificate"
    return f"TLS handshake with Kibana at {url} failed: {reason}; {hint}"


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
