"""The prompt for an incident group: one model call describes the whole burst.

The rule block is sent once, as for one alert. The event fields every member shares are sent once; for each
field that varies, the number of distinct values and a few examples. All event data stays fenced and
JSON-encoded exactly as in ``worker/assessing/prompt.py``; the group line (count, span, host) is ours, so it is outside
the fence. The system prompt is the single-alert one, so llama.cpp's prompt cache still serves it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from worker.alerts import alert
from worker.assessing import guards, prompt
from worker.dispatch import grouping

VERSION_SUFFIX: Final = "-group"
EXAMPLES: Final = 3
EXAMPLE_CHARS: Final = 120
MAX_MEMBERS: Final = 200  # enough to see what varies; the count in the group line is the whole group's


@dataclass(frozen=True)
class GroupFacts:
    """What we know of the group ourselves (trusted): how many, over what span, where."""

    size: int
    first_seen: float
    last_seen: float
    host: str
    user: str

    def line(self) -> str:
        span = max(self.last_seen - self.first_seen, 0.0)
        who = f", user {self.user}" if self.user else ""
        return (f"{self.size} alerts of this rule on host {self.host}{who}, from {_iso(self.first_seen)} to "
                f"{_iso(self.last_seen)} ({describe_span(span)}).")


def describe_span(seconds: float) -> str:
    if seconds < 90:
        return f"{round(seconds)} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def event_lines(members: list[list[tuple[str, str]]]) -> list[tuple[str, str]]:
    """The fenced lines: shared fields once, then each varying field as a count with a few examples."""
    order: list[str] = []
    values: dict[str, list[str]] = {}
    for pairs in members:
        for label, value in pairs:
            if label in prompt.RULE_LABELS:
                continue
            if label not in values:
                order.append(label)
                values[label] = []
            if value not in values[label]:
                values[label].append(value)
    shared = [(label, values[label][0]) for label in order
              if len(values[label]) == 1 and all(label in dict(pairs) for pairs in members)]
    shared_labels = {label for label, _ in shared}
    varying = []
    for label in order:
        if label in shared_labels:
            continue
        distinct = values[label]
        examples = " | ".join(prompt.shorten(v, EXAMPLE_CHARS) for v in distinct[:EXAMPLES])
        more = f" (+{len(distinct) - EXAMPLES} more)" if len(distinct) > EXAMPLES else ""
        varying.append((f"{label} (varies)", f"{len(distinct)} distinct values: {examples}{more}"))
    return shared + varying


def build(members: list[dict[str, Any]], facts: GroupFacts, *, suspected: bool | None = None) -> prompt.Prompt:
    """The chat messages for a group whose member ``_source`` documents are ``members`` (first = oldest);
    ``suspected``: whether any member's text addresses the model, when the caller scanned them already."""
    per_member = [prompt.extract_pairs(source) for source in members[:MAX_MEMBERS]]
    rule = [pair for pair in per_member[0] if pair[0] in prompt.RULE_LABELS]
    event = event_lines(per_member)
    extract = prompt.render_extract(event) or 'note: "the alerts have none of the event fields this assessment reads"'
    marker = prompt.fence_marker(extract)
    rule_block = prompt.render_extract(rule) or 'note: "the alerts name no detection rule"'
    user = (f"Detection rule:\n{rule_block}\nIncident group: {facts.line()}\n"
            f"Event data of the group:\n{marker}\n{extract}\n{marker}\n"
            "Describe the burst: how many alerts, over what span, what varies and why it matters. "
            "Reply with the JSON object only.")
    if suspected is None:
        suspected = any(guards.detect_injection(source) for source in members[:MAX_MEMBERS])
    all_pairs = tuple(pair for pairs in per_member for pair in pairs)
    return prompt.Prompt(
        messages=[{"role": "system", "content": prompt.SYSTEM_PROMPT}, {"role": "user", "content": user}],
        extract=extract, pairs=all_pairs, version=prompt.PROMPT_VERSION + VERSION_SUFFIX,
        injection_suspected=suspected,
    )


def ground(summary: str, facts: GroupFacts, limit: int) -> str:
    """The summary, opened with the count and host when the model left them out (analysts need both).

    The guards' warning, when there is one, stays first: it is what an analyst must read before anything else.
    """
    if str(facts.size) in summary and facts.host.lower() in summary.lower():
        return summary
    warning = guards.WARNING + " " if summary.startswith(guards.WARNING) else ""
    opening = f"{facts.size} alerts on {facts.host} within {describe_span(facts.last_seen - facts.first_seen)}: "
    text = warning + opening + summary[len(warning):].lstrip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def facts_of(members: list[dict[str, Any]], size: int) -> GroupFacts:
    """The group line's facts from the members' own fields (``size`` may count members not read)."""
    starts = [t for t in (grouping.start_of(s) for s in members) if t is not None] or [0.0]
    first = members[0]
    host = str(alert.first(first, "host.name") or alert.first(first, "host.hostname") or "?")
    user = str(alert.first(first, "user.name") or "")
    return GroupFacts(max(size, len(members)), min(starts), max(starts), host, user)
