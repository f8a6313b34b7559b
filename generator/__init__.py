"""Synthetic landing data: a fictional Italian retailer's messy exports, written around `as_of`.

`generate(customers, seed, out, as_of)` writes every source of the landing
contract (activations.ingest.contract) plus the ground truth under `_truth/`.
"""

from generator.run import GenerateSummary, generate

__all__ = ["GenerateSummary", "generate"]
