"""``python -m tests.realstack.llm``: prepare (build, download, install) and run the real LLM chain.

    python -m tests.realstack.llm --prepare-only                 # at install time: needs PyPI, 5-10 min fresh
    python -m tests.realstack.llm --port 0 --api-key KEY --cert-dir DIR   # at test time: loopback only

A run prints ``listening on https://HOST:PORT`` (the LiteLLM proxy, certificate signed by DIR/ca.crt) once a
chat completion through the proxy has succeeded, and stops both servers on SIGTERM or when its parent dies.
A run builds or downloads what is missing first (minutes, needs PyPI); with ``--no-prepare`` it refuses to
and exits 2 instead, which is what tests use: they never touch a registry.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tests.realstack.llm import build, litellm_env, model
from tests.realstack.llm.chain import ChainOptions, serve
from tests.realstack.llm.pins import DEFAULT_MODEL, Pins, PrepareError, load_pins, log


def prepare(pins: Pins, model_name: str) -> tuple[Path, Path, Path]:
    t0 = time.monotonic()
    binary = build.ensure_llama_server(pins.llama)
    t1 = time.monotonic()
    gguf = model.ensure_model(pins.model(model_name))
    t2 = time.monotonic()
    litellm = litellm_env.ensure_litellm(pins.litellm_version)
    t3 = time.monotonic()
    log(f"prepared: llama-server {t1 - t0:.1f} s, model {t2 - t1:.1f} s, litellm venv {t3 - t2:.1f} s")
    log(f"  llama-server: {binary}\n  model: {gguf}\n  litellm: {litellm}")
    return binary, gguf, litellm


def prepared(pins: Pins, model_name: str) -> tuple[Path, Path, Path]:
    """The cached pieces, or PrepareError naming what is missing (a test run must not download)."""
    binary = build.cached_binary(pins.llama)
    gguf = model.cached_model(pins.model(model_name))
    missing = [name for name, ok in (("llama-server", binary), ("model " + model_name, gguf),
                                     ("litellm venv", litellm_env.is_installed(pins.litellm_version))) if not ok]
    if missing or binary is None or gguf is None:
        raise PrepareError(f"not prepared: {', '.join(missing)}; run: python -m tests.realstack.llm --prepare-only "
                           f"--model {model_name}")
    return binary, gguf, litellm_env.litellm_bin(pins.litellm_version)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.realstack.llm", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prepare-only", action="store_true", help="build and download everything, then exit")
    parser.add_argument("--no-prepare", action="store_true",
                        help="use only what is cached: exit 2 rather than build or download")
    parser.add_argument("--check-prepared", action="store_true", help="exit 0 if everything is cached, else 2")
    parser.add_argument("--host", default="127.0.0.1", help="the proxy's listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="the proxy's HTTPS port; 0 picks a free one")
    parser.add_argument("--api-key", help="LiteLLM master key (the only key: no database, as in LME)")
    parser.add_argument("--cert-dir", type=Path,
                        help="holds ca.crt (+ ca.key, or litellm.crt/.key); an empty or new dir gets a new CA")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"pinned model name (default {DEFAULT_MODEL})")
    parser.add_argument("--threads", type=int, default=2, help="llama-server --threads (default 2)")
    parser.add_argument("--parallel", type=int, default=2, help="llama-server slots (default 2)")
    parser.add_argument("--ctx-per-slot", type=int, default=4096, help="context tokens per slot (default 4096)")
    parser.add_argument("--llama-port", type=int, default=0, help="llama-server's HTTP port; 0 picks a free one")
    parser.add_argument("--log-dir", type=Path, help="keep the servers' logs and config here (default: a temp dir)")
    parser.add_argument("--verbose", action="store_true", help="servers' logs to stderr instead of files")
    parser.add_argument("--start-timeout", type=float, default=240.0)
    args = parser.parse_args(argv)

    pins = load_pins()
    try:
        if args.prepare_only:
            prepare(pins, args.model)
            return 0
        if args.check_prepared:
            prepared(pins, args.model)
            return 0
        binary, gguf, litellm = prepared(pins, args.model) if args.no_prepare else prepare(pins, args.model)
    except PrepareError as exc:
        log(str(exc))
        return 2
    if not args.api_key or args.cert_dir is None:
        parser.error("--api-key and --cert-dir are required to run the chain")
    opts = ChainOptions(
        host=args.host, port=args.port, api_key=args.api_key, cert_dir=args.cert_dir.resolve(), binary=binary,
        gguf=gguf, litellm=litellm, threads=args.threads, parallel=args.parallel, ctx_per_slot=args.ctx_per_slot,
        llama_port=args.llama_port, log_dir=args.log_dir.resolve() if args.log_dir else None, verbose=args.verbose,
        start_timeout=args.start_timeout,
    )
    return serve(opts)


if __name__ == "__main__":
    sys.exit(main())
