"""Churn, purchase and lead-conversion propensity: gradient boosting trained with a time split,
judged against the rule-based scores on the same holdout, published only when it beats them.

Time split, for a target with horizon H days and the pipeline's now T:
  train    features at t0 = T - 2H, labels from (t0, t0 + H]
  holdout  features at t1 = T - H,  labels from (t1, T]
No label of the training window reaches past t1, so the holdout is days the model never saw.
Its AUC, Brier score and calibration deciles are the model's record, beside the rule's AUC on the
same customers. A model that passes the gate is refitted on the holdout window (the freshest
complete labels, same settings) and scores every customer as of T.

scikit-learn is imported when a model is trained, not when this module is.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from activations.predict import propensity_features as pf

MIN_EACH_CLASS = 50  # positives and negatives, in training and in holdout: fewer and the AUC is noise
AUC_FLOOR = 0.6  # below this a model ranks customers barely better than chance
MAX_TRAINING_ROWS = 300_000  # a random sample past this: the AUC no longer moves, the time does
FEW_POSITIVES = 1_000  # fewer positive customers to train on: a logistic regression, not gradient boosting


class NotEnoughData(ValueError):
    """Too few customers of one outcome to train or judge a model; says how many and how many are needed."""


@dataclass(frozen=True)
class Target:
    """What a model predicts, for whom, and the rule it must beat."""

    name: str
    column: str  # in predictions.customer_propensity
    horizon_days: int
    population: Callable[[dict], np.ndarray]  # features -> who is scored (bool)
    outcome: Callable[[dict], np.ndarray]  # labels -> what happened (bool)
    rule: Callable[[dict], np.ndarray]  # features -> the rule's score, higher = more likely
    rule_name: str


def _buyers(f: dict) -> np.ndarray:
    return f["orders_count"] > 0


def _everyone(f: dict) -> np.ndarray:
    return np.ones(len(f["customer_id"]), dtype=bool)


def _open_leads(f: dict) -> np.ndarray:
    return f["is_open_lead"] == 1


# Purchase's rule: the reverse of churn risk, with people who never bought below `high`.
TARGETS = (
    Target("churn", "churn_probability", 90, _buyers, lambda y: y["ordered"] == 0,
           lambda f: f["churn_risk"], "churn_risk (low < medium < high)"),
    Target("purchase_30d", "purchase_probability_30d", 30, _everyone, lambda y: y["ordered"] == 1,
           lambda f: -np.nan_to_num(f["churn_risk"], nan=3.0), "churn_risk reversed (no orders lowest)"),
    Target("lead_conversion", "lead_conversion_probability", 90, _open_leads, lambda y: y["converted"] == 1,
           lambda f: f["lead_score"], "lead_score"),
)
BY_NAME = {t.name: t for t in TARGETS}


@dataclass
class Training:
    """One training of one target: its holdout record, the gate's verdict and, when it passed, its scores."""

    target: Target
    trained_at: datetime
    train_cutoff: datetime
    holdout_cutoff: datetime
    train_rows: int = 0
    holdout_rows: int = 0
    holdout_positives: int = 0
    auc: float | None = None
    rule_auc: float | None = None
    brier: float | None = None
    calibration: list[dict] = field(default_factory=list)
    model: str = ""  # gradient boosting or logistic regression (new_model)
    seconds: float = 0.0
    published: bool = False
    reason: str = ""
    scores: dict[str, np.ndarray] | None = None  # customer_id, probability: everyone in the population at T

    @property
    def version(self) -> str:
        return f"{self.target.name}@{self.trained_at:%Y-%m-%dT%H:%M:%S}"

    def __str__(self) -> str:
        if self.auc is None:
            return f"{self.target.name}: not trained: {self.reason}"
        verdict = "published" if self.published else f"not published: {self.reason}"
        return (f"{self.target.name} ({self.model}): AUC {self.auc:.3f} vs rule {_fmt(self.rule_auc)}, Brier {self.brier:.3f} "
                f"on {self.holdout_rows} holdout customers ({self.holdout_positives} positive); {verdict}")


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


