"""``scripts/demo``: lme-enrich on this machine, no Docker: Redis, Elasticsearch 8.18, a real LLM, sample alerts.

Starts, each on a free loopback port:

- Redis: its own ``redis-server`` (``scripts/ensure-redis`` installs it with apt when missing);
- Elasticsearch: the real 8.18.8 node of ``tests.realstack.elasticsearch`` (built from Maven Central on the first
  run: Java 17+ and Maven), or, only when ``java`` or ``mvn`` is missing, our Elasticsearch test server (it says so);
- the real LLM chain of ``tests.realstack.llm``: llama-server built from llama.cpp's sources with a small pinned
  model (SmolLM2-135M-Instruct) behind LiteLLM 1.82.6 over HTTPS, as LME runs it (the first run prepares it:
  ~5 min, PyPI only);

then writes Kibana's alert index layout and the sample alerts (``deploy/demo/alerts-sample.ndjson``, fresh
timestamps), runs ``lme-enrich run`` against all of it, shows progress while the alerts are assessed, prints a
table of the results, and keeps everything running for ``lme-enrich status`` / ``requeue`` (it prints the
variables to export) until Ctrl-C. ``--once`` stops after the table. Everything it started is stopped on exit.
The model is tiny: its summaries show the pipeline working, not a good assessment (and it rambles, so the demo
gives it room for the longest answer the schema allows: ``LME_ENRICH_LLM_MAX_TOKENS=1536``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "deploy" / "demo" / "alerts-sample.ndjson"
LLM_KEY = "sk-lme-enrich-demo"
MODEL_ALIAS = "lfm2.5-1.2b-instruct"


def say(message: str) -> None:
    print(f"demo: {message}", flush=True)


class DemoError(RuntimeError):
    pass


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def redis_server(workdir: Path, url: str | None) -> Iterator[str]:
    """``url`` as given, or a redis-server of our own on a free port (stopped at exit)."""
    if url:
        yield url
        return
    own = f"redis://127.0.0.1:{free_port()}/0"
    env = {**os.environ, "LME_ENRICH_REDIS_URL": own, "TMPDIR": str(workdir)}
    subprocess.run([str(ROOT / "scripts" / "ensure-redis")], check=True, env=env)
    try:
        yield own
    finally:
        import redis

        with contextlib.suppress(redis.RedisError):
            redis.Redis.from_url(own).shutdown(nosave=True)


def elasticsearch_choice(requested: str) -> str:
    if requested != "auto":
        return requested
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if missing:
        say(f"{' and '.join(missing)} not found: using lme-enrich's Elasticsearch TEST SERVER instead of a real "
            "Elasticsearch 8.18 node (install Java 17+ and Maven for the real one)")
        return "server"
    return "real"


def start_elasticsearch(mode: str, workdir: Path) -> tuple[Any, str]:
    from bench.harness import start_server

    if mode == "server":
        return start_server("elasticsearch", "tests.fakes.elasticsearch", [], workdir)
    say("starting a real Elasticsearch 8.18.8 node (the first run builds it from Maven Central: a few minutes)")
    from tests.realstack import elasticsearch as es_node

    try:
        es_node.verify_pins(es_node.ensure_dist())
    except es_node.NodeError as exc:
        raise DemoError(f"the Elasticsearch node could not be built: {exc}") from exc
    return start_server("elasticsearch", "tests.realstack.elasticsearch", ["--start-timeout", "240"], workdir,
                        timeout=260)


def start_llm(workdir: Path, niceness: int | None) -> tuple[Any, str, Path]:
    from bench import realllm

    check = subprocess.run([sys.executable, "-m", "tests.realstack.llm", "--check-prepared"], cwd=ROOT,
                           capture_output=True, check=False)
    if check.returncode != 0:
        say("preparing the LLM chain once (builds llama-server from source, downloads the model and LiteLLM from "
            "PyPI: ~5-10 min; progress in " + str(workdir / "llm-prepare.log") + ")")
        with (workdir / "llm-prepare.log").open("wb") as log:
            prep = subprocess.run([sys.executable, "-m", "tests.realstack.llm", "--prepare-only"], cwd=ROOT,
                                  stdout=log, stderr=subprocess.STDOUT, check=False)
        if prep.returncode != 0:
            raise DemoError(f"preparing the LLM chain failed; see {workdir / 'llm-prepare.log'}")
    say("starting the LLM chain: llama-server + LiteLLM 1.82.6 over HTTPS")
    chain = realllm.start(workdir, LLM_KEY, parallel=1, niceness=niceness)
    return chain.child, chain.url, chain.ca


def load_sample(count: int | None) -> list[dict[str, Any]]:
    docs = [json.loads(line) for line in SAMPLE.read_text().splitlines() if line.strip()]
    return docs[:count] if count else docs


def ai_rows(es: Any, pattern: str) -> list[dict[str, Any]]:
    from worker.alerts.alert import first

    response = es.search(index=pattern, size=1000, sort=[{"kibana.alert.risk_score": "desc"}],
                         source_includes=["kibana.alert.uuid", "kibana.alert.rule.name", "kibana.alert.severity",
                                          "lme.ai"])
    rows = []
    for hit in response["hits"]["hits"]:
        src = hit["_source"]
        ai = first(src, "lme.ai") or {}
        rows.append({"id": hit["_id"], "rule": first(src, "kibana.alert.rule.name"),
                     "severity": first(src, "kibana.alert.severity"), **ai})
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    head = ("rule", "severity", "AI risk", "cached", "status", "summary")
    lines = []
    for r in rows:
        summary = " ".join(str(r.get("summary") or r.get("error") or "").split())
        lines.append((str(r.get("rule") or "")[:38], str(r.get("severity") or ""), str(r.get("risk_level") or "-"),
                      "yes" if r.get("cached") else "no", str(r.get("status") or "-"),
                      summary[:70] + ("…" if len(summary) > 70 else "")))
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*head), fmt.format(*("-" * w for w in widths)), *(fmt.format(*x) for x in lines)])


def progress(es: Any, pattern: str, total: int, pipeline: subprocess.Popen[bytes], timeout: float) -> None:
    start = time.monotonic()
    last = ""
    while True:
        if pipeline.poll() is not None:
            raise DemoError(f"lme-enrich run exited with {pipeline.returncode}")
        with contextlib.suppress(Exception):
            es.indices.refresh(index=pattern)
        counts: dict[str, int] = {}
        for row in ai_rows(es, pattern):
            counts[str(row.get("status") or "new")] = counts.get(str(row.get("status") or "new"), 0) + 1
        finished = counts.get("done", 0) + counts.get("failed", 0)
        width = 30
        bar = "#" * (width * finished // max(total, 1))
        line = (f"[{bar:<{width}}] {finished}/{total} assessed  "
                + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + f"  ({time.monotonic() - start:.0f} s)")
        if line != last:
            print("demo: " + line, flush=True)
            last = line
        if finished >= total:
            return
        if time.monotonic() - start > timeout:
            raise DemoError(f"not every alert was assessed within {timeout:.0f} s")
        time.sleep(5)  # sync-ok: how often the progress line is refreshed for the person watching


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--once", action="store_true", help="stop everything after the results table")
    p.add_argument("--alerts", type=int, help="seed only the first N sample alerts (default all 20)")
    p.add_argument("--elasticsearch", choices=("auto", "real", "server"), default="auto",
                   help="auto (default): the real node when java and mvn exist, else the test server")
    p.add_argument("--redis-url", help="use this Redis instead of starting one (its DB is flushed)")
    p.add_argument("--workdir", type=Path, help="keep logs and state here (default: a temporary directory)")
    p.add_argument("--llm-nice", type=int, help="run the model at this niceness (root; e.g. -10 on a machine busy "
                   "with other work, where llama.cpp slows down badly)")
    p.add_argument("--retries", type=int, default=3,
                   help="requeue failed assessments up to this many times (default 3; the tiny model sometimes "
                        "breaks the schema)")
    p.add_argument("--timeout", type=float, default=3600, help="seconds to wait for every alert (default 3600)")
    args = p.parse_args(argv)

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    sys.path.insert(0, str(ROOT))
    from elasticsearch import Elasticsearch

    from bench.harness import BenchError, Child
    from tests import kibana

    docs = load_sample(args.alerts)
    with ExitStack() as cleanup:
        if args.workdir:
            workdir = args.workdir.resolve()
            workdir.mkdir(parents=True, exist_ok=True)
        else:
            workdir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="lme-enrich-demo-")))
        children: list[Child] = []

        def stop_all() -> None:
            for child in reversed(children):
                child.stop()
            say("stopped everything it started")

        try:
            redis_url = cleanup.enter_context(redis_server(workdir, args.redis_url))
            say(f"Redis at {redis_url}")
            cleanup.callback(stop_all)  # before Redis stops
            es_child, es_url = start_elasticsearch(elasticsearch_choice(args.elasticsearch), workdir)
            children.append(es_child)
            say(f"Elasticsearch at {es_url}")
            llm_child, llm_url, ca = start_llm(workdir, args.llm_nice)
            children.append(llm_child)
            say(f"LiteLLM at {llm_url}")
            es = Elasticsearch(es_url, request_timeout=60)
            cleanup.callback(es.close)
            space = kibana.Space("default")
            kibana.install(es, space)
            kibana.seed(es, space, docs)
            say(f"wrote {len(docs)} sample alerts in Kibana's layout ({space.alias})")
            env = {
                "LME_ENRICH_ES_URL": es_url, "LME_ENRICH_ES_USERNAME": "elastic",
                "LME_ENRICH_ES_PASSWORD": "demo-unused", "LME_ENRICH_LLM_URL": llm_url,
                "LME_ENRICH_LLM_API_KEY": LLM_KEY, "LME_ENRICH_LLM_CA_CERT": str(ca),
                "LME_ENRICH_LLM_MODEL": MODEL_ALIAS, "LME_ENRICH_REDIS_URL": redis_url,
                "LME_ENRICH_ALERT_INDEX": space.pattern, "LME_ENRICH_POLL_INTERVAL": "2s",
                "LME_ENRICH_CONCURRENCY": "1", "LME_ENRICH_STATE_DIR": str(workdir / "state"),
                # The tiny model rambles up to the schema's length limits (bench.calibrate: one answer in six
                # passes 400 tokens); room for the longest answer the schema allows, so none is cut off.
                "LME_ENRICH_LLM_MAX_TOKENS": "1536",
            }
            (workdir / "demo.env").write_text("".join(f"export {k}={v}\n" for k, v in env.items()))
            log = workdir / "lme-enrich.log"
            say(f"running lme-enrich run (logs: {log})")
            handle = log.open("wb")
            pipeline = subprocess.Popen([sys.executable, "-m", "worker.admin.cli", "run"], cwd=ROOT, stdout=handle,
                                        stderr=subprocess.STDOUT, env={**os.environ, **env},
                                        start_new_session=True)
            handle.close()
            children.append(Child("lme-enrich", pipeline, log))
            progress(es, space.pattern, len(docs), pipeline, args.timeout)
            for _ in range(args.retries):
                failed = [r for r in ai_rows(es, space.pattern) if r.get("status") == "failed"]
                if not failed:
                    break
                reasons = sorted({str(r.get("error_kind") or r.get("error")) for r in failed})
                say(f"{len(failed)} assessment(s) failed ({', '.join(reasons)}: the tiny model's answer broke the "
                    "schema); requeueing them as an analyst would: lme-enrich requeue --status failed")
                subprocess.run([sys.executable, "-m", "worker.admin.cli", "requeue", "--status", "failed"], cwd=ROOT,
                               env={**os.environ, **env}, check=True, timeout=120)
                progress(es, space.pattern, len(docs), pipeline, args.timeout)
            es.indices.refresh(index=space.pattern)
            print()
            print(table(ai_rows(es, space.pattern)))
            print()
            if args.once:
                return 0
            say("everything keeps running. In another shell:")
            print(f"  source {workdir / 'demo.env'}")
            print("  .venv/bin/lme-enrich status")
            print("  .venv/bin/lme-enrich requeue --status done    # assess them again")
            say("Ctrl-C stops it all")
            pipeline.wait()  # until Ctrl-C (KeyboardInterrupt below) or lme-enrich run ends by itself
            raise DemoError(f"lme-enrich run exited with {pipeline.returncode}; see {log}")
        except KeyboardInterrupt:
            say("interrupted")
            return 130
        except (DemoError, BenchError, subprocess.CalledProcessError) as exc:
            say(f"error: {exc}")
            if args.workdir is None:
                say("(run again with --workdir DIR to keep the logs)")
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
