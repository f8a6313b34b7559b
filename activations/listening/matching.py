"""Which brands and topics a mention names: whole words, in any case, with or without accents.

"Casa Lume" matches "casa lume", "CASA LUME!" and "#casalume" only when an alias spells it so; "Lume"
alone does not match "Casa Lume", and "lumen" never matches "lume". Accents are dropped on both sides,
so "qualita" finds "qualità" and "Caffè" finds "caffe".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable


def fold(text: str) -> str:
    """Lower-cased, accents dropped, runs of white space made one space."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(ch for ch in decomposed if not unicodedata.combining(ch)).split())


class Vocabulary:
    """Names (a brand, a topic) each with the spellings that mean it; `found(text)` lists those named."""

    def __init__(self, spellings: dict[str, Iterable[str]]) -> None:
        self._patterns = {
            name: re.compile("|".join(rf"(?<!\w){re.escape(fold(s))}(?!\w)"
                                      for s in sorted(set(words), key=len, reverse=True) if fold(s)))
            for name, words in spellings.items()
        }

    def found(self, text: str) -> list[str]:
        """The names whose spellings occur in `text`, in the vocabulary's order."""
        folded = fold(text)
        return [name for name, pattern in self._patterns.items() if pattern.pattern and pattern.search(folded)]
