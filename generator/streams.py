"""Seeded randomness: one independent stream per topic, plus vectorised draws the generators share.

A stream per topic means changing how orders are drawn never shifts the people
or the events: the same (seed, topic) always yields the same numbers.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import polars as pl
import pyarrow as pa


def stream(seed: int, topic: str) -> np.random.Generator:
    """A PCG64 generator for `topic`, derived from the run's seed."""
    entropy = [seed % 2**64, zlib.crc32(topic.encode())]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))


def pick(rng: np.random.Generator, n: int, weights: Sequence[float] | np.ndarray) -> np.ndarray:
    """`n` indices into `weights`, drawn with probability proportional to the weights."""
    w = np.asarray(weights, dtype=np.float64)
    cdf = np.cumsum(w)
    cdf /= cdf[-1]
    return np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(w) - 1)


def zipf_weights(n: int, exponent: float = 1.0, offset: float = 0.0) -> np.ndarray:
    """Weights 1/(rank + offset)^exponent for ranks 1..n: a few common items, a long tail of rare ones."""
    return 1.0 / (np.arange(1, n + 1, dtype=np.float64) + offset) ** exponent


HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
# Each byte value as its two hex characters, packed in a uint16 so one lookup writes both.
HEX_PAIRS = np.frombuffer("".join(f"{b:02x}" for b in range(256)).encode(), dtype=np.uint16)


def _hex_chars(rng: np.random.Generator, n: int, n_bytes: int) -> np.ndarray:
    """(n, 2 * n_bytes) ASCII hex characters of random bytes."""
    raw = np.frombuffer(rng.bytes(n * n_bytes), dtype=np.uint8).reshape(n, n_bytes)
    return HEX_PAIRS[raw].view(np.uint8).reshape(n, 2 * n_bytes)


def _as_strings(chars: np.ndarray) -> pl.Series:
    """Rows of ASCII bytes as a string series, built straight from the buffer (no Python objects)."""
    n, width = chars.shape
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int64)
    data = np.ascontiguousarray(chars).tobytes()
    array = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))
    return pl.Series(pl.from_arrow(array))


BASE64URL = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", dtype=np.uint8)


def push_tokens(rng: np.random.Generator, n: int) -> pl.Series:
    """`n` random FCM registration tokens, shaped as apps get them: 22 URL-safe base64 characters (the
    installation), `:APA91b`, then 134 more."""
    head = BASE64URL[rng.integers(0, 64, (n, 22))]
    tail = BASE64URL[rng.integers(0, 64, (n, 134))]
    infix = np.broadcast_to(np.frombuffer(b":APA91b", dtype=np.uint8), (n, 7))
    return _as_strings(np.concatenate([head, infix, tail], axis=1))


def hex_ids(rng: np.random.Generator, n: int, n_bytes: int = 16) -> pl.Series:
    """`n` random lower-case hex strings of 2 * n_bytes characters."""
    return _as_strings(_hex_chars(rng, n, n_bytes))


def uuids(rng: np.random.Generator, n: int) -> pl.Series:
    """`n` random version-4 UUID strings, as browsers and apps mint for anonymous ids."""
    hexed = _hex_chars(rng, n, 16)
    hexed[:, 12] = ord("4")  # version 4
    hexed[:, 16] = HEX[8 | (np.searchsorted(HEX, hexed[:, 16]) & 3)]  # RFC 4122 variant: 8, 9, a or b
    chars = np.full((n, 36), ord("-"), dtype=np.uint8)
    for start, (lo, hi) in zip((0, 9, 14, 19, 24), ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32)), strict=True):
        chars[:, start : start + hi - lo] = hexed[:, lo:hi]
    return _as_strings(chars)


def increasing_ids(rng: np.random.Generator, n: int, start: int, max_gap: int) -> np.ndarray:
    """`n` strictly increasing integer ids from `start` with random gaps, like a CRM or shop hands out."""
    return start + np.cumsum(rng.integers(1, max_gap + 1, n, dtype=np.int64))


def unique_by_suffix(rng: np.random.Generator, stems: pl.Series, tails: pl.Series, rounds: int = 32) -> pl.Series:
    """`stems + tails` made unique by appending random digits to later duplicates' stems (mario.rossi7@...)."""
    stems, tails = stems.clone(), tails
    full = stems + tails
    for _ in range(rounds):
        later = np.flatnonzero(((~full.is_first_distinct()) & full.is_not_null()).to_numpy())
        if not len(later):
            break
        grown = stems.gather(later) + pl.Series(rng.integers(0, 10, len(later))).cast(pl.String)
        stems.scatter(later, grown)
        full.scatter(later, grown + tails.gather(later))
    return full
