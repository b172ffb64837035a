"""Document → shard routing exactly as ES computes it (Murmur3 of the UTF-16LE routing string)."""

from __future__ import annotations

_M = 0xFFFFFFFF


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _M


def murmur3_32(data: bytes, seed: int = 0) -> int:
    """Lucene's StringHelper.murmurhash3_x86_32, as a signed 32-bit int."""
    c1, c2 = 0xCC9E2D51, 0x1B873593
    h = seed & _M
    n = len(data)
    rounded = n & ~3
    for i in range(0, rounded, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = _rotl((k * c1) & _M, 15)
        h ^= (k * c2) & _M
        h = (_rotl(h, 13) * 5 + 0xE6546B64) & _M
    k = 0
    tail = n & 3
    if tail == 3:
        k ^= data[rounded + 2] << 16
    if tail >= 2:
        k ^= data[rounded + 1] << 8
    if tail >= 1:
        k ^= data[rounded]
        k = _rotl((k * c1) & _M, 15)
        h ^= (k * c2) & _M
    h ^= n
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _M
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _M
    h ^= h >> 16
    return h - (1 << 32) if h & 0x80000000 else h


def routing_hash(routing: str) -> int:
    return murmur3_32("".join(routing).encode("utf-16-le"))


def default_routing_shards(shards: int) -> int:
    """ES 7+'s default number_of_routing_shards: room for splitting up to 1024 shards."""
    if shards <= 1:
        return shards * 1024 if shards == 1 else 1
    log2_shards = (shards - 1).bit_length()
    splits = max(1, 10 - log2_shards)
    return shards << splits


def shard_id(routing: str, shards: int, routing_shards: int | None = None) -> int:
    if shards <= 1:
        return 0
    total = routing_shards or default_routing_shards(shards)
    factor = total // shards
    return (routing_hash(routing) % total) // factor
