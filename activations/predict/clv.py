"""Customer lifetime value: BG/NBD for how often a customer buys and whether they are still a
customer, Gamma-Gamma for how much they spend, fitted by maximum likelihood with scipy.

A customer is summarised as in Fader, Hardie & Lee (2005): `frequency` repeat purchases (all
purchases but the first), `recency` the time from the first purchase to the last, `T` the time
from the first purchase to the end of the period, and `monetary` the average value of the repeat
purchases. Time is in whatever unit the summary uses (the warehouse uses weeks, like the paper);
horizons are in the same unit.

Why scipy and not PyMC-Marketing (the maintained library): docs/predictive-traits.md has the
measurements. Both log-likelihoods are closed forms; their gradients are too, so L-BFGS-B
converges in a few dozen evaluations on data compressed to its distinct rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MIN_REPEAT_BUYERS = 100  # fewer than this, and four parameters are guesses: refuse to train
WEEKS_PER_YEAR = 365.25 / 7


class TooLittleData(ValueError):
    """The summary has too few customers (or repeat buyers) to fit a model worth publishing."""


@dataclass(frozen=True)
class Summary:
    """Per-customer frequency, recency, T (and monetary value of repeat purchases), as float arrays."""

    frequency: np.ndarray
    recency: np.ndarray
    T: np.ndarray
    monetary: np.ndarray | None = None

    @classmethod
    def of(cls, frequency, recency, T, monetary=None) -> Summary:
        as_array = lambda values: np.asarray(values, dtype=np.float64)  # noqa: E731
        summary = cls(as_array(frequency), as_array(recency), as_array(T),
                      None if monetary is None else as_array(monetary))
        if not (len(summary.frequency) == len(summary.recency) == len(summary.T)):
            raise ValueError("frequency, recency and T must have one value per customer")
        if np.any(summary.frequency < 0) or np.any(summary.recency < 0) or np.any(summary.recency > summary.T):
            raise ValueError("expected frequency >= 0 and 0 <= recency <= T for every customer")
        return summary

    @property
    def repeat_buyers(self) -> int:
        return int(np.count_nonzero(self.frequency > 0))


@dataclass(frozen=True)
class PurchaseModel:
    """BG/NBD: purchase rates Gamma(r, alpha), dropout probabilities Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    converged: bool
    customers: int


@dataclass(frozen=True)
class SpendModel:
    """Gamma-Gamma: spend per purchase Gamma(p, nu), nu ~ Gamma(q, v) across customers."""

    p: float
    q: float
    v: float
    log_likelihood: float
    converged: bool
    buyers: int


@dataclass(frozen=True)
class Quality:
    """Whether a model may be published, and every reason it may not."""

    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


def require_enough_data(summary: Summary, min_repeat_buyers: int = MIN_REPEAT_BUYERS) -> None:
    """Raise TooLittleData, saying how much there is, when there are too few repeat buyers to train on."""
    if summary.repeat_buyers < min_repeat_buyers:
        raise TooLittleData(f"too little data to train customer lifetime value: {summary.repeat_buyers:,} repeat "
                            f"buyers among {len(summary.frequency):,} customers, at least {min_repeat_buyers:,} needed")