class Snapshots:
    """Features and labels per cut-off, computed once per run (targets share cut-offs)."""

    def __init__(self, con):
        self.con = con
        self._features: dict[datetime, dict] = {}
        self._labels: dict[tuple[datetime, int], dict] = {}

    def features(self, cutoff: datetime) -> dict:
        if cutoff not in self._features:
            self._features[cutoff] = pf.features(self.con, cutoff)
        return self._features[cutoff]

    def labels(self, cutoff: datetime, horizon_days: int) -> dict:
        if (cutoff, horizon_days) not in self._labels:
            self._labels[(cutoff, horizon_days)] = pf.labels(self.con, cutoff, horizon_days)
        return self._labels[(cutoff, horizon_days)]

    def window(self, target: Target, cutoff: datetime) -> tuple[dict, np.ndarray]:
        """The target's population at the cut-off (features) and what each of them did next (0/1)."""
        f, y = self.features(cutoff), self.labels(cutoff, target.horizon_days)
        if not np.array_equal(f["customer_id"], y["customer_id"]):
            raise RuntimeError("features and labels disagree on the customers at " + str(cutoff))
        keep = target.population(f)
        return {k: v[keep] for k, v in f.items()}, target.outcome(y)[keep].astype(int)


def matrix(f: dict) -> np.ndarray:
    """The model's inputs; a missing value (never ordered, never seen, no consent record) is -1, below every
    real one (all are >= 0). Not NaN: scikit-learn's binning fails on a column with no value at all."""
    return np.nan_to_num(np.column_stack([f[name].astype(float) for name in pf.FEATURES]), nan=-1.0)


def _enough(target: Target, y: np.ndarray, window: str, cutoff: datetime) -> None:
    positives = int(y.sum())
    negatives = len(y) - positives
    if min(positives, negatives) < MIN_EACH_CLASS:
        raise NotEnoughData(
            f"{target.name}: {positives} positive and {negatives} negative customers in the {window} window "
            f"(cut-off {cutoff:%Y-%m-%d}, {target.horizon_days} days after); at least {MIN_EACH_CLASS} of each "
            f"are needed to train and judge a model")


def new_model(positives: int, seed: int = 0):
    """Gradient boosting with settings that hold from 2,000 to 1,000,000 customers: few, regularised trees.
    With fewer than FEW_POSITIVES positive customers to learn from (a shop's converting leads: a few dozen to
    a few hundred a quarter), a regularised logistic regression on log-scaled inputs instead: trees grown on
    60 positives learn their noise (the simulator's leads: boosting 0.683 holdout AUC, the regression 0.761)."""
    if positives < FEW_POSITIVES:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import FunctionTransformer, StandardScaler

        return make_pipeline(FunctionTransformer(_log_scaled), StandardScaler(),
                             LogisticRegression(C=0.1, max_iter=2_000, random_state=seed))
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(max_iter=150, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=40,
                                          l2_regularization=1.0, early_stopping=False, random_state=seed)


def model_kind(model) -> str:
    return "gradient boosting" if type(model).__name__.startswith("HistGradient") else "logistic regression"


def _log_scaled(x: np.ndarray) -> np.ndarray:
    """Counts and days on a log scale, and whether each was missing (`matrix` codes that -1)."""
    return np.hstack([np.log1p(np.clip(x, 0, None)), (x < 0).astype(float)])


def _fit(x: np.ndarray, y: np.ndarray, max_rows: int):
    """A model fitted on at most `max_rows` customers, on one thread (`_one_thread`)."""
    x, y = _sample(x, y, max_rows)
    with _one_thread():
        return new_model(int(y.sum())).fit(x, y)


def _predict(model, x: np.ndarray) -> np.ndarray:
    with _one_thread():
        return model.predict_proba(x)[:, 1]


def _one_thread():
    """OpenMP's threads spin-wait for each other, so on a 2-core machine shared with other work two threads
    can be many times slower than one: 2,000 customers took 11 s on two, 0.7 s on one; the 1M benchmark's
    churn model 194 s on two under load. One thread costs 1.6x at 300,000 rows on an idle machine (10.8 s
    against 6.7 s a fit) and never more; the other core stays for DuckDB and the rest of the pipeline."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def _sample(x: np.ndarray, y: np.ndarray, limit: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    if len(y) <= limit:
        return x, y
    keep = np.random.default_rng(seed).choice(len(y), size=limit, replace=False)
    return x[keep], y[keep]


def calibration_deciles(y: np.ndarray, p: np.ndarray) -> list[dict]:
    """Holdout customers in ten equal groups by predicted probability: mean prediction against what happened."""
    order = np.argsort(p, kind="stable")
    return [{"decile": i + 1, "customers": len(part), "predicted": round(float(p[part].mean()), 4),
             "observed": round(float(y[part].mean()), 4)}
            for i, part in enumerate(np.array_split(order, 10)) if len(part)]


def auc(y: np.ndarray, score: np.ndarray) -> float | None:
    """ROC AUC (ties count half), None when one outcome is missing."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, score)) if 0 < y.sum() < len(y) else None


