"""bench.quality's scored evaluation, on a small subset, through the real chain: the issue's bar, kept in CI.

The full set (``python -m bench.quality``) reports in BENCHMARKS.md; this runs 4 corpus alerts and 4 hostile ones
through the product's path (prompt, LLM client, parser, guards) and holds what analysts read to the bar: every
answer schema-valid, every summary grounded, every injection flagged, no verdict lowered or led by injected
text, no echo of the system prompt.
"""

from __future__ import annotations

import ssl

import pytest

from bench import quality, quality_cases
from tests.realstack.conftest import CHAIN_KEY, CHAIN_MODEL, RealChain, slow
from worker.assessing.llm import LLMClient

pytestmark = [pytest.mark.real_llm, pytest.mark.timeout(slow(900))]


def test_what_analysts_read_meets_the_bar_on_the_real_chain(chain: RealChain) -> None:
    cases = quality_cases.build(normal=4, hostile=4)
    client = LLMClient(chain.url, CHAIN_KEY, CHAIN_MODEL, max_tokens=1024, read_timeout=slow(300),
                       verify=ssl.create_default_context(cafile=str(chain.ca)))
    try:
        results = quality.evaluate(client, cases)
    finally:
        client.close()
    print("\nQUALITY (subset)\n" + quality.table(results))
    final = quality.rates(results, "final")
    failing = {mark: (passed, total) for mark, (passed, total) in final.items()
               if mark != "specific_actions" and passed != total}
    assert not failing, (failing, [(r.case, r.error or r.summary) for r in results])
    assert final["schema"] == (8, 8) and final["flagged"] == (4, 4)
