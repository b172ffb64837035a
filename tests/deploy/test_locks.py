"""The dependency locks: pinned and hashed, within pyproject.toml's ranges, consistent, and what the venv holds.

None of these depends on what PyPI offers today: scripts/lock is the only thing that reads the index, and a
newer release there changes nothing until someone runs it (test_a_newer_release_on_the_index_is_not_installed).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata as md
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
# Installed by the Python that makes the venv, not by a lock.
NOT_LOCKED = {"pip", "lme-enrich"}


@dataclass(frozen=True)
class Pin:
    version: str
    marker: Marker | None
    hashes: tuple[str, ...]


def read_lock(path: Path) -> dict[str, Pin]:
    """Name -> pin of a `uv pip compile --generate-hashes` lock (continuation lines joined, comments dropped)."""
    text = path.read_text(encoding="utf-8").replace("\\\n", " ")
    pins: dict[str, Pin] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        hashes = tuple(w.removeprefix("--hash=") for w in words if w.startswith("--hash="))
        requirement = Requirement(" ".join(w for w in words if not w.startswith("--hash=")))
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"{path.name}: {line} is not an exact pin"
        pins[canonicalize_name(requirement.name)] = Pin(spec.version, requirement.marker, hashes)
    return pins


DEV = read_lock(DEPLOY / "requirements-dev.lock")
RUNTIME = read_lock(DEPLOY / "requirements.lock")
BUILD = read_lock(DEPLOY / "build.lock")


def _ranges(texts: list[str]) -> list[Requirement]:
    return [Requirement(text) for text in texts]


def test_every_pin_is_exact_and_hashed() -> None:
    for lock in (DEV, RUNTIME, BUILD):
        for name, pin in lock.items():
            assert pin.hashes, f"{name} has no hash"
            assert all(h.startswith("sha256:") and len(h) == len("sha256:") + 64 for h in pin.hashes), name


@pytest.mark.parametrize(("lock", "texts"), [
    (RUNTIME, PROJECT["project"]["dependencies"]),
    (DEV, PROJECT["project"]["dependencies"] + PROJECT["project"]["optional-dependencies"]["test"]),
    (BUILD, PROJECT["build-system"]["requires"]),
], ids=["runtime", "dev", "build"])
def test_lock_is_within_the_ranges_of_pyproject(lock: dict[str, Pin], texts: list[str]) -> None:
    for requirement in _ranges(texts):
        name = canonicalize_name(requirement.name)
        assert name in lock, f"{name} is not pinned: run scripts/lock"
        assert requirement.specifier.contains(lock[name].version, prereleases=True), (name, lock[name].version)


def test_runtime_and_build_locks_are_the_dev_lock_s_versions() -> None:
    for lock in (RUNTIME, BUILD):
        for name, pin in lock.items():
            assert name in DEV and DEV[name].version == pin.version, f"{name}: run scripts/lock"
            assert set(pin.hashes) == set(DEV[name].hashes), name


def test_test_tools_stay_out_of_the_image() -> None:
    tools = {canonicalize_name(r.name) for r in _ranges(PROJECT["project"]["optional-dependencies"]["test"])}
    tools |= {"pluggy", "iniconfig", "mypy-extensions"}  # pulled in by pytest and mypy only
    assert not tools & set(RUNTIME), tools & set(RUNTIME)
    assert not set(BUILD) & set(RUNTIME), "the build backend is not a runtime dependency"


def test_the_venv_holds_exactly_the_dev_lock() -> None:
    """scripts/bootstrap test rebuilds .venv from the lock whenever the lock changes: nothing more, nothing else."""
    if Path(sys.prefix).resolve() != (ROOT / ".venv").resolve():
        pytest.skip("not running in the project's .venv (scripts/test makes it from the lock)")
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in md.distributions()}
    expected = {name: pin.version for name, pin in DEV.items() if pin.marker is None or pin.marker.evaluate()}
    for name in NOT_LOCKED:
        installed.pop(name, None)
    assert installed == expected


# --- the locked install itself, on a local index that offers a newer release ----------------------------------

PROBE = "lme-lock-probe"


def _wheel(directory: Path, version: str) -> Path:
    """A minimal valid wheel of the probe project: what pip needs to install it, nothing more."""
    stem = f"{PROBE.replace('-', '_')}-{version}"
    path = directory / f"{stem}-py3-none-any.whl"
    files = {
        "lme_lock_probe.py": f"VERSION = {version!r}\n",
        f"{stem}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {PROBE}\nVersion: {version}\n",
        f"{stem}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(text.encode())}")
    record.append(f"{stem}.dist-info/RECORD,,")
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
        archive.writestr(f"{stem}.dist-info/RECORD", "\n".join(record) + "\n")
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A find-links index holding the probe at 1.0 (the locked one) and 2.0 (a newer release), and a venv."""
    root = tmp_path_factory.mktemp("probe")
    index = root / "index"
    index.mkdir()
    _wheel(index, "1.0")
    _wheel(index, "2.0")
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True, timeout=120)
    return index, root / "venv" / "bin" / "python"


def _run(index: Path, *command: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(index),
           "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False)


def _probe_version(python: Path) -> str:
    done = subprocess.run([str(python), "-c", "import lme_lock_probe; print(lme_lock_probe.VERSION)"],
                          capture_output=True, text=True, check=True, timeout=60)
    return done.stdout.strip()


def test_a_newer_release_on_the_index_is_not_installed(probe: tuple[Path, Path], tmp_path: Path) -> None:
    """scripts/pip-install-locked (what scripts/bootstrap runs) takes the locked 1.0 although 2.0 is offered."""
    index, python = probe
    # Control: the index really offers 2.0 to anyone who installs by range.
    ranged = _run(index, str(python), "-m", "pip", "install", "--quiet", f"{PROBE}>=1")
    assert ranged.returncode == 0, ranged.stderr
    assert _probe_version(python) == "2.0"
    lock = tmp_path / "probe.lock"
    lock.write_text(f"{PROBE}==1.0 \\\n    --hash=sha256:{_sha256(index / 'lme_lock_probe-1.0-py3-none-any.whl')}\n")
    locked = _run(index, str(ROOT / "scripts" / "pip-install-locked"), str(python), str(lock))
    assert locked.returncode == 0, locked.stderr
    assert _probe_version(python) == "1.0"


def test_a_file_that_does_not_match_its_locked_hash_is_refused(probe: tuple[Path, Path], tmp_path: Path) -> None:
    index, python = probe
    lock = tmp_path / "probe.lock"
    lock.write_text(f"{PROBE}==2.0 \\\n    --hash=sha256:{_sha256(index / 'lme_lock_probe-1.0-py3-none-any.whl')}\n")
    refused = _run(index, str(ROOT / "scripts" / "pip-install-locked"), str(python), str(lock))
    assert refused.returncode != 0
    assert "HASHES" in refused.stderr.upper() and "DO NOT MATCH" in refused.stderr.upper(), refused.stderr
