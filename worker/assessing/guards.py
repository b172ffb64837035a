"""Deterministic guards after the model: whatever an alert's text made the model say, what an analyst reads
is bounded by the alert's own facts.

A small CPU model can always be steered by text in the alert. These guards do not try to stop that; they
make sure it cannot reach the verdict an analyst reads first:

* :func:`detect_injection` scans every string of the alert (not only what the prompt sends) for text
  aimed at a model: role markers, fence look-alikes, instruction and verdict phrases, instructions aimed at
  other alerts or fields, and JSON shaped like our answer. It returns stable short reason codes.
* :func:`guard` runs on the parsed answer. When the alert tries to instruct the model: the risk never falls
  below the rule's severity, the summary opens with a fixed warning, and "benign" / "false positive"
  sentences come after the facts, marked unverified, while dismissive actions are dropped. Always: sentences
  that repeat our own system prompt are cut, and a summary that names none of the alert's entities is
  completed from the alert's own fields (deterministically; no second model call).
* :func:`for_alert` re-applies the per-alert parts to an answer shared from another alert (cache,
  coalescing): alerts of one fingerprint share the prompt extract, not every field this scans.
* :func:`for_group` guards an incident group's answer against every member's text the prompt carried:
  one hostile member cannot lower or steer what the whole group reads, though only it is flagged.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import replace
from functools import cache, lru_cache
from typing import Any, Final

from worker.alerts import alert, fields
from worker.alerts.fields import RiskLevel
from worker.assessing import assessment, prompt
from worker.assessing.assessment import Assessment

# -- detection ------------------------------------------------------------------------------------------

MAX_SCAN_CHARS: Final = 200_000  # over the whole document: a 10 MB field or 100k values stay fast
MAX_STRING_CHARS: Final = 20_000  # of one value (the prompt sends at most 600 of any)
MAX_DEPTH: Final = 64  # Kibana alerts are under 10 deep
MAX_NODES: Final = 50_000

# Reason codes (stable: analysts may filter on them).
ROLE_MARKER: Final = "role_marker"
FENCE: Final = "fence"
INSTRUCTION: Final = "instruction"
VERDICT_REQUEST: Final = "verdict_request"
OTHER_ALERTS: Final = "other_alerts"
ANSWER_JSON: Final = "answer_json"

_SEP = r"[\s_\-]+"  # attackers also write ignore_previous_instructions
_Q = r"\\*[\"'`]"  # a quote, maybe escaped (JSON inside a JSON string)
_ANSWER_KEYS: Final = ("summary", "risk", "risk_level", "confidence", "actions", "recommended_actions",
                       "what_happened", "injection_suspected")
_RISK_WORDS = r"(?:low|medium|high|critical|none|benign|informational|info|safe)"

# Patterns that hold in any field, the rule's too (SOC-written text has no reason to contain them).
_STRONG: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    (ROLE_MARKER, re.compile(
        r"<\|\s*(?:im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id|end_header_id"
        r"|begin_of_text)\s*\|>"
        r"|\[/?INST\]|<</?SYS>>|</?(?:assistant|instructions?)>"
        r"|\[\s*(?:system|assistant)\s*(?:message|prompt)\s*\]|\[\s*(?:system|assistant)\s*\][ \t]*(?::|$)"
        r"|<\s*system\s*>\s*[^<\s]"  # not Windows event XML's <System><Provider ...>
        r"|^[ \t>*\"'`]*(?:system|assistant|developer)[ \t]*(?:message[ \t]*)?:"  # a role line
        r"|^[ \t]*#{2,}[ \t]*(?:instructions?|system|response|input|assistant)[ \t]*:?[ \t]*$"  # ### Instruction
        r"|\b(?:system|assistant)[ \t]+(?:message|prompt)[ \t]*:",
        re.IGNORECASE | re.MULTILINE)),
    (FENCE, re.compile(
        r"ALERT-DATA-[0-9a-f]{4,}"  # our own marker's shape
        r"|\b(?:end|beginning|start)\s+of\s+(?:the\s+)?(?:untrusted\s+|event\s+|alert\s+)?(?:data|input)\b"
        r"|(?-i:\b(?:BEGIN|END)[\s_-]+(?:OF[\s_-]+)?(?:UNTRUSTED|EVENT|ALERT|USER|INPUT|DATA|SYSTEM|INSTRUCTIONS?)\b)"
        r"|```+[ \t]*(?:system|assistant|user|instructions?)\b",
        re.IGNORECASE)),
    (INSTRUCTION, re.compile(
        rf"\b(?:ignore|disregard|forget|override|bypass|skip){_SEP}(?:(?:all|any|the|your|of|these|my){_SEP})*"
        rf"(?:previous|prior|above|earlier|preceding|former|system|original|existing|initial){_SEP}"
        r"(?:instructions?|prompts?|rules?|directions?|guidelines?|context|messages?|orders?)\b"
        r"|\byou\s+are\s+now\b|\bfrom\s+now\s+on,?\s+you\b"
        r"|\bnew\s+(?:system\s+)?(?:instructions?|rules|task)\s*[:\-]|\bsystem\s+prompt\b"
        r"|\b(?:respond|reply|answer|output)\s+(?:only\s+)?with\s+(?:json|the\s+following|risk|this|\{|\"|low|benign)"
        # The same order with the rules named first: "disregard the rules above".
        rf"|\b(?:ignore|disregard|forget|override|bypass){_SEP}(?:(?:all|any|the|your|these|my){_SEP})*"
        r"(?:instructions?|prompts?|rules?|guidelines?|directions?|orders?)\s+(?:above|before|so\s+far|given)\b",
        re.IGNORECASE)),
)

# Patterns for text an attacker controls only: SOC-written rule guides legitimately say "other alerts" and
# "close as benign" (the corpus has 175 of the first).
_EVENT_ONLY: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    # Text that speaks to the model, or claims authority over its verdict, from event data.
    (INSTRUCTION, re.compile(
        r"\b(?:note|message|memo|instructions?|request|reminder)\s+(?:to|for)\s+(?:the\s+|any\s+|an?\s+)?"
        r"(?:ai|a\.i\.|llm|model|language\s+model|assistant|chatbot|bot|automated\s+(?:reviewer|analyst|triage))\b"
        r"|(?:^|[\s#/;:'\"(])(?:ai|llm|gpt|chatbot)\s+(?:reviewer|assistant|analyst|model|triage|agent)\s*[:,]"
        r"|\b(?:message|note|instructions?|orders?|word)\s+from\s+(?:the\s+|your\s+)?(?:soc|security\s+team|"
        r"security\s+operations|administrator|admin|analysts?|it\s+department|management|ciso|manager)\b",
        re.IGNORECASE | re.MULTILINE)),
    (VERDICT_REQUEST, re.compile(
        r"\b(?:mark|classify|label|flag|treat|report|tag|rate|score|close|resolve|dismiss|consider)\s+"
        r"(?:(?:this|the|it|that|these|all|every|each|alert|alerts|event|events|activity|incident|detection|one)\s+)*"
        r"(?:as\s+|is\s+)?(?:a\s+|an\s+)?(?:benign|false[\s_-]*positives?|harmless|safe|low[\s_-]*risk|informational"
        r"|non[\s_-]*malicious|not\s+malicious|authori[sz]ed|approved|sanctioned|expected|legitimate|allow[\s_-]*listed"
        r"|white[\s_-]*listed|(?:a\s+)?(?:pen[\s_-]*test|penetration\s+test|drill|exercise))\b"
        r"|\b(?:risk|severity|priority|risk[_ ]level|verdict)\s+(?:must|should|shall|needs?\s+to|has\s+to|is\s+to)\s+be"
        r"\s+(?:set\s+to\s+|marked\s+as\s+)?(?:low|none|minimal|benign|informational|info|lowered|reduced)\b"
        r"|\b(?:answer|reply|respond|output|return|say)\s+(?:with\s+)?(?:a\s+|the\s+)?(?:risk|severity)"
        r"(?:\s+level)?\s*(?:of\s+|=|:|is\s+)?\s*(?:low|none|minimal|benign|informational|info)\b"
        r"|\b(?:mark|classify|label|rate|treat|flag|score)\s+(?:(?:this|the|it|alert|event)\s+)*as\s+(?:low|info)\b"
        r"|\b(?:this|the)\s+(?:alert|event|detection)\s+is\s+(?:a\s+|an\s+)?(?:benign|false[\s_-]*positive|harmless"
        r"|safe|authori[sz]ed|test)\b"
        rf"|\b(?:set|change|lower|downgrade|reduce|update|make)\s+(?:the\s+|its\s+|this\s+|your\s+)?"
        r"(?:alert'?s?\s+)?(?:risk|severity|risk[_ ]level|risk[_ ]score|confidence|priority)(?:\s+level|\s+score)?"
        r"\s+(?:to|=|as)\b"
        rf"|\brisk(?:_level)?\s*[:=]\s*[\"']?{_RISK_WORDS}\b",
        re.IGNORECASE)),
    (OTHER_ALERTS, re.compile(
        r"\bother\s+alerts?\b|\b(?:all|every|each)\s+(?:the\s+)?alerts?\b"
        r"|\b(?:remaining|rest\s+of\s+the|subsequent)\s+alerts?\b"
        r"|\b(?:mark|set|close|resolve|dismiss|acknowledge|suppress)\s+(?:all|each|every|both)\s+of\s+them\b"
        r"|\b(?:update|change|modify|edit|close|resolve|delete|suppress|acknowledge|dismiss|overwrite)\s+"
        r"(?:(?:all|every|each|any|the|other|these|those|previous|next|following|this)\s+)*alerts?\b"
        r"|\b(?:change|set|update|modify|edit|overwrite)\s+(?:the\s+)?(?:status|severity|risk|fields?|assessments?"
        r"|summary|summaries|tags?)\s+(?:of|on|for|in)\b"
        r"|\blme\.ai\b|\bworkflow_(?:status|tags)\b|\bkibana\.alert\.(?:severity|risk_score|status)\b",
        re.IGNORECASE)),
)
_ANSWER_KEY: Final = re.compile(rf"{_Q}\s*({'|'.join(_ANSWER_KEYS)})\s*{_Q}\s*:", re.IGNORECASE)
_RISK_VALUE: Final = re.compile(rf"{_Q}\s*risk(?:_level)?\s*{_Q}\s*:\s*(?:{_Q})?\s*{_RISK_WORDS}\b", re.IGNORECASE)

_ESCAPES: Final = re.compile(r"\\[nr]")  # a literal "\n" written into a command line reads as a new line
_INVISIBLE: Final = dict.fromkeys([*range(0x200B, 0x2010), *range(0x202A, 0x202F), *range(0x2060, 0x2070), 0xFEFF,
                                   0xAD], None)

# Where the text comes from: ours and analysts' (not the attacker's) are skipped, the rule's is SOC-written.
_SKIP_PREFIXES: Final = ("lme.", "kibana.alert.workflow_")
_RULE_PREFIXES: Final = ("kibana.alert.rule.", "signal.rule.")


def _normalise(text: str) -> str:
    """What a model reads: fullwidth and compatibility forms folded, zero-width and bidi characters gone."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text.encode("utf-8", "replace").decode("utf-8")).translate(_INVISIBLE)
    return _ESCAPES.sub("\n", text)