def train(snapshots: Snapshots, target: Target, now: datetime, auc_floor: float = AUC_FLOOR,
          max_rows: int = MAX_TRAINING_ROWS) -> Training:
    """Train, judge on the holdout, gate, and (if it passes) refit on the holdout window and score everyone at `now`.
    Raises NotEnoughData when either window has too few customers of one outcome."""
    from sklearn.metrics import brier_score_loss

    started = time.monotonic()
    t1 = now - timedelta(days=target.horizon_days)
    t0 = t1 - timedelta(days=target.horizon_days)
    run = Training(target, trained_at=now, train_cutoff=t0, holdout_cutoff=t1)
    f0, y0 = snapshots.window(target, t0)
    f1, y1 = snapshots.window(target, t1)
    _enough(target, y0, "training", t0)
    _enough(target, y1, "holdout", t1)
    model = _fit(matrix(f0), y0, max_rows)
    run.model = model_kind(model)
    p1 = _predict(model, matrix(f1))
    run.train_rows, run.holdout_rows, run.holdout_positives = len(y0), len(y1), int(y1.sum())
    run.auc, run.rule_auc = auc(y1, p1), auc(y1, target.rule(f1))
    run.brier = float(brier_score_loss(y1, p1))
    run.calibration = calibration_deciles(y1, p1)
    run.published, run.reason = gate(run.auc, run.rule_auc, auc_floor)
    if run.published:
        final = _fit(matrix(f1), y1, max_rows)
        fn = snapshots.features(now)
        keep = target.population(fn)
        run.scores = {"customer_id": fn["customer_id"][keep],
                      "probability": _predict(final, matrix({k: v[keep] for k, v in fn.items()}))}
    run.seconds = time.monotonic() - started
    return run


def gate(model_auc: float | None, rule_auc: float | None, floor: float = AUC_FLOOR) -> tuple[bool, str]:
    """Publish only a model at or above the AUC floor and no worse than the rule on the same holdout."""
    if model_auc is None or math.isnan(model_auc):
        return False, "no holdout AUC"
    if model_auc < floor:
        return False, f"holdout AUC {model_auc:.3f} is below the floor {floor:.2f}"
    if rule_auc is not None and model_auc < rule_auc:
        return False, f"holdout AUC {model_auc:.3f} is worse than the rule's {rule_auc:.3f}"
    return True, f"holdout AUC {model_auc:.3f} >= floor {floor:.2f} and rule {_fmt(rule_auc)}"


def cutoffs(now: datetime, targets: tuple[Target, ...] = TARGETS) -> list[tuple[datetime, int]]:
    """(cut-off, horizon) of every window the targets read: training, holdout, and now (horizon 0)."""
    windows = {(now - timedelta(days=k * t.horizon_days), t.horizon_days) for t in targets for k in (1, 2)}
    return sorted(windows | {(now, 0)})


def train_all(con, now: datetime, targets: tuple[Target, ...] = TARGETS, auc_floor: float = AUC_FLOOR,
              max_rows: int = MAX_TRAINING_ROWS, snapshots: Snapshots | None = None) -> list[Training]:
    """Every target on the views `con` points at (propensity_features.use_warehouse / use_frames); a target
    with too little data comes back unpublished, saying so, and the others still train."""
    snapshots = snapshots or Snapshots(con)
    runs = []
    for target in targets:
        try:
            runs.append(train(snapshots, target, now, auc_floor, max_rows))
        except NotEnoughData as exc:
            runs.append(Training(target, trained_at=now, train_cutoff=now - timedelta(days=2 * target.horizon_days),
                                 holdout_cutoff=now - timedelta(days=target.horizon_days),
                                 reason=f"not enough data: {exc}"))
    return runs
