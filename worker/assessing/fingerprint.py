"""What an assessment depends on, as one hash: alerts with the same fingerprint get the same answer.

The fingerprint covers the rule (id and version), the prompt extract with volatile values normalised
(timestamps, GUIDs, long hex and digit runs such as process ids, random temp file names), the model and
the prompt version. Alerts of a storm (one rule firing on one host again and again) share it, so one
model call can serve them all; a new model or prompt version changes every fingerprint.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any, Final

from worker.alerts import alert

# Labels whose values carry volatile parts worth normalising; IPs, ports and names stay as they are.
_VOLATILE_LABELS: Final = frozenset({
    "reason", "process", "process_command_line", "parent_process", "parent_command_line", "file",
    "registry_path", "registry_data", "url", "dns_question",
})
_RULES: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    (re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?"), "<time>"),
    (re.compile(r"\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?"), "<guid>"),
    (re.compile(r"(?i)([\\/](?:temp|tmp)[\\/])[^\\/\s\"']+"), r"\1<tmp>"),
    (re.compile(r"\b[0-9a-fA-F]{8,}\b"), "<hex>"),
    (re.compile(r"\d{4,}"), "<n>"),
)


def normalise(label: str, value: str) -> str:
    """``value`` with its volatile parts replaced by placeholders (only for labels that have them)."""
    if label not in _VOLATILE_LABELS:
        return value
    for pattern, replacement in _RULES:
        value = pattern.sub(replacement, value)
    return value


def compute(source: dict[str, Any], pairs: Iterable[tuple[str, str]], *, model: str, prompt_version: str) -> str:
    """The fingerprint of an alert whose prompt extract is ``pairs``."""
    rule_id = alert.first(source, "kibana.alert.rule.rule_id") or alert.first(source, "kibana.alert.rule.uuid")
    rule_version = alert.first(source, "kibana.alert.rule.version") or alert.first(source, "kibana.alert.rule.revision")
    parts = [model, prompt_version, str(rule_id), str(rule_version)]
    parts += [f"{label}={normalise(label, value)}" for label, value in pairs]
    return hashlib.sha256("\n".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:32]