_JOIN: Final = "\x00\n"  # between strings scanned together: no pattern matches across it


def _scan(texts: list[str], *, rule_authored: bool) -> set[str]:
    """Reason codes for strings (``rule_authored``: only the patterns SOC-written text never holds).

    The strings are scanned as one text (a regex pass per pattern, not per string, keeps a 100k-value array
    fast); no pattern can match across the NUL that joins them.
    """
    if not texts:
        return set()
    text = _normalise(_JOIN.join(t.replace("\x00", " ") for t in texts))
    patterns = _STRONG if rule_authored else _STRONG + _EVENT_ONLY
    found = {code for code, pattern in patterns if pattern.search(text)}
    if _ANSWER_KEY.search(text):  # rare: decide per string (two keys of one answer, or a risk verdict)
        for part in text.split(_JOIN):
            if len({key.lower() for key in _ANSWER_KEY.findall(part)}) >= 2 or _RISK_VALUE.search(part):
                found.add(ANSWER_JSON)
                break
    return found


def scan_text(text: str, *, rule_authored: bool = False) -> set[str]:
    """Reason codes for one string (``rule_authored``: only the patterns SOC-written text never holds)."""
    return _scan([text[:MAX_STRING_CHARS]], rule_authored=rule_authored)


def _skipped(path: str) -> bool:
    return path == "lme" or path.startswith(_SKIP_PREFIXES)


