"""Benchmarks for lme-enrich: ``python -m bench.storm``, ``bench.overhead``, ``bench.prompt`` (see BENCHMARKS.md)."""
