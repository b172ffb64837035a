"""Containerfile, .containerignore and deploy/requirements.lock: what issue 5 asks of the image, read statically.

tests/deploy/test_podman.py builds and runs the image where Podman can.
"""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
CONTAINERFILE = (ROOT / "Containerfile").read_text(encoding="utf-8")
LOCK = ROOT / "deploy" / "requirements.lock"
TEST_TOOLS = {"pytest", "pytest-timeout", "hypothesis", "ruff", "mypy", "celery-types", "types-pyyaml", "pyyaml",
              "cryptography"}


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


def _lock() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            requirement = Requirement(line)
            (spec,) = requirement.specifier
            assert spec.operator == "==", line
            pins[canonicalize_name(requirement.name)] = spec.version
    return pins


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
    assert "-r requirements.lock" in " ".join(rest for word, rest in builder if word == "RUN")


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


def test_lock_pins_every_runtime_dependency_within_its_range() -> None:
    pins = _lock()
    for text in md.distribution("lme-enrich").requires or []:
        requirement = Requirement(text)
        if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
            continue
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not pinned in {LOCK.name}"
        assert requirement.specifier.contains(pins[name], prereleases=True), (name, pins[name])
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert len(project["dependencies"]) <= len(pins)


def test_lock_matches_this_venv_and_leaves_test_tools_out() -> None:
    pins = _lock()
    assert not TEST_TOOLS & set(pins), TEST_TOOLS & set(pins)
    for name, version in pins.items():
        try:
            installed = md.version(name)
        except md.PackageNotFoundError:
            continue  # pinned only for an older Python 3.11 patch level (marker in the lock)
        assert installed == version, f"{name}: lock {version}, venv {installed}: regenerate with deploy/make_lock.py"


def test_lock_is_what_make_lock_prints_now() -> None:
    spec = importlib.util.spec_from_file_location("make_lock", ROOT / "deploy" / "make_lock.py")
    assert spec and spec.loader
    make_lock = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_lock)
    expected = {name: pin.split(";")[0].strip().removeprefix("==") for name, pin in make_lock.closure().items()}
    assert _lock() == expected, "deploy/requirements.lock is stale: .venv/bin/python deploy/make_lock.py > it"
