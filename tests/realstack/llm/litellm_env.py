"""The LiteLLM proxy: its own virtualenv installed from ``litellm.lock``, and a config shaped like LME's."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.realstack.llm.pins import LOCK_FILE, PrepareError, cache_root, log, sha256_of

# LME's config/litellm_config.yaml routes this alias to its llama-server; we keep the name so that the
# worker's configuration is the one it will have in production.
LME_MODEL_ALIAS = "lfm2.5-1.2b-instruct"

# LiteLLM fetches these from the internet at start unless told to use its bundled copies.
OFFLINE_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
    "LITELLM_LOCAL_BLOG_POSTS": "True",
    "LITELLM_LOCAL_POLICY_TEMPLATES": "True",
    "LITELLM_TELEMETRY": "False",
    "DISABLE_ADMIN_UI": "True",
    "NO_DOCS": "True",
}


def venv_dir(version: str) -> Path:
    return cache_root() / f"litellm-{version}" / "venv"


def litellm_bin(version: str) -> Path:
    return venv_dir(version) / "bin" / "litellm"


def _stamp(version: str) -> Path:
    return venv_dir(version) / ".installed-from-lock-sha256"


def is_installed(version: str) -> bool:
    stamp = _stamp(version)
    return stamp.exists() and stamp.read_text().strip() == sha256_of(LOCK_FILE) and litellm_bin(version).exists()


def ensure_litellm(version: str) -> Path:
    """Return the venv's ``litellm`` script, creating the venv from the hash-pinned lock if needed."""
    if is_installed(version):
        return litellm_bin(version)
    venv = venv_dir(version)
    if venv.exists():
        log(f"{venv} was made from another lock (or not finished): recreating it")
        shutil.rmtree(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    base_python = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base_python, "-m", "venv", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    cmd = [py, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--require-hashes", "--no-deps",
           "--only-binary", ":all:", "-r", str(LOCK_FILE)]
    log("$ " + " ".join(cmd))
    subprocess.run(cmd, check=True, stdout=sys.stderr)
    got = subprocess.run([py, "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
                         capture_output=True, text=True, check=True).stdout.strip()
    if got != version:
        raise PrepareError(f"{venv} has litellm {got}, not the pinned {version}")
    _stamp(version).write_text(sha256_of(LOCK_FILE) + "\n")
    return litellm_bin(version)


def proxy_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENAI_", "LITELLM_", "DATABASE_", "AZURE_", "ANTHROPIC_", "PROXY_"))}
    # Loopback only: a proxy from the environment would route our 127.0.0.1 upstream elsewhere.
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        env.pop(var, None)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return {**env, **OFFLINE_ENV, **(extra or {})}


def config_yaml(*, llama_url: str, upstream_model: str, master_key: str, alias: str = LME_MODEL_ALIAS) -> str:
    """LME's ``litellm_config.yaml`` shape: one ``openai/`` model, ``drop_params``, a master key, no database.

    JSON is YAML, so the values are quoted safely whatever they hold.
    """
    q = json.dumps
    return "\n".join([
        "model_list:",
        f"  - model_name: {q(alias)}",
        "    litellm_params:",
        f"      model: {q('openai/' + upstream_model)}",
        f"      api_base: {q(llama_url + '/v1')}",
        "      api_key: dummy",
        "general_settings:",
        f"  master_key: {q(master_key)}",
        "litellm_settings:",
        "  drop_params: true",
        "  success_callback: []",
        "  failure_callback: []",
        "",
    ])
