"""Fact cards: a short, deterministic account of an alert, written when it is claimed, before any model call.

While an alert waits for the model (minutes in a storm, hours when the model is down) Kibana would show
nothing for it. The fact card says what the alert itself says: the rule and its MITRE tactics and techniques,
host, user, process and parent command lines, file or destination, the incident group so far, and the last
verdict for the same fingerprint or group when one exists. It stays after the model's answer arrives.

Alert values are attacker-controlled: they are cut, and cleaned like model output (plain text, no markup
or control characters), so the card is safe to show as it is.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from worker.alerts import alert
from worker.assessing.assessment import clean_text
from worker.assessing.group_prompt import describe_span
from worker.dispatch.grouping import Group

MAX_CHARS: Final = 1000
VALUE_CHARS: Final = 160

_LINES: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("Host", ("host.name", "host.hostname")),
    ("User", ("user.name",)),
    ("Process", ("process.command_line", "process.executable", "process.name")),
    ("Parent", ("process.parent.command_line", "process.parent.executable", "process.parent.name")),
    ("File", ("file.path", "file.name")),
    ("Destination", ("destination.domain", "destination.ip", "url.full", "dns.question.name")),
)


def _value(source: dict[str, Any], paths: tuple[str, ...]) -> str | None:
    for path in paths:
        value = alert.first(source, path)
        if value not in (None, "", []):
            text = " ".join(map(str, value)) if isinstance(value, list) else str(value)
            return clean_text(text, VALUE_CHARS)
    return None


def _mitre(source: dict[str, Any]) -> str | None:
    names: list[str] = []
    for threat in alert.values(source, "kibana.alert.rule.threat"):
        if not isinstance(threat, dict):
            continue
        tactic = alert.first(threat, "tactic.name")
        techniques = [str(alert.first(t, "name")) for t in alert.values(threat, "technique")
                      if isinstance(t, dict) and alert.first(t, "name")]
        if tactic or techniques:
            names.append(f"{tactic or '?'}" + (f" ({', '.join(techniques[:3])})" if techniques else ""))
    return clean_text("; ".join(names[:3]), 200) if names else None


def card(source: dict[str, Any], group: Group | None, last_verdict: dict[str, Any] | None) -> str:
    """The fact card of ``source``: one line per fact, at most ``MAX_CHARS`` characters."""
    rule = _value(source, ("kibana.alert.rule.name",)) or "an unnamed rule"
    severity = _value(source, ("kibana.alert.severity",))
    lines = [f"Rule: {rule}" + (f" ({severity})" if severity else "")]
    mitre = _mitre(source)
    if mitre:
        lines.append(f"MITRE ATT&CK: {mitre}")
    for label, paths in _LINES:
        value = _value(source, paths)
        if value:
            lines.append(f"{label}: {value}")
    if group is not None and group.size > 1:
        span = describe_span(group.last_seen - group.first_seen)
        lines.append(f"Incident group: {group.size} alerts of this rule on this host so far, within {span}")
    if last_verdict:
        risk = clean_text(str(last_verdict.get("risk_level") or "?"), 20)
        summary = clean_text(str(last_verdict.get("summary") or ""), 200)
        when = _when(last_verdict.get("enriched_at"))
        lines.append(f"Last AI verdict for the same activity{when}: {risk}. {summary}".rstrip())
    text = "\n".join(lines)
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1].rstrip() + "…"


def _when(value: Any) -> str:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return ""
    return f" ({moment.strftime('%Y-%m-%d %H:%M')} UTC)"
