"""Which language a mention is written in: Italian, English, or neither (`None`).

py3langid's model ships inside its wheel (nothing is fetched at run time) and gives the same answer
for the same text every time. On a post of two or three words it often ranks some other language first
("scarpe comode" comes out Portuguese, "Rude staff" Danish) with little confidence, so the better of
Italian and English is still taken when its function words side with it (see `_FUNCTION_WORDS`), or
when the model gives it at least `_CLOSE_ENOUGH` of the first language's probability. A post that
really is Spanish, French or German is usually far more certain (docs/listening.md has the figures).
"""

from __future__ import annotations

import re
from functools import cache

# Links, handles and hashtags say nothing about the language (#ootd is on Italian posts too).
_NOISE = re.compile(r"https?://\S+|www\.\S+|[@#]\w+")
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")

# Chosen on benchmarks/data/mentions_language_short.csv: it takes most short Italian and English posts
# and lets 3 of its 20 posts in other languages through ("Trop cher", "Tolle Qualität").
_CLOSE_ENOUGH = 0.3
# Only posts this short get the benefit of the doubt: "Casa Lume abre una tienda en Madrid" has more
# Italian function words ("la", "a") than English ones, and must stay Spanish.
_SHORT_POST_WORDS = 6

# Short, frequent words that belong to one of the two languages only (no "a", "in", "no", "non"/"not").
_FUNCTION_WORDS = {
    "it": frozenset(
        "il lo la gli le un una uno di del della dei delle che è e ed per con mi ti si ci ho ha hanno "
        "sono sei siamo questo questa quello quella nel nella nei sul sulla al alla ai dal dalla "
        "anche ma più molto troppo già ancora sempre mai niente nulla nessun nessuno come dove "
        "perché quando tutto tutti tra fra c'è l'ho".split()
    ),
    "en": frozenset(
        "the and is are was were to of my your our their this that these those with for from have has "
        "had be been it's i'm i've don't didn't doesn't isn't wasn't can't won't not but so very too "
        "what which who where when how all any never nothing just really at by on an".split()
    ),
}


def language(text: str) -> str | None:
    """'it' or 'en' for a mention in Italian or English; None for another language or no words."""
    words = _WORD.findall(_NOISE.sub(" ", text).lower())
    if not words:
        return None
    ranked = dict(_identifier().rank(" ".join(words)))
    best = max(("it", "en"), key=lambda code: ranked.get(code, 0.0))
    if max(ranked, key=ranked.get) == best:
        return best
    if len(words) > _SHORT_POST_WORDS:  # the model is sure enough of a longer text: Spanish, French...
        return None
    counts = {code: sum(word in vocab for word in words) for code, vocab in _FUNCTION_WORDS.items()}
    other = "en" if best == "it" else "it"
    if counts[best] > counts[other] or ranked[best] >= _CLOSE_ENOUGH * max(ranked.values()):
        return best
    return None


@cache
def _identifier():
    # Loading the model takes about a second: once per process, and only when a mention needs it.
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
