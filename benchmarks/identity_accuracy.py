"""Identity accuracy on the generator's truth: generate (seeded) -> `attiva ingest` -> `attiva build` -> score.

    .venv/bin/python benchmarks/identity_accuracy.py [--customers 20000] [--seed 42] [--dir DIR]

Prints pairwise precision, recall and F1 of the merges against `_truth/person_map.parquet`,
then why people stay split (the kinds of identity mess their left-apart records carry, from
`_truth/record_mess.parquet`) and why different people were merged (the look-alike kind from
`_truth/lookalikes.parquet`, else "other"), and how far recall can go: with every pair of one
person's records joined that shares an email, phone, birth date or near email, then also every
pair that shares only names and a city (and how many such pairs are namesakes). The build is the CLI's own, so whatever
`attiva build` runs (rules, and probabilistic matching once it is a step of the build) is
what gets scored. Then builds again with no new data and counts the identifiers that changed
customer (should be none). Goal (issue 16): precision >= 0.998, recall >= 0.98.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from activations.cli import main as attiva
from generator import generate
from generator.evaluate import explain_identity, recall_within_reach, score_identity

AS_OF = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # pinned, so runs are comparable


def step(label: str, argv: list[str]) -> None:
    """Run one `attiva` command quietly; say how long it took and stop on failure with its output."""
    started, out = time.perf_counter(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = attiva(argv)
    print(f"{label:<10} {time.perf_counter() - started:7.1f} s")
    if code:
        raise SystemExit(f"attiva {' '.join(argv)} exited {code}:\n{out.getvalue()[-4000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a temporary one)")
    args = parser.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="attiva-identity-"))
    landing, warehouse = root / "landing", root / "warehouse.duckdb"
    if warehouse.exists():
        raise SystemExit(f"{root} already holds a warehouse: give an empty --dir")
    print(f"identity accuracy: {args.customers:,} customers, seed {args.seed}, as of {AS_OF.isoformat()}, in {root}")

    started = time.perf_counter()
    generate(customers=args.customers, seed=args.seed, out=landing, as_of=AS_OF)
    print(f"{'generate':<10} {time.perf_counter() - started:7.1f} s")
    step("ingest", ["ingest", "--landing", str(landing), "--warehouse", str(warehouse)])
    step("build", ["build", "--warehouse", str(warehouse), "--as-of", AS_OF.isoformat()])

    score = score_identity(warehouse, landing / "_truth")
    f1 = 2 * score.precision * score.recall / ((score.precision + score.recall) or 1)
    print(score)
    print(f"precision {score.precision:.4f}  recall {score.recall:.4f}  F1 {f1:.4f}  "
          f"(goal: precision >= 0.998, recall >= 0.98)")
    print(explain_identity(warehouse, landing / "_truth"))
    print(recall_within_reach(warehouse, landing / "_truth"))

    # The same data built again: nothing new, so no identifier should change customer.
    before = customers_by_node(warehouse)
    step("rebuild", ["build", "--warehouse", str(warehouse), "--as-of", AS_OF.isoformat()])
    after = customers_by_node(warehouse)
    moved = sum(1 for node, customer in before.items() if after.get(node) != customer)
    print(f"a second build with no new data: {moved:,} of {len(before):,} identifiers changed customer "
          f"({len(set(before.values())):,} customers, then {len(set(after.values())):,})")


def customers_by_node(warehouse: Path) -> dict[str, str]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return dict(con.execute("select node, customer_id from intermediate.int_identity__customer_nodes").fetchall())


if __name__ == "__main__":
    main()
