"""Spreadsheet-safe CSV cells: text a spreadsheet would run as a formula is written as text.

OWASP's CSV injection guidance: Excel, LibreOffice and Google Sheets read a cell that starts
with `=`, `+`, `-`, `@`, a tab or a carriage return as a formula, so a CRM name such as
`=HYPERLINK("https://evil.example","Invoice")` becomes a live link in the marketer's sheet.
A leading single quote makes the spreadsheet show the text as typed. Only text cells are
touched: numbers stay numbers (-5 in a numeric column), and so does a text cell that is just
a number (a phone `+393331234567`, `-5`), which a spreadsheet reads as a number, never a call.
"""

from __future__ import annotations

import polars as pl

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = r"^[+-]?[0-9]+(\.[0-9]+)?$"


def neutralize_formulas(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` with every text cell (header included) that a spreadsheet would run prefixed by a single quote."""
    text = [name for name, dtype in frame.schema.items() if dtype in (pl.String, pl.Categorical) or dtype == pl.Enum]
    if text:
        # One cheap pass finds the columns holding any such cell; only those are rewritten.
        found = frame.select(_risky(pl.col(name).cast(pl.String)).any() for name in text).row(0)
        hit = [name for name, any_risky in zip(text, found, strict=True) if any_risky]
        frame = frame.with_columns(_neutralized(pl.col(name).cast(pl.String)).alias(name) for name in hit)
    return frame.rename({name: f"'{name}" for name in frame.columns if _runs_as_formula(name)})


def _risky(cell: pl.Expr) -> pl.Expr:
    return cell.str.slice(0, 1).is_in(FORMULA_START) & ~cell.str.contains(PLAIN_NUMBER)


def _neutralized(cell: pl.Expr) -> pl.Expr:
    return pl.when(_risky(cell)).then(pl.lit("'") + cell).otherwise(cell)


def _runs_as_formula(text: str) -> bool:
    return pl.select(_risky(pl.lit(text))).item()
