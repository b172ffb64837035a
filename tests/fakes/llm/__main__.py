"""CLI: ``python -m tests.fakes.llm --host 127.0.0.1 --port 4000 [options]``.

Prints ``listening on http(s)://HOST:PORT`` once it accepts connections; SIGTERM/SIGINT stop it
cleanly (exit code 0). Logs go to stderr.
"""

from __future__ import annotations

import argparse
import logging
import ssl
import sys

from tests.fakes.llm.faults import KINDS, FaultSpecError
from tests.fakes.llm.server import SimConfig, SimHTTPServer, Simulator
from tests.fakes.serving import serve_until_signalled


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    d = SimConfig()
    p = argparse.ArgumentParser(prog="python -m tests.fakes.llm", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=4000)
    p.add_argument("--api-key", default=d.api_key, help="LiteLLM master key")
    p.add_argument("--model", action="append", dest="models", metavar="NAME",
                   help=f"served model group name (repeatable; default {d.models[0]})")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--pp-rate", type=float, default=d.pp_rate,
                   help="prompt processing, tokens/s (default: calibrated on the real chain, BENCHMARKS.md)")
    p.add_argument("--tg-rate", type=float, default=d.tg_rate,
                   help="generation, tokens/s (default: calibrated on the real chain, BENCHMARKS.md)")
    p.add_argument("--slots", type=int, default=d.slots, help="llama-server parallel slots (auto = 4 at LME)")
    p.add_argument("--ctx", type=int, default=d.ctx,
                   help="total context (llama.cpp -c), split evenly across the slots")
    p.add_argument("--n-batch", type=int, default=d.n_batch,
                   help="llama.cpp -b: a cancel takes effect at the end of the prompt batch being decoded")
    p.add_argument("--overhead-ms", type=float, default=d.overhead * 1000, help="LiteLLM's own time per request")
    p.add_argument("--instant", action="store_true", help="no simulated compute or proxy time at all")
    p.add_argument("--seed", type=int, default=0, help="varies every answer and the fault RNG")
    p.add_argument("--fault-rate", type=float, help="with --fault-kind: probability per chat request")
    p.add_argument("--fault-kind", choices=sorted(KINDS))
    p.add_argument("--log-limit", type=int, default=d.log_limit, help="request records kept (newest)")
    p.add_argument("--access-log", action="store_true", help="log every request on stderr")
    args = p.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        p.error("--tls-cert and --tls-key go together")
    if args.slots < 1 or args.pp_rate <= 0 or args.tg_rate <= 0 or args.ctx < args.slots or args.n_batch < 1:
        p.error("--slots, --pp-rate, --tg-rate and --ctx must be positive (ctx >= slots)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="llm-sim %(levelname)s %(message)s")
    config = SimConfig(
        api_key=args.api_key, models=args.models or SimConfig().models, pp_rate=args.pp_rate,
        tg_rate=args.tg_rate, slots=args.slots, ctx=args.ctx, n_batch=args.n_batch, overhead=args.overhead_ms / 1000,
        instant=args.instant, seed=args.seed, access_log=args.access_log, log_limit=args.log_limit,
    )
    sim = Simulator(config)
    if args.fault_kind:
        try:
            spec: dict[str, object] = {"kind": args.fault_kind, "seed": args.seed}
            if args.fault_rate is not None:
                spec["rate"] = args.fault_rate
            sim.faults.set(spec)
        except FaultSpecError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    tls = None
    if args.tls_cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
    server = SimHTTPServer((args.host, args.port), sim, tls)
    host, port = str(server.server_address[0]), int(server.server_address[1])
    scheme = "https" if tls else "http"

    def ready() -> None:
        logging.info("slots=%d ctx/slot=%d pp=%.1f tok/s tg=%.1f tok/s instant=%s models=%s",
                     config.slots, config.n_ctx_slot, config.pp_rate, config.tg_rate, config.instant,
                     config.models)

    serve_until_signalled(server, f"{scheme}://{host}:{port}", name="llm-sim-http", on_ready=ready,
                          before_shutdown=sim.stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
