"""Synthetic landing data: a fictional Italian retailer's messy exports, written around `as_of`.

`generate(customers, seed, out, as_of)` writes every source of the landing
contract (activations.ingest.contract) plus the ground truth under `_truth/`.

The names below load generator/run.py (polars and the whole generator, about 0.6 s) on first
use: `attiva` loads this package's command (command.py) for its parser on every command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from generator.run import GenerateSummary, generate

__all__ = ["GenerateSummary", "generate"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from generator import run

    return getattr(run, name)
