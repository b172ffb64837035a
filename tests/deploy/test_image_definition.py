"""Containerfile and .containerignore: what issue 5 asks of the image, read statically.

tests/deploy/test_podman.py builds and runs the image where Podman can; tests/deploy/test_locks.py checks the locks.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONTAINERFILE = (ROOT / "Containerfile").read_text(encoding="utf-8")


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", CONTAINERFILE)
    pairs = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for word, rest in _instructions():
        if word == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((word, rest))
    return stages


def test_base_is_pinned_python_311_by_tag() -> None:
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", CONTAINERFILE, flags=re.MULTILINE)
    assert base and re.fullmatch(r"docker\.io/library/python:3\.11(\.\d+)?-slim-bookworm(@sha256:[0-9a-f]{64})?",
                                 base.group(1))


def test_multi_stage_and_the_final_stage_installs_only_built_wheels() -> None:
    builder, final = _stages()
    assert builder[0][1].endswith("AS builder")
    final_runs = " ".join(rest for word, rest in final if word == "RUN")
    assert "--no-index" in final_runs and "--find-links /tmp/wheels" in final_runs
    assert not re.search(r"\b(gcc|g\+\+|build-essential|apt-get|make)\b", final_runs), "no compilers in the image"
    builder_runs = " ".join(rest for word, rest in builder if word == "RUN")
    assert "--require-hashes -r requirements.lock" in builder_runs and "--require-hashes -r build.lock" in builder_runs
    assert "--no-build-isolation" in builder_runs, "the build backend is the locked one, not a fresh download"
    assert "--require-hashes" in final_runs


def test_runs_as_an_unprivileged_user_with_a_writable_state_dir() -> None:
    final = _stages()[-1]
    (user,) = [rest for word, rest in final if word == "USER"]
    assert not user.startswith(("0", "root"))
    env = " ".join(rest for word, rest in final if word == "ENV")
    assert "LME_ENRICH_STATE_DIR=/var/lib/lme-enrich" in env
    assert "--home-dir /var/lib/lme-enrich" in " ".join(rest for word, rest in final if word == "RUN")


def test_healthcheck_asks_lme_enrich() -> None:
    (health,) = [rest for word, rest in _stages()[-1] if word == "HEALTHCHECK"]
    assert "lme-enrich health" in health and "LME_ENRICH_HEALTH_ROLES" in health


def test_build_context_allows_exactly_what_the_containerfile_copies() -> None:
    ignore = (ROOT / ".containerignore").read_text(encoding="utf-8")
    assert ignore == (ROOT / ".dockerignore").read_text(encoding="utf-8")
    allowed = {line[1:] for line in ignore.splitlines() if line.startswith("!")}
    copied = {source for word, rest in _instructions() if word == "COPY" and "--from" not in rest
              for source in rest.split()[:-1]}
    assert copied <= allowed, copied - allowed
    for source in copied:
        assert (ROOT / source).exists(), source
    assert ignore.splitlines()[1] == "*", "allow-list: everything else (.env, secrets/, .venv) stays out"
