"""Text analysis: the built-in analyzers our test server supports (standard and friends)."""

from __future__ import annotations

import functools
import re

# UAX#29-ish: letters/digits joined by an apostrophe or a dot inside a word stay one token.
WORD_PATTERN = re.compile(r"\w+(?:['\u2019.]\w+)*")
_LETTERS = re.compile(r"[^\W\d_]+")
_STOP = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no", "not",
    "of", "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this", "to", "was",
    "will", "with",
})
BUILTIN_ANALYZERS = frozenset(
    {"standard", "simple", "whitespace", "keyword", "stop", "english", "lowercase", "default", "pattern"}
)


def analyze(text: str, analyzer: str | None = None) -> list[str]:
    """Tokens of ``text`` in order; unknown (custom) analyzers behave as ``standard``."""
    return list(_analyze(text, analyzer or "standard"))


@functools.lru_cache(maxsize=8192)
def _analyze(text: str, name: str) -> tuple[str, ...]:
    return tuple(_tokens(text, name))


def _tokens(text: str, name: str) -> list[str]:
    if name == "whitespace":
        return text.split()
    if name == "keyword":
        return [text]
    if name == "simple":
        return [t.lower() for t in _LETTERS.findall(text)]
    tokens = [t.lower() for t in WORD_PATTERN.findall(text)]
    if name in ("stop", "english"):
        tokens = [t for t in tokens if t not in _STOP]
    return tokens


def normalize_keyword(value: str, normalizer: str | None) -> str:
    """Keyword normalizers: any normalizer set on a field lower-cases (the common `lowercase` case)."""
    return value.lower() if normalizer else value