def _strings(source: Any) -> Iterator[tuple[str, str]]:
    """``(dotted path, string)`` for the strings of ``source``, bounded in depth and node count."""
    stack: list[tuple[str, Any, int]] = [("", source, 0)]
    nodes = 0
    while stack and nodes < MAX_NODES:
        path, node, depth = stack.pop()
        nodes += 1
        if isinstance(node, str):
            yield path, node
        elif depth >= MAX_DEPTH:
            continue
        elif isinstance(node, dict):
            items = [(f"{path}.{key}" if path else str(key), value) for key, value in node.items()]
            stack.extend((p, v, depth + 1) for p, v in reversed(items) if not _skipped(p))
        elif isinstance(node, list):
            stack.extend((path, v, depth + 1) for v in reversed(node))


def detect_injection(source: dict[str, Any]) -> list[str]:
    """Sorted reason codes for text in the alert that addresses a model (empty: none found).

    The fields the prompt sends are scanned first, then every other string of the document (the model may see
    them in a later prompt version, and analysts filter on the flag), up to :data:`MAX_SCAN_CHARS` in all.
    Our own ``lme.*`` fields and analysts' workflow fields are not scanned; the rule's own text (SOC-written:
    its guides say "other alerts" and "close as benign") only for markers, fences, "ignore previous
    instructions" and answer-shaped JSON.
    """
    groups: dict[bool, list[str]] = {False: [], True: []}  # rule-authored or not
    budget = MAX_SCAN_CHARS
    seen: set[int] = set()

    def take(path: str, text: str) -> None:
        nonlocal budget
        if budget <= 0 or id(text) in seen or not text:
            return
        seen.add(id(text))
        chunk = text[: min(budget, MAX_STRING_CHARS)]
        budget -= len(chunk) + len(_JOIN)
        groups[path.startswith(_RULE_PREFIXES)].append(chunk)

    try:
        for path in prompt.SOURCE_PATHS:
            for value in alert.values(source, path):
                if isinstance(value, str):
                    take(path, value)
        for path, text in _strings(source):
            take(path, text)
    except RecursionError:  # alert.values on nesting deeper than Python's stack: what was collected stands
        pass
    return sorted(_scan(groups[False], rule_authored=False) | _scan_rule_texts(groups[True]))