def _distinct_rows(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """The distinct rows and how many customers share each: at scale many customers share a summary."""
    rows, counts = np.unique(np.column_stack(columns), axis=0, return_counts=True)
    return [rows[:, i] for i in range(rows.shape[1])], counts.astype(np.float64)


def _maximize(neg_log_likelihood_and_gradient, start: np.ndarray) -> tuple[np.ndarray, float, bool]:
    """Maximize over log-parameters (so they stay positive); returns the parameters, the LL, convergence."""
    from scipy.optimize import minimize

    result = minimize(neg_log_likelihood_and_gradient, np.log(start), jac=True, method="L-BFGS-B",
                      options={"maxiter": 1000, "ftol": 1e-13, "gtol": 1e-8})
    return [float(value) for value in np.exp(result.x)], -float(result.fun), bool(result.success)


def purchase_log_likelihood(params, x, t_x, T, weights=None, gradient: bool = False):
    """BG/NBD log-likelihood (Fader, Hardie & Lee 2005, eq. 6) and, asked, its gradient in log-parameters."""
    from scipy.special import digamma, gammaln

    r, alpha, a, b = params
    weights = np.ones_like(x) if weights is None else weights
    repeat = x > 0
    common = (gammaln(r + x) - gammaln(r) + r * np.log(alpha)
              + gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x))
    stayed = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        dropped = np.where(repeat, np.log(a) - np.log(np.where(repeat, b + x - 1, 1.0)) - (r + x) * np.log(alpha + t_x),
                           -np.inf)
    either = np.logaddexp(stayed, dropped)
    ll = float(np.sum(weights * (common + either)))
    if not gradient:
        return ll
    w_stayed, w_dropped = np.exp(stayed - either), np.exp(dropped - either)
    d_r = digamma(r + x) - digamma(r) + np.log(alpha) - w_stayed * np.log(alpha + T) - w_dropped * np.log(alpha + t_x)
    d_alpha = r / alpha - w_stayed * (r + x) / (alpha + T) - w_dropped * (r + x) / (alpha + t_x)
    d_a = digamma(a + b) - digamma(a + b + x) + w_dropped / a
    d_b = (digamma(a + b) + digamma(b + x) - digamma(b) - digamma(a + b + x)
           - w_dropped / np.where(repeat, b + x - 1, 1.0))
    grad = np.array([np.sum(weights * d) for d in (d_r, d_alpha, d_a, d_b)]) * np.asarray(params)
    return ll, grad


def fit_purchases(summary: Summary, min_repeat_buyers: int = MIN_REPEAT_BUYERS) -> PurchaseModel:
    """Fit BG/NBD by maximum likelihood; TooLittleData when there are too few repeat buyers."""
    require_enough_data(summary, min_repeat_buyers)
    (x, t_x, T), weights = _distinct_rows(summary.frequency, summary.recency, summary.T)

    def objective(log_params):
        ll, grad = purchase_log_likelihood(np.exp(log_params), x, t_x, T, weights, gradient=True)
        return -ll, -grad

    start = np.array([1.0, max(float(np.mean(summary.T)), 1e-3), 1.0, 1.0])
    (r, alpha, a, b), ll, converged = _maximize(objective, start)
    return PurchaseModel(r=r, alpha=alpha, a=a, b=b, log_likelihood=ll, converged=converged,
                         customers=len(summary.frequency))


def spend_log_likelihood(params, x, m, weights=None, gradient: bool = False):
    """Gamma-Gamma log-likelihood of the average repeat value m over x > 0 purchases (Fader & Hardie 2013)."""
    from scipy.special import digamma, gammaln

    p, q, v = params
    weights = np.ones_like(x) if weights is None else weights
    px = p * x
    ll = float(np.sum(weights * (gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(v)
                                 + (px - 1) * np.log(m) + px * np.log(x) - (px + q) * np.log(v + x * m))))
    if not gradient:
        return ll
    d_p = x * (digamma(px + q) - digamma(px) + np.log(m) + np.log(x) - np.log(v + x * m))
    d_q = digamma(px + q) - digamma(q) + np.log(v) - np.log(v + x * m)
    d_v = q / v - (px + q) / (v + x * m)
    return ll, np.array([np.sum(weights * d) for d in (d_p, d_q, d_v)]) * np.asarray(params)


def fit_spend(summary: Summary, min_repeat_buyers: int = MIN_REPEAT_BUYERS) -> SpendModel:
    """Fit Gamma-Gamma on the repeat buyers with a positive average repeat value."""
    if summary.monetary is None:
        raise ValueError("the summary has no monetary value")
    buyers = (summary.frequency > 0) & (summary.monetary > 0)
    if np.count_nonzero(buyers) < min_repeat_buyers:
        raise TooLittleData(f"too little data to train spend per purchase: {np.count_nonzero(buyers):,} repeat "
                            f"buyers with a positive value, at least {min_repeat_buyers:,} needed")
    (x, m), weights = _distinct_rows(summary.frequency[buyers], summary.monetary[buyers])

    def objective(log_params):
        ll, grad = spend_log_likelihood(np.exp(log_params), x, m, weights, gradient=True)
        return -ll, -grad

    (p, q, v), ll, converged = _maximize(objective, np.array([1.0, 2.0, float(np.mean(m))]))
    return SpendModel(p=p, q=q, v=v, log_likelihood=ll, converged=converged, buyers=int(np.count_nonzero(buyers)))


