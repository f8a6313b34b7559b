"""The landing contract as Markdown, for the README (`attiva contract`)."""

from __future__ import annotations

from activations.ingest.contract import FORMATS, SOURCES


def contract_markdown() -> str:
    """One section per source: folder, formats, and a table of columns."""
    out = [
        "Drop files under the landing folder (`ATTIVA_LANDING`, default `data/landing`), one folder per source. "
        f"Formats: {', '.join(FORMATS)} (CSV with a header row, UTF-8; JSON lines, one object per line). "
        "Timestamps are ISO 8601 (UTC unless they carry an offset), dates `YYYY-MM-DD`, booleans "
        "`true/false/1/0/yes/no`. Columns may come in any order; unknown columns are ignored; a missing "
        "optional column loads as empty; a missing required column fails the file. Rows that break the "
        "contract go to `raw.quarantine` with file, line, field and reason; the rest of the file loads.",
        "",
    ]
    for source in SOURCES:
        out += [
            f"#### `{source.folder}/` → `raw.{source.name}`",
            "",
            source.description,
            "",
            "| column | type | required | notes |",
            "|---|---|---|---|",
        ]
        out += [f"| `{c.name}` | {c.type} | {'yes' if c.required else ''} | {c.description} |" for c in source.columns]
        out.append("")
    return "\n".join(out)