_LONG_RULE_TEXT: Final = 200


def _scan_rule_texts(texts: list[str]) -> set[str]:
    # A rule's long texts (description, investigation guide, query: ~10 KB) are the same in each of its alerts,
    # and scanning them was half the cost of detection (profiled): each is scanned once per process. Its short
    # values (ids, dates) vary per alert and cost little.
    found = _scan([t for t in texts if len(t) < _LONG_RULE_TEXT], rule_authored=True)
    for text in texts:
        if len(text) >= _LONG_RULE_TEXT:
            found |= _scan_long_rule_text(text)
    return found


@lru_cache(maxsize=512)
def _scan_long_rule_text(text: str) -> frozenset[str]:
    return frozenset(_scan([text], rule_authored=True))


# -- facts of the alert -----------------------------------------------------------------------------------

ENTITY_MAX: Final = 40  # characters of one value in a sentence we write

# (label, paths): the first path with a usable value wins. Order is the order of the completing sentence.
_ENTITY_FIELDS: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("host", ("host.name", "host.hostname")),
    ("user", ("user.name",)),
    ("process", ("process.name", "process.executable")),
    ("file", ("file.name", "file.path")),
    ("registry", ("registry.path",)),
    ("destination", ("destination.domain", "destination.ip", "dns.question.name", "url.domain", "url.full")),
    ("source", ("source.ip",)),
)
# Further names that count as naming the alert's facts when a summary uses them. Not the user's domain: every
# host and user of the site shares it, so a summary naming only "CORP" says nothing of this alert.
_ALSO_NAMES: Final = ("host.hostname", "process.executable", "process.parent.name", "process.parent.executable",
                      "file.path", "destination.ip", "url.full")
