"""Web listening accuracy: sentiment and language of the hand-labelled brand mentions.

    .venv/bin/python benchmarks/listening_sentiment.py [--data FILE.csv ...] [--repeat 5]

Reads text, language, label rows (Italian and English mentions of a fashion and home retailer, labelled
by hand: docs/listening.md) and prints, per file and language, the sentiment accuracy and macro-F1
against the label, a confusion matrix (rows the label, columns the prediction) and what always
answering the commonest label would score, and the file's language detection accuracy; then the
throughput of language + sentiment on one core, the language model's one-off load timed apart.
By default both sets: the development set the lexicons were fitted to, and the held-out set written
after their last change, whose figures are the ones to quote. Then language detection on very short
posts (1-4 words; Italian, English and other languages that should get None).
"""

from __future__ import annotations

import argparse
import csv
import time
from collections import Counter
from pathlib import Path

from activations.listening.sentiment import language, sentiment

LABELS = ("positive", "neutral", "negative")
DATA = Path(__file__).parent / "data"
SETS = {"development (lexicons fitted to it)": DATA / "mentions_sentiment.csv",
        "held out (written after the last lexicon change)": DATA / "mentions_sentiment_holdout.csv"}
SHORT = {"language of short posts (threshold chosen on it)": DATA / "mentions_language_short.csv",
         "language of short posts, held out": DATA / "mentions_language_short_holdout.csv"}


def read(path: Path) -> list[dict[str, str]]:
    """The labelled rows of the CSV."""
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def macro_f1(pairs: list[tuple[str, str]]) -> float:
    """Mean over the three labels of F1, from (label, predicted) pairs."""
    scores = []
    for label in LABELS:
        hits = sum(gold == label and guess == label for gold, guess in pairs)
        said = sum(guess == label for _, guess in pairs)
        truth = sum(gold == label for gold, _ in pairs)
        scores.append(2 * hits / (said + truth) if said + truth else 0.0)
    return sum(scores) / len(scores)


def report(code: str, rows: list[dict[str, str]]) -> None:
    """Accuracy, macro-F1, the confusion matrix and the majority baseline for one language."""
    pairs = [(row["label"], sentiment(row["text"], code)[1]) for row in rows]
    accuracy = sum(gold == guess for gold, guess in pairs) / len(pairs)
    majority = Counter(gold for gold, _ in pairs).most_common(1)[0][1] / len(pairs)
    print(f"\n{code}: {len(rows)} mentions  accuracy {accuracy:.1%}  macro-F1 {macro_f1(pairs):.3f}  "
          f"(always the commonest label: {majority:.1%})")
    cells = Counter(pairs)
    print(f"  {'label / predicted':<18}" + "".join(f"{label:>10}" for label in LABELS))
    for gold in LABELS:
        print(f"  {gold:<18}" + "".join(f"{cells[gold, guess]:>10}" for guess in LABELS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, action="append", help="a labelled CSV (default: both sets)")
    parser.add_argument("--repeat", type=int, default=5, help="passes over the rows for the throughput")
    args = parser.parse_args()
    sets = {str(path): path for path in args.data} if args.data else SETS

    started = time.perf_counter()
    language("pronto"), sentiment("pronto", "it"), sentiment("ready", "en")
    print(f"listening sentiment: models loaded in {time.perf_counter() - started:.2f} s (once per process)")

    rows = []
    for name, path in sets.items():
        mine = read(path)
        rows += mine
        print(f"\n== {name}: {len(mine)} labelled mentions from {_shown(path)}")
        for code in sorted({row["language"] for row in mine}, reverse=True):
            report(code, [row for row in mine if row["language"] == code])
        detected = Counter((row["language"], language(row["text"])) for row in mine)
        right = sum(count for (gold, guess), count in detected.items() if gold == guess)
        wrong = ", ".join(f"{gold}->{guess}: {count}" for (gold, guess), count in sorted(detected.items(), key=str)
                          if gold != guess)
        print(f"\nlanguage detection: {right}/{len(mine)} = {right / len(mine):.1%}  ({wrong or 'no errors'})")

    for name, path in SHORT.items():
        short = read(path)
        detected = Counter((row["language"], language(row["text"]) or "other") for row in short)
        right = sum(count for (gold, guess), count in detected.items() if gold == guess)
        print(f"\n== {name}: {right}/{len(short)} = {right / len(short):.1%} from {_shown(path)}")
        codes = ("it", "en", "other")
        print(f"  {'language / said':<18}" + "".join(f"{code:>10}" for code in codes))
        for gold in codes:
            print(f"  {gold:<18}" + "".join(f"{detected[gold, guess]:>10}" for guess in codes))

    started = time.perf_counter()
    for _ in range(args.repeat):
        for row in rows:
            code = language(row["text"])
            if code:
                sentiment(row["text"], code)
    elapsed = time.perf_counter() - started
    done = args.repeat * len(rows)
    print(f"\nthroughput: {done:,} mentions (language + sentiment) in {elapsed:.2f} s = {done / elapsed:,.0f} mentions/s")


def _shown(path: Path) -> Path:
    path = path.resolve()
    return path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path


if __name__ == "__main__":
    main()