def _odds_dropped(model: PurchaseModel, summary: Summary) -> np.ndarray:
    """For repeat buyers, how much likelier "dropped out after the last purchase" is than "still buying"."""
    x, t_x, T = summary.frequency, summary.recency, summary.T
    repeat = x > 0
    safe_b = np.where(repeat, model.b + x - 1, 1.0)
    log_odds = np.log(model.a) - np.log(safe_b) + (model.r + x) * (np.log(model.alpha + T) - np.log(model.alpha + t_x))
    return np.where(repeat, np.exp(np.minimum(log_odds, 700.0)), 0.0)


def probability_alive(model: PurchaseModel, summary: Summary) -> np.ndarray:
    """P(still a customer at T | frequency, recency, T) (FHL 2005, eq. 11): 1 for one-time buyers."""
    return 1.0 / (1.0 + _odds_dropped(model, summary))


def expected_purchases(model: PurchaseModel, summary: Summary, horizon: float) -> np.ndarray:
    """Expected purchases in (T, T + horizon] given each customer's history (FHL 2005, eq. 10)."""
    from scipy.special import hyp2f1

    x, T = summary.frequency, summary.T
    r, alpha, a, b = model.r, model.alpha, model.a, model.b
    share = horizon / (alpha + T + horizon)
    hyp = hyp2f1(r + x, b + x, a + b + x - 1, share)
    bought = (a + b + x - 1) / (a - 1) * (1 - ((alpha + T) / (alpha + T + horizon)) ** (r + x) * hyp)
    return bought / (1.0 + _odds_dropped(model, summary))


def expected_spend(model: SpendModel, summary: Summary) -> np.ndarray:
    """Expected value of a future purchase: the population mean shrunk towards each customer's own average
    (Fader & Hardie 2013, eq. 5); the population mean p*v/(q-1) for customers without repeat purchases."""
    x = summary.frequency
    m = np.zeros_like(x) if summary.monetary is None else np.where(x > 0, summary.monetary, 0.0)
    return model.p * (model.v + x * m) / (model.p * x + model.q - 1)


def expected_value(purchases: PurchaseModel, spend: SpendModel, summary: Summary, horizon: float,
                   annual_discount_rate: float = 0.10, steps: int = 12) -> np.ndarray:
    """Expected, discounted value over the horizon: the horizon is cut in `steps` equal parts (monthly for a year),
    each part's expected purchases times the expected spend, discounted from the part's end at the annual rate
    (time in weeks)."""
    per_purchase = expected_spend(spend, summary)
    total, before = np.zeros_like(summary.T), np.zeros_like(summary.T)
    for step in range(1, steps + 1):
        until = horizon * step / steps
        by_then = expected_purchases(purchases, summary, until)
        total += (by_then - before) * per_purchase / (1 + annual_discount_rate) ** (until / WEEKS_PER_YEAR)
        before = by_then
    return total


def check_quality(purchases: PurchaseModel, spend: SpendModel, predicted_holdout: float, actual_holdout: float,
                  tolerance: float = 0.25) -> Quality:
    """Publishable when both fits converged, every parameter is finite and positive, q > 1 (so the expected
    spend is finite) and the repeat purchases predicted over the holdout period are within `tolerance`
    (relative) of those that happened."""
    problems = []
    for name, model, params in (("BG/NBD", purchases, (purchases.r, purchases.alpha, purchases.a, purchases.b)),
                                ("Gamma-Gamma", spend, (spend.p, spend.q, spend.v))):
        if not model.converged:
            problems.append(f"{name} fit did not converge")
        if not (all(np.isfinite(value) and value > 0 for value in params) and np.isfinite(model.log_likelihood)):
            problems.append(f"{name} parameters or log-likelihood not finite and positive: {params}")
    if not spend.q > 1:
        problems.append(f"Gamma-Gamma q = {spend.q:.3g} <= 1: the expected spend per purchase is unbounded")
    error = holdout_error(predicted_holdout, actual_holdout)
    if not error <= tolerance:
        problems.append(f"holdout: predicted {predicted_holdout:,.1f} repeat purchases, {actual_holdout:,.0f} happened "
                        f"({error:.1%} off, tolerance {tolerance:.0%})")
    return Quality(problems)


def holdout_error(predicted: float, actual: float) -> float:
    """|predicted - actual| / actual; infinite when nothing happened but something was predicted."""
    if actual == 0:
        return 0.0 if predicted == 0 else float("inf")
    return abs(predicted - actual) / actual
