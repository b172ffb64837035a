"""Measure a running chain: llama.cpp's prompt and generation speed, and LiteLLM's own overhead.

    python -m tests.realstack.llm --port 0 --api-key K --cert-dir D --log-dir L &   # writes L/chain.json
    python -m tests.realstack.llm.measure --chain L/chain.json --api-key K

Prints one JSON object. Each timed prompt starts with a fresh nonce so that llama.cpp's prefix cache
does not hide the prompt processing.
"""

from __future__ import annotations

import argparse
import json
import ssl
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ALERT_LINE = ("rule 'Suspicious PowerShell Encoded Command' host WS-{i:03d} user CORP\\\\bob process "
              "powershell.exe -nop -w hidden -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQA parent winword.exe\n")


def prompt(lines: int) -> str:
    alerts = "".join(ALERT_LINE.format(i=i) for i in range(lines))
    return f"[{uuid.uuid4()}] You are a SOC analyst. Assess these alerts in one sentence.\n{alerts}"


def post(client: httpx.Client, url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    r = client.post(url, json=body, headers=headers)
    elapsed = time.perf_counter() - t0
    r.raise_for_status()
    return elapsed, r.json()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chain", type=Path, required=True, help="chain.json written by a run with --log-dir")
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--lines", type=int, default=9, help="alert lines in the timed prompt (9 = ~600 tokens)")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    info = json.loads(args.chain.read_text())
    auth = {"Authorization": f"Bearer {args.api_key}"}
    proxy = f"{info['url']}/v1/chat/completions"
    direct = f"{info['llama_url']}/v1/chat/completions"
    runs: list[dict[str, Any]] = []
    overhead: list[float] = []
    with httpx.Client(verify=ssl.create_default_context(cafile=info["ca"]), timeout=600, trust_env=False) as client:
        for _ in range(args.repeat):
            for where, url in (("proxy", proxy), ("direct", direct)):
                body = {"model": "lfm2.5-1.2b-instruct", "max_tokens": args.max_tokens, "temperature": 0,
                        "messages": [{"role": "user", "content": prompt(args.lines)}]}
                wall, data = post(client, url, body, auth)
                t = data.get("timings", {})
                runs.append({"via": where, "wall_s": round(wall, 3), "prompt_tokens": data["usage"]["prompt_tokens"],
                             "completion_tokens": data["usage"]["completion_tokens"],
                             "prompt_tok_s": round(t.get("prompt_per_second", 0.0), 1),
                             "gen_tok_s": round(t.get("predicted_per_second", 0.0), 1),
                             "server_ms": round(t.get("prompt_ms", 0.0) + t.get("predicted_ms", 0.0), 1)})
        # Overhead: same tiny cached request, alternately through the proxy and straight to llama-server.
        tiny = {"model": "lfm2.5-1.2b-instruct", "max_tokens": 1, "temperature": 0,
                "messages": [{"role": "user", "content": "Say OK."}]}
        for _ in range(10):
            via_proxy, _ = post(client, proxy, tiny, auth)
            straight, _ = post(client, direct, tiny, {})
            overhead.append(via_proxy - straight)
    print(json.dumps({
        "runs": runs,
        "proxy_overhead_ms_median": round(statistics.median(overhead) * 1000, 1),
        "proxy_overhead_ms_min": round(min(overhead) * 1000, 1),
        "startup": {k: v for k, v in info.items() if k.endswith("_s")},
    }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
