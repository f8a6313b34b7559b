"""How a mention feels about the brand: a score in [-1, 1] and positive, negative or neutral.

English is scored by VADER (vaderSentiment: its word and emoji lexicons ship in the wheel), with the
retail words of `lexicon_en.tsv` added to its lexicon. Italian applies VADER's own rules and constants
to `lexicon_it.tsv`: a negator up to three words before a sentiment word flips and softens it ("non mi
è piaciuto"), a booster before it strengthens it ("davvero comodo", and the -issimo superlative),
"ma"/"però" shift the weight to what follows, "!" adds emphasis, and emoji take the valence VADER gives
their English names. Both end in VADER's compound score, so the thresholds below mean the same in both
languages. docs/listening.md has the measured accuracy.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from activations.listening.language import language

__all__ = ["NEGATIVE_BELOW", "POSITIVE_FROM", "language", "sentiment"]

# VADER's documented cut-offs on the compound score: at least +0.05 is positive, at most -0.05
# negative. Not tuned on the labelled set (benchmarks/listening_sentiment.py measures them).
POSITIVE_FROM = 0.05
NEGATIVE_BELOW = -0.05

# Italian negation is concordant ("non ... mai", "non ... per niente" negate once), so any of these
# in the window flips a word once. "poco" + adjective reads as "not very" ("poco resistente").
# "affatto" only ever strengthens a negation ("non è affatto piacevole"), so it counts as one.
_NEGATORS = frozenset(
    "non mai nessun nessuno nessuna né niente nulla senza neanche nemmeno neppure affatto poco".split()
)
_NEGATION_WINDOW = 3
_BOOSTERS = frozenset(
    "molto davvero veramente proprio super tanto tantissimo troppo estremamente incredibilmente "
    "assolutamente decisamente particolarmente parecchio completamente totalmente talmente così".split()
)
_DAMPENERS = frozenset("abbastanza quasi leggermente piuttosto po".split())
_CONTRASTS = frozenset({"ma", "però", "tuttavia", "eppure"})
# Emoji whose names carry no valence in VADER's lexicon ("pouting face", "thumbs up") though reviews use
# them for one: each reads as a word of VADER's lexicon with that valence, in both languages.
_EMOJI_WORDS = {
    "😡": "angry", "🤬": "furious", "😤": "annoyed", "😒": "annoyed", "🙄": "annoyed", "🤦": "frustrated",
    "🤢": "disgusting", "🤮": "disgusting", "👎": "bad", "💔": "sad",
    "👍": "good", "👏": "great", "💯": "excellent", "🔥": "awesome", "🙌": "yay", "🤩": "awesome",
}
_TOKEN = re.compile(r"[^\W\d_]+", re.UNICODE)
_SUPERLATIVE = re.compile(r"^(\w{3,})issim[oaie]$")


def sentiment(text: str, language: str) -> tuple[float, str]:
    """(score in [-1, 1], 'positive' | 'negative' | 'neutral') for a mention in 'it' or 'en'."""
    if language == "en":
        score = _vader().polarity_scores(text)["compound"]
    elif language == "it":
        score = _italian_score(text)
    else:
        raise ValueError(f"no sentiment model for language {language!r} (only 'it' and 'en')")
    if score >= POSITIVE_FROM:
        return score, "positive"
    if score <= NEGATIVE_BELOW:
        return score, "negative"
    return score, "neutral"


def _italian_score(text: str) -> float:
    from vaderSentiment.vaderSentiment import B_INCR, N_SCALAR, normalize

    tokens = _tokens(text)
    words = _lexicon()
    valences: list[float] = []
    i = 0
    while i < len(tokens):
        token, valence, width = _lookup(tokens, i, words)
        if valence:
            before = tokens[max(0, i - _NEGATION_WINDOW) : i]
            for distance, previous in enumerate(reversed(before)):
                # VADER's decay: a modifier three words back counts 90% of one right before.
                step = B_INCR * (1.0, 0.95, 0.9)[distance]
                if previous in _BOOSTERS:
                    valence += step if valence > 0 else -step
                elif previous in _DAMPENERS:
                    valence -= step if valence > 0 else -step
            if _SUPERLATIVE.match(token) and token not in words:
                valence += B_INCR if valence > 0 else -B_INCR
            # A phrase that opens with its own negator ("niente male", "mai più") is not negated again.
            if token.split()[0] not in _NEGATORS and any(word in _NEGATORS for word in before):
                valence *= N_SCALAR
        valences.append(valence)
        valences.extend([0.0] * (width - 1))
        i += width
    for position, token in enumerate(tokens):
        if token in _CONTRASTS:
            valences = [v * 0.5 for v in valences[:position]] + [v * 1.5 for v in valences[position:]]
            break
    total = sum(valences)
    if total:
        emphasis = min(text.count("!"), 4) * 0.292
        total += emphasis if total > 0 else -emphasis
    return round(normalize(total), 4)


def _tokens(text: str) -> list[str]:
    """Lower-case words (apostrophes split "l'ora" into "l", "ora") and each emoji as its own token."""
    emojis = _vader().emojis
    tokens: list[str] = []
    for piece in text.lower().replace("’", "'").split():
        tokens.extend(char for char in piece if char in emojis)
        tokens.extend(_TOKEN.findall(piece))
    return tokens


def _lookup(tokens: list[str], i: int, words: dict[str, float]) -> tuple[str, float, int]:
    """The valence at token i: the longest lexicon phrase starting there, else the word's own."""
    for width in (5, 4, 3, 2):
        phrase = " ".join(tokens[i : i + width])
        if len(tokens) - i >= width and phrase in words:
            return phrase, words[phrase], width
    token = tokens[i]
    emojis = _vader().emojis
    if token in emojis:
        lexicon = _vader().lexicon
        return token, sum(lexicon.get(word, 0.0) for word in emojis[token].split()), 1
    return token, _word_valence(token, words), 1


def _word_valence(token: str, words: dict[str, float]) -> float:
    """The lexicon's valence for a word or its masculine-singular form (ottime -> ottimo)."""
    if token in words:
        return words[token]
    superlative = _SUPERLATIVE.match(token)
    stem = superlative.group(1) if superlative else token[:-1] if token[-1:] in "aoie" else None
    if stem:
        for ending in ("o", "e", "a"):
            if stem + ending in words:
                return words[stem + ending]
    return 0.0


@cache
def _lexicon() -> dict[str, float]:
    """Italian terms as the scorer tokenizes them ("non c'è male" -> "non c è male")."""
    return {" ".join(_TOKEN.findall(term)): valence for term, valence in _read_lexicon("lexicon_it.tsv").items()}


def _read_lexicon(name: str) -> dict[str, float]:
    text = resources.files("activations.listening").joinpath(name).read_text(encoding="utf-8")
    rows = (line.split("\t") for line in text.splitlines() if line and not line.startswith("#"))
    return {term.lower(): float(valence) for term, valence in rows}


@cache
def _vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    analyzer.emojis.update(_EMOJI_WORDS)
    analyzer.lexicon.update(_read_lexicon("lexicon_en.tsv"))
    return analyzer
