"""LLM simulator: LME's LiteLLM proxy in front of llama.cpp's ``llama-server`` on a 2-core CPU.

Run ``python -m tests.fakes.llm --host 127.0.0.1 --port 0``. Modules:

- ``server``: HTTP routes, auth, LiteLLM error shapes and the ``/_sim`` controls
- ``chat``: chat request parsing and response/chunk shapes
- ``latency``: the CPU/slot scheduler (pure logic); ``engine`` runs it on the real clock
- ``tokens``: token counting; ``answers``: deterministic answers (``expected_answer``)
- ``faults``: runtime-switchable faults; ``records``: the request log; ``errors``: error bodies
"""

from tests.fakes.llm.answers import Answer, expected_answer
from tests.fakes.llm.tokens import count_prompt_tokens, count_tokens

__all__ = ["Answer", "count_prompt_tokens", "count_tokens", "expected_answer"]
