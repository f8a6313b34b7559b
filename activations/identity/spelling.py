"""How matching reads names, places and street addresses as people type them (DuckDB SQL).

Staging keeps what the record says ("ROSSI", "V.le Giuseppe Verdi, 12"); matching compares
spellings, so before scoring it folds case, accents and punctuation, and writes each street
type one way. Without it "ROSSI" and "Rossi" were two surnames to Jaro-Winkler, and
"V.le Verdi, 12" and "Viale Verdi 12" two addresses.
"""

from __future__ import annotations

# Street types as forms and reps shorten them (IT, FR, ES, DE/AT, NL) -> the word written out.
# Only abbreviations are rewritten, each to its own language's word: a whole word is left as typed,
# so a typo beside it ("4 cobar lpace") still reads close to the original. German and Dutch types
# end a compound (Hauptstraße, Hauptstr., Kerkstraat) and share one short form.
STREET_TYPES = (
    (r"(^|\s)(v\.le)(\s|$)", "viale"),
    (r"(^|\s)(v\.)(\s|$)", "via"),
    (r"(^|\s)(p\.zza|p\.za)(\s|$)", "piazza"),
    (r"(^|\s)(pza\.)(\s|$)", "plaza"),
    (r"(^|\s)(pl\.)(\s|$)", "place"),
    (r"(^|\s)(c\.so)(\s|$)", "corso"),
    (r"(^|\s)(l\.go)(\s|$)", "largo"),
    (r"(^|\s)(av\.|ave)(\s|$)", "avenue"),
    (r"(^|\s)(avda\.)(\s|$)", "avenida"),
    (r"(^|\s)(bd|bld|blvd)(\s|$)", "boulevard"),
    (r"(^|\s)(c/|c\.)(\s|$)", "calle"),
    (r"(^|\s)(pº)(\s|$)", "paseo"),
)
COMPOUND_TYPES = (
    (r"(strasse|straat|str\.)(\s|,|$)", "str"),
    (r"(g\.)(\s|,|$)", "gasse"),
    (r"(al\.)(\s|,|$)", "allee"),
    (r"(ln)(\s|,|$)", "laan"),
)


def _squeeze(sql: str) -> str:
    """Runs of spaces as one, trimmed, empty as null."""
    return f"nullif(trim(regexp_replace({sql}, '\\s+', ' ', 'g')), '')"


def name_sql(column: str) -> str:
    """A name or city: lower case, no accents, apostrophes or other marks (D'Angelo -> dangelo,
    Niccolo' -> niccolo), hyphens as spaces (Anne-Marie -> anne marie)."""
    folded = f"lower(strip_accents(replace(CAST({column} AS VARCHAR), '-', ' ')))"
    return _squeeze(f"regexp_replace({folded}, '[^a-z ]', '', 'g')")


def address_sql(column: str) -> str:
    """A street line: lower case, no accents, ß as ss, each street type one way, no "n." before
    the number, commas as spaces ("V.le Verdi, 12" -> "viale verdi 12")."""
    sql = f"replace(lower(strip_accents(CAST({column} AS VARCHAR))), 'ß', 'ss')"
    sql = _squeeze(sql)  # the rules below look for single spaces
    for pattern, word in STREET_TYPES:
        sql = f"regexp_replace({sql}, '{pattern}', '\\1{word}\\3', 'g')"
    for pattern, word in COMPOUND_TYPES:
        sql = f"regexp_replace({sql}, '{pattern}', '{word}\\2', 'g')"
    sql = f"regexp_replace({sql}, '(^|\\s)(n|nr|no)[.°º]\\s*([0-9])', '\\1\\3', 'g')"  # "n. 12", "nr.12"
    return _squeeze(f"regexp_replace({sql}, '[,;:]', ' ', 'g')")
