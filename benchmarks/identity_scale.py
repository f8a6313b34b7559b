"""Identity matching cost: train, full scoring and incremental scoring time for N synthetic person records.

    .venv/bin/python benchmarks/identity_scale.py [--records 100000 1000000] [--new 1000]

People come from the generator (`generator.people`: its name, birth date, city,
postcode, phone and email distributions; no street address); 10 % of them get a second
record with one mess each: a typo in a name, first/last swapped, a new phone, a typo in the
email's local part, or another email domain. Prints, per size: training time (u sampling +
EM), full scoring time and candidate pairs, incremental scoring time for --new fresh
records against all the others with the trained model, and peak memory. Also the share
of the messed duplicates found at the default match threshold (a sanity figure, not a
quality measurement: see benchmarks/identity_febrl.py for that).
"""

from __future__ import annotations

import argparse
import logging
import resource
import time

import numpy as np
import polars as pl
import pyarrow as pa

from activations.identity.linkage import PERSON_SCHEMA, LinkageSettings, score_pairs, train_model

AS_OF = 1748937600  # 2025-06-03, pinned so runs are comparable
MESSES = ("name typo", "names swapped", "new phone", "email typo", "other email domain")


def _typo(values: pl.Series, rng: np.random.Generator) -> pl.Series:
    """Swap two neighbouring characters at a random position."""
    out = []
    for value, at in zip(values.to_list(), rng.random(len(values)), strict=True):
        if value is None or len(value) < 3:
            out.append(value)
            continue
        i = 1 + int(at * (len(value) - 2))
        out.append(value[:i] + value[i + 1] + value[i] + value[i + 2 :])
    return pl.Series(out, dtype=pl.String)


def synthetic_records(n: int, seed: int = 7) -> tuple[pa.Table, int]:
    """About n records: n/1.1 generated people plus a messed duplicate for 10 % of them."""
    from generator.people import people

    rng = np.random.default_rng(seed)
    base = people(rng, int(n / 1.1), AS_OF)
    originals = base.select(
        record_id=pl.format("p:{}", "person_id"),
        first_name=pl.col("first_name").str.to_lowercase(),
        last_name=pl.col("last_name").str.to_lowercase(),
        birth_date="birth_date",
        city=pl.col("city").str.to_lowercase(),
        postcode="postal_code",
        phone="phone",
        email="email",
    )
    dups = originals.sample(fraction=0.1, seed=seed).with_columns(record_id=pl.format("d:{}", "record_id"))
    mess = rng.integers(0, len(MESSES), dups.height)
    first, last, phone, email = (dups[c] for c in ("first_name", "last_name", "phone", "email"))
    local = email.str.extract(r"^([^@]+)")
    domain = email.str.extract(r"@(.+)$")
    new_phone = pl.Series([f"+39333{x:07d}" for x in rng.integers(0, 10**7, dups.height)])
    pick = [pl.Series(mess == k) for k in range(len(MESSES))]
    dups = dups.with_columns(
        first_name=pl.select(
            pl.when(pick[0]).then(_typo(first, rng)).when(pick[1]).then(last).otherwise(first)
        ).to_series(),
        last_name=pl.select(pl.when(pick[1]).then(first).otherwise(last)).to_series(),
        phone=pl.select(pl.when(pick[2]).then(new_phone).otherwise(phone)).to_series(),
        email=pl.select(
            pl.when(pick[3])
            .then(_typo(local, rng) + "@" + domain)
            .when(pick[4])
            .then(local + "@mail.example")
            .otherwise(email)
        ).to_series(),
    )
    frame = pl.concat([originals, dups]).with_columns(source=pl.lit("synthetic"), address=pl.lit(None, pl.String))
    return pa.Table.from_pandas(frame.to_pandas(), schema=PERSON_SCHEMA, preserve_index=False), dups.height


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--new", type=int, default=1_000, help="records scored incrementally")
    args = parser.parse_args()
    logging.getLogger("splink").setLevel(logging.ERROR)

    for n in args.records:
        records, n_dups = synthetic_records(n)
        print(f"{records.num_rows:,} records ({n_dups:,} messed duplicates: {', '.join(MESSES)})")
        started = time.perf_counter()
        model = train_model(records)
        print(f"  train (u sampling + EM):   {time.perf_counter() - started:7.1f} s")
        settings = LinkageSettings(model=model)

        started = time.perf_counter()
        pairs = score_pairs(records, settings=settings)
        seconds = time.perf_counter() - started
        candidates = int(pairs.schema.metadata[b"candidate_pairs"])
        merged = pairs.filter(pa.array([settings.merges(pair) for pair in pairs.to_pylist()], pa.bool_()))
        found = sum(
            1
            for left, right in zip(merged["record_id_l"].to_pylist(), merged["record_id_r"].to_pylist(), strict=True)
            if right == f"p:{left[4:]}" or left == f"d:{right}" or right == f"d:{left}"
        )
        print(
            f"  full scoring:              {seconds:7.1f} s  {candidates:,} candidate pairs, "
            f"{pairs.num_rows:,} at or above review, {merged.num_rows:,} merged; "
            f"{found / n_dups:.1%} of the messed duplicates merged with their original"
        )

        new_ids = records["record_id"].to_pylist()[-args.new :]
        started = time.perf_counter()
        incremental = score_pairs(records, new_record_ids=new_ids, settings=settings)
        print(
            f"  incremental ({args.new:,} new):    {time.perf_counter() - started:7.1f} s  "
            f"{int(incremental.schema.metadata[b'candidate_pairs']):,} candidate pairs"
        )
        print(f"  peak memory so far:        {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:7.0f} MB")


if __name__ == "__main__":
    main()