_UNHELPFUL: Final = frozenset({"", "-", "n/a", "none", "null", "unknown", "system32"})
# Values too common as words to show that a summary names them ("the system", "a local admin").
_COMMON_WORDS: Final = frozenset({"system", "admin", "administrator", "user", "users", "root", "local", "host",
                                  "localhost", "windows", "service", "guest", "default", "network", "process"})


def _basename(value: str) -> str:
    return re.split(r"[\\/]", value.rstrip("\\/"))[-1]


def _usable(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    text = assessment.clean_text(str(value), 200)
    if text.lower() in _UNHELPFUL or scan_text(text):  # never repeat an attacker's instructions to the analyst
        return None
    return text


def entities(source: dict[str, Any]) -> list[tuple[str, str]]:
    """``(label, value)`` of the alert's host, user, process, file, registry key and network peers."""
    found: list[tuple[str, str]] = []
    for label, paths in _ENTITY_FIELDS:
        for path in paths:
            raw = alert.first(source, path)
            if label in ("process", "file", "registry") and isinstance(raw, str) and len(raw) > ENTITY_MAX:
                raw = _basename(raw) or raw  # the name, not the first characters of a long path
            value = _usable(raw)
            if value is not None:
                found.append((label, value))
                break
    return found


def _names(source: dict[str, Any]) -> set[str]:
    """Lower-cased strings whose presence in a summary means it names one of the alert's facts."""
    names: set[str] = set()
    values = [v for _, v in entities(source)]
    values += [v for path in _ALSO_NAMES if (v := _usable(alert.first(source, path))) is not None]
    for value in values:
        low = value.lower()
        short = low.split(".")[0]  # ws-042 names ws-042.corp.local (not "10" of an IP)
        for name in (low, _basename(low), low.split("\\")[-1], short if re.search("[a-z]", short) else low):
            if len(name) >= 3 and name not in _UNHELPFUL and name not in _COMMON_WORDS:
                names.add(name)
        stem = _basename(low)
        if stem.endswith((".exe", ".dll", ".ps1", ".bat", ".cmd", ".sh", ".vbs", ".js")) and len(stem) > 6:
            names.add(stem.rsplit(".", 1)[0])  # "whoami" names whoami.exe
    return names


def grounded(summary: str, source: dict[str, Any]) -> bool:
    """Does ``summary`` name at least one of the alert's entities (host, user, process, file...) as a whole word?

    Inside a longer word a name says nothing: host ``ws1`` is not named by "ws10", user ``bob`` not by "bobcat".
    """
    low = summary.lower()
    return any(re.search(rf"(?<![a-z0-9]){re.escape(name)}(?![a-z0-9])", low) for name in _names(source))


def completion(source: dict[str, Any]) -> str | None:
    """A sentence of the alert's own facts ("Involves host H, user U, process P."), or None without any."""
    found = entities(source)[:4]
    if not found:
        return None
    parts = [f"{label} {_fit_value(value)}" for label, value in found]
    return "Involves " + ", ".join(parts) + "."


def _fit_value(value: str) -> str:
    return value if len(value) <= ENTITY_MAX else value[: ENTITY_MAX - 1] + "…"


def rule_severity(source: dict[str, Any]) -> str | None:
    """The alert's severity (the rule's, or Kibana's override) as a risk level, or None."""
    for path in ("kibana.alert.severity", "kibana.alert.rule.severity", "kibana.alert.rule.parameters.severity",
                 "signal.rule.severity"):
        value = alert.first(source, path)
        if isinstance(value, str) and value.strip().lower() in RiskLevel.__members__:
            return value.strip().lower()
    return None


# -- the guard --------------------------------------------------------------------------------------------

WARNING: Final = "Warning: this alert's own text addresses the AI model."
UNVERIFIED: Final = "Unverified model claim:"
DEFAULT_FLOOR: Final = RiskLevel.medium.value  # an alert that tries to instruct the model, severity unknown
STEERED_CONFIDENCE_MAX: Final = 0.5  # the model's confidence was in a risk the guard replaced

# Guard codes (recorded in lme.ai.guards when mapped).
G_RISK_FLOOR: Final = "risk_floor"
G_WARNING: Final = "warning"
G_DEMOTED: Final = "verdict_demoted"
G_ACTION_DROPPED: Final = "action_dropped"
G_ECHO_CUT: Final = "echo_cut"
G_GROUNDED: Final = "grounded"
G_DEFAULT_ACTION: Final = "default_action"
G_DEFAULT_SUMMARY: Final = "default_summary"
G_ACTION_GROUNDED: Final = "action_grounded"
_COPY_WORDS: Final = 4  # a run this long of the alert's own instructions, repeated by the model, is theirs

_ORDER: Final = tuple(RiskLevel.__members__)
_SENTENCE_END: Final = re.compile(r"(?<=[.!?])\s+(?=\S)")
_VERDICT: Final = re.compile(
    r"\b(?:benign|false[\s_-]*positives?|harmless|legitimate|not\s+malicious|non[\s_-]*malicious|no\s+threat"
    r"|no\s+(?:further\s+)?action|nothing\s+(?:to\s+worry|suspicious|malicious)|safe\s+to\s+(?:ignore|close)"
    r"|expected\s+(?:behaviou?r|activity)|authori[sz]ed|routine|(?:admin|administrative)\s+activity"
    r"|a\s+test\b|low\s+risk|(?:already\s+)?approved|sanctioned|(?:white|allow)[\s-]*listed|pen[\s-]*test"
    r"|penetration\s+test)",
    re.IGNORECASE)
# Steps that would end the investigation: what an attacker who steered the model wants an analyst to do.
_DISMISSIVE_ACTION: Final = re.compile(
    r"\b(?:close|dismiss|archive|resolve|suppress|ignore|acknowledge)\s+(?:(?:the|this|that|these|it)\s+)?"
    r"(?:alerts?|case|ticket|incident|event|activity|detection)\b|\bmark\b[^.]{0,40}\bas\b"
    r"|\b(?:whitelist|allow[\s-]*list)\b|\bno\s+(?:further\s+)?action\b|\bnothing\s+to\s+do\b"
    r"|\b(?:benign|false[\s_-]*positives?|harmless|no\s+threat|safe\s+to\s+(?:ignore|close))\b",
    re.IGNORECASE)

# Short phrases of our system prompt that no answer needs: an answer holding one repeats our instructions.
ECHO_PHRASES: Final = (
    "orders to follow", "evidence to describe", "marker lines", "marker line", "attackers control it",
    "instructions markers", "instructions and markers", "json object", "soc analyst triaging",
    "between the two identical", "detection rule is the soc", "short next steps", "1 2 sentences",
)
_ECHO_NGRAM: Final = 5  # also any 5 words in a row of the system prompt


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


@cache
def _prompt_ngrams() -> frozenset[tuple[str, ...]]:
    words = _words(prompt.SYSTEM_PROMPT)
    return frozenset(tuple(words[i:i + _ECHO_NGRAM]) for i in range(len(words) - _ECHO_NGRAM + 1))


def echoes_prompt(sentence: str) -> bool:
    """Does ``sentence`` repeat our system prompt (a distinctive phrase, or 5 words in a row)?"""
    words = _words(sentence)
    joined = " " + " ".join(words) + " "
    if any(f" {phrase} " in joined for phrase in ECHO_PHRASES):
        return True
    grams = _prompt_ngrams()
    return any(tuple(words[i:i + _ECHO_NGRAM]) in grams for i in range(len(words) - _ECHO_NGRAM + 1))


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def _cut_echo(text: str) -> tuple[str, bool]:
    kept = [s for s in _sentences(text) if not echoes_prompt(s)]
    joined = " ".join(kept)
    return joined, joined != " ".join(_sentences(text))


def _raise_to(risk: str, floor: str) -> str:
    return floor if _ORDER.index(floor) > _ORDER.index(risk) else risk


def _strip_warning(summary: str) -> str:
    return summary[len(WARNING):].strip() if summary.startswith(WARNING) else summary


def _assemble(warning: str | None, facts: list[str], clause: str | None, demoted: list[str], limit: int) -> str:
    """Warning, the model's facts, the alert's own facts, then demoted claims, in ``limit`` characters.

    The warning and the completing clause are never cut; the model's facts are shortened, and demoted
    claims dropped, to make room.
    """
    fixed = [part for part in (warning, clause) if part]
    room = limit - sum(len(part) + 1 for part in fixed)
    body = assessment.clean_text(" ".join(facts), max(room, 2)) if facts and room > 1 else ""
    text = " ".join(part for part in (warning, body, clause) if part)
    for claim in demoted:
        if len(text) + 1 + len(claim) > limit:
            break
        text = f"{text} {claim}" if text else claim
    return text[:limit]


def _attack_runs(source: dict[str, Any]) -> frozenset[tuple[str, ...]]:
    """Every run of ``_COPY_WORDS`` words of the alert's strings that address the model."""
    runs: set[tuple[str, ...]] = set()
    for path, text in _strings(source):
        if path.startswith(_RULE_PREFIXES) or not scan_text(text):
            continue
        words = _words(_normalise(text[:MAX_STRING_CHARS]))
        runs.update(tuple(words[i:i + _COPY_WORDS]) for i in range(len(words) - _COPY_WORDS + 1))
    return frozenset(runs)


def _copies(sentence: str, runs: frozenset[tuple[str, ...]]) -> bool:
    words = _words(sentence)
    return any(tuple(words[i:i + _COPY_WORDS]) in runs for i in range(len(words) - _COPY_WORDS + 1))


def default_action(source: dict[str, Any]) -> str:
    """A next step built from the alert's own fields, for when no usable action is left."""
    facts = dict(entities(source))
    where = f" on host {_fit_value(facts['host'])}" if "host" in facts else ""
    if "process" in facts:
        text = f"Review process {_fit_value(facts['process'])}{where} and what it started."
    elif "user" in facts:
        text = f"Review recent activity of user {_fit_value(facts['user'])}{where}."
    elif "file" in facts:
        text = f"Review file {_fit_value(facts['file'])}{where}."
    elif where:
        text = f"Review the alert's events{where}."
    else:
        text = "Review the alert's event data in Kibana."
    return assessment.clean_text(text, assessment.ACTION_MAX)


def guard(answer: Assessment, source: dict[str, Any], injection_reasons: list[str] | tuple[str, ...],
          rule_severity: str | None) -> Assessment:
    """``answer`` made safe to show for the alert ``source`` (see the module docstring); idempotent."""
    applied: list[str] = []
    injected = bool(injection_reasons)

    # 1. Our own instructions repeated back are noise at best: cut them from every text.
    summary, cut = _cut_echo(_strip_warning(answer.summary))
    actions: list[str] = []
    for action in answer.recommended_actions:
        kept, action_cut = _cut_echo(action)
        cut = cut or action_cut
        if kept:
            actions.append(kept)
    if cut:
        applied.append(G_ECHO_CUT)

    # 2. When the alert addresses the model, its verdict is not what an analyst reads first.
    risk, confidence = answer.risk_level, answer.confidence
    facts_first, demoted = _sentences(summary), []
    if injected:
        floor = rule_severity if rule_severity in _ORDER else DEFAULT_FLOOR
        raised = _raise_to(risk, floor)
        if raised != risk:
            risk, confidence = raised, min(confidence, STEERED_CONFIDENCE_MAX)
            applied.append(G_RISK_FLOOR)
        # A verdict ("benign", "false positive") or the alert's own instructions repeated by the model.
        runs = _attack_runs(source)
        demoted = [s for s in facts_first if _VERDICT.search(s) or scan_text(s) or _copies(s, runs)]
        if demoted:
            facts_first = [s for s in facts_first if s not in demoted]
            demoted = [s if s.startswith(UNVERIFIED) else f"{UNVERIFIED} {s}" for s in demoted]
            applied.append(G_DEMOTED)
        kept_actions = [a for a in actions if not _DISMISSIVE_ACTION.search(a)]
        if len(kept_actions) != len(actions):
            applied.append(G_ACTION_DROPPED)
        actions = kept_actions
        applied.append(G_WARNING)

    # 3. Grounding: the facts an analyst triages on, from the alert itself when the model named none.
    clause = None
    if not grounded(" ".join(facts_first), source):
        clause = completion(source)
        if clause is not None:
            applied.append(G_GROUNDED)
    if not facts_first and not demoted and clause is None:
        rule = _usable(alert.first(source, "kibana.alert.rule.name"))
        facts_first = [f"Alert from rule {_fit_value(rule)}." if rule else "Alert with no host, user or process."]
        applied.append(G_DEFAULT_SUMMARY)
    summary = _assemble(WARNING if injected else None, facts_first, clause, demoted, assessment.STORED_SUMMARY_MAX)

    if not actions:
        actions = [default_action(source)]
        applied.append(G_DEFAULT_ACTION)
    elif not any(grounded(action, source) for action in actions):
        # Steps that name nothing of this alert ("Investigate further") get one that does.
        specific = default_action(source)
        if grounded(specific, source):
            actions = [*actions[: assessment.ACTIONS_MAX - 1], specific]
            applied.append(G_ACTION_GROUNDED)

    return replace(answer, summary=summary, risk_level=risk, confidence=confidence,
                   recommended_actions=actions[: assessment.ACTIONS_MAX],
                   injection_reasons=tuple(injection_reasons), guards=tuple(applied))


def for_group(answer: Assessment, own: dict[str, Any], others: list[tuple[dict[str, Any], list[str]]], *,
              own_reasons: list[str] | None = None) -> Assessment:
    """An incident group's ``answer`` made safe for the claimed alert ``own``; ``others``: the other members,
    each with its :func:`detect_injection` reasons (the caller scanned them for the prompt already).
    ``own_reasons``: those of ``own``, when the caller has them.

    The prompt held every member's text, so the answer is guarded against each one that addresses the model
    (risk floor, unverified verdicts, dismissive actions dropped), then as for ``own`` alone: the warning and
    ``injection_reasons`` are ``own``'s (the other members get theirs from :func:`for_alert`).
    """
    carried: list[str] = []
    for source, reasons in others:
        if reasons:
            answer = guard(answer, source, reasons, rule_severity(source))
            carried += [g for g in answer.guards if g != G_WARNING]
    reasons = detect_injection(own) if own_reasons is None else own_reasons
    answer = guard(answer, own, reasons, rule_severity(own))
    return replace(answer, guards=tuple(dict.fromkeys([*carried, *answer.guards])))


# -- shared answers ------------------------------------------------------------------------------------

def for_alert(shared_fields: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
    """``shared_fields`` (an answer of another alert with this fingerprint) guarded for the alert ``source``.

    Alerts of one fingerprint share the prompt extract, not every field :func:`detect_injection` scans, nor
    necessarily every entity. Returns the ``lme.ai`` fields to write instead (only mapped ones): the risk is
    never lowered (a floor the other alert needed stays), the warning and flag follow this alert's text.
    """
    summary = shared_fields.get("summary")
    actions = shared_fields.get("recommended_actions")
    risk = shared_fields.get("risk_level")
    if not isinstance(summary, str) or not summary or risk not in _ORDER:
        return dict(shared_fields)  # not an assessment (a failure, or nothing to guard)
    confidence = shared_fields.get("confidence")
    answer = Assessment(
        summary=summary, risk_level=risk,
        confidence=float(confidence) if isinstance(confidence, int | float) else 0.0,
        recommended_actions=[a for a in (actions if isinstance(actions, list) else [actions]) if isinstance(a, str)],
    )
    reasons = detect_injection(source)
    guarded = guard(answer, source, reasons, rule_severity(source))
    # What shaped the shared text still shaped it here (a raised risk stays, a demoted verdict too); the
    # warning is this alert's own.
    shared_guards = shared_fields.get("guards")
    carried = [g for g in shared_guards if isinstance(g, str) and g != G_WARNING] \
        if isinstance(shared_guards, list) else []
    guarded = replace(guarded, guards=tuple(dict.fromkeys([*carried, *guarded.guards])))
    out = {**shared_fields, **guarded.as_fields(), **guarded.guard_fields(), "injection_suspected": bool(reasons)}
    if "what_happened" not in shared_fields:
        out.pop("what_happened", None)
    if not isinstance(confidence, int | float):
        out["confidence"] = confidence
    return {k: v for k, v in out.items() if k in fields.AI_PROPERTIES}
