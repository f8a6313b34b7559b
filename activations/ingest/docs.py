"""The landing contract as Markdown, for docs/landing.md (`attiva contract`)."""

from __future__ import annotations

from activations.ingest.contract import FORMATS, SOURCES, Column


def contract_markdown() -> str:
    """One section per source: folder, formats, and a table of columns."""
    out = [
        "Drop files under the landing folder (`ATTIVA_LANDING`, default `data/landing`), one folder per source. "
        f"Formats: {', '.join(FORMATS)} (CSV with a header row, UTF-8; JSON lines, one object per line). "
        "Timestamps are ISO 8601 (UTC unless they carry an offset), dates `YYYY-MM-DD`, booleans "
        "`true/false/1/0/yes/no`. Columns may come in any order; unknown columns are ignored; a missing "
        "optional column loads as empty; a missing required column fails the file. Where a column lists "
        "accepted values or a range, anything else breaks the contract; where it says any case, the value is "
        "trimmed and loaded in the case named. Rows that break the contract go to `raw.quarantine` with "
        "file, line, field and reason, one row per problem and per line of the file; the rest of the file loads.",
        "",
    ]
    for source in SOURCES:
        out += [
            f"#### `{source.folder}/` → `raw.{source.name}`",
            "",
            source.description,
            "",
            "| column | type | required | accepted | notes |",
            "|---|---|---|---|---|",
        ]
        out += [
            f"| `{c.name}` | {c.type} | {'yes' if c.required else ''} | {accepted(c)} | {c.description} |"
            for c in source.columns
        ]
        out.append("")
    return "\n".join(out)


def accepted(column: Column) -> str:
    """What a column accepts beyond its type, in a few words: its values, pattern or range."""
    parts = []
    if column.values:
        parts.append(", ".join(f"`{v}`" for v in column.values))
    if column.pattern is not None:
        parts.append(column.pattern[1].split(" (")[0])
    if column.minimum is not None and column.maximum is not None:
        parts.append(f"{column.minimum:g} to {column.maximum:g}")
    elif column.minimum is not None:
        parts.append(f"≥ {column.minimum:g}")
    elif column.maximum is not None:
        parts.append(f"≤ {column.maximum:g}")
    if column.case is not None:
        parts.append(f"any case, loaded {column.case}-case")
    return "; ".join(parts)
