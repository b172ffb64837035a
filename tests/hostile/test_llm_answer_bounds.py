"""What the LLM client does with an answer that never ends or never stops growing: a clear, recorded error
instead of a task (and a model slot) held for ever. Workers run tasks in threads, so nothing else would end it."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from worker.assessing.llm import MAX_ANSWER_BYTES, LLMClient, LLMError

MESSAGES = [{"role": "user", "content": "hello"}]
ANSWER = {"model": "m", "choices": [{"message": {"role": "assistant", "content": "{}"}, "finish_reason": "stop"}],
          "usage": {"prompt_tokens": 3, "completion_tokens": 1}}


class _Trickle(BaseHTTPRequestHandler):
    """Answers 200 and then one byte at a time, each well within the client's read timeout, never finishing."""

    stop = threading.Event()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        # Each byte is its own chunk, one every 0.2 s: every read the client makes succeeds.
        while not self.stop.wait(0.2):  # sync-ok: the pace of a misbehaving server, not a test's wait
            try:
                self.wfile.write(b"1\r\n \r\n")
                self.wfile.flush()
            except OSError:
                return

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def trickling_url() -> Iterator[str]:
    _Trickle.stop.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    _Trickle.stop.set()
    server.shutdown()
    server.server_close()


def test_an_answer_that_keeps_trickling_ends_at_the_deadline(trickling_url: str) -> None:
    client = LLMClient(trickling_url, "sk-test", "m", connect_timeout=1.0, read_timeout=2.0)
    with pytest.raises(LLMError) as caught:
        client.complete(MESSAGES)
    assert caught.value.kind == "timeout" and caught.value.retryable
    assert "was still arriving after 3s" in str(caught.value)


def test_an_answer_larger_than_any_assessment_is_refused() -> None:
    huge = json.dumps({**ANSWER, "padding": "x" * (MAX_ANSWER_BYTES + 1)})
    client = LLMClient("https://litellm.invalid", "sk-test", "m",
                       transport=httpx.MockTransport(lambda _request: httpx.Response(200, text=huge)))
    with pytest.raises(LLMError) as caught:
        client.complete(MESSAGES)
    assert caught.value.kind == "protocol"
    assert f"passed {MAX_ANSWER_BYTES} bytes" in str(caught.value)


def test_a_compressed_answer_is_read_once_decoded() -> None:
    def gzipped(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=gzip.compress(json.dumps(ANSWER).encode()),
                              headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})

    client = LLMClient("https://litellm.invalid", "sk-test", "m", transport=httpx.MockTransport(gzipped))
    completion = client.complete(MESSAGES)
    assert (completion.content, completion.prompt_tokens, completion.finish_reason) == ("{}", 3, "stop")
