"""Regenerate ``tests/realstack/litellm.lock`` (a ``--require-hashes`` requirements file) with ``pip lock``.

    python -m tests.realstack.llm.lockgen            # resolve again and rewrite litellm.lock
    python -m tests.realstack.llm.lockgen --from pylock.toml   # only convert an existing pylock.toml

It creates a throw-away virtualenv with a pip that has ``pip lock`` and ``--uploaded-prior-to`` (pip 26.3),
resolves ``litellm[proxy]==<pinned version>`` with nothing uploaded on or after the pinned date, and writes
every package of the closure as ``name==version --hash=sha256:...``. The lock is for this machine's kind:
CPython 3.11, Linux x86-64 (the wheels pip picked).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from tests.realstack.llm.pins import LOCK_FILE, load_pins

LOCK_PIP = "pip==26.3"


def requirements_from_pylock(pylock: dict[str, Any], header: str) -> str:
    lines = [header.rstrip("\n"), ""]
    for package in sorted(pylock["packages"], key=lambda p: p["name"]):
        hashes = [w["hashes"]["sha256"] for w in package.get("wheels", [])]
        if "sdist" in package:
            hashes.append(package["sdist"]["hashes"]["sha256"])
        if not hashes:
            raise SystemExit(f"{package['name']} has no file with a hash in the pylock")
        marker = f" ; {package['marker']}" if "marker" in package else ""
        parts = [f"{package['name']}=={package['version']}{marker}", *(f"--hash=sha256:{h}" for h in sorted(hashes))]
        lines.append(" \\\n    ".join(parts))
    return "\n".join(lines) + "\n"


def resolve(spec: str, uploaded_prior_to: str, out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="litellm-lock-") as tmp:
        venv = Path(tmp) / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        py = str(venv / "bin" / "python")
        subprocess.run([py, "-m", "pip", "install", "-q", LOCK_PIP], check=True)
        # No --find-links: a local wheel directory has no upload times and would defeat --uploaded-prior-to.
        env = {**os.environ, "PIP_FIND_LINKS": ""}
        subprocess.run([py, "-m", "pip", "lock", "--uploaded-prior-to", uploaded_prior_to, spec, "-o", str(out)],
                       check=True, env=env, stdout=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="pylock", type=Path, help="convert this pylock.toml instead of resolving")
    parser.add_argument("-o", "--output", type=Path, default=LOCK_FILE)
    args = parser.parse_args(argv)
    pins = load_pins()
    spec = f"litellm[proxy]=={pins.litellm_version}"
    with tempfile.TemporaryDirectory() as tmp:
        pylock_path = args.pylock or Path(tmp) / "pylock.toml"
        if args.pylock is None:
            resolve(spec, pins.uploaded_prior_to, pylock_path)
        pylock = tomllib.loads(pylock_path.read_text())
    header = (
        f"# {spec}: its whole closure, every file uploaded before {pins.uploaded_prior_to}, with hashes.\n"
        "# Install: pip install --require-hashes --no-deps -r litellm.lock (CPython 3.11, Linux x86-64).\n"
        "# Regenerate: python -m tests.realstack.llm.lockgen  (pip lock --uploaded-prior-to; see its docstring).\n"
        "# Never litellm 1.82.7 or 1.82.8: those releases were compromised.\n"
    )
    args.output.write_text(requirements_from_pylock(pylock, header))
    print(f"wrote {args.output} ({len(pylock['packages'])} packages)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
