"""Customer lifetime value reproduces the published fits on CDNOW (the calibration sample Fader, Hardie
& Lee used: 2,357 customers, 39 weeks, shipped inside the `lifetimes` package), refuses to train on too
little data, and its quality check refuses a model that predicts the holdout badly."""

from __future__ import annotations

import numpy as np
import pytest

from activations.predict import clv


def three_digits(value: float) -> float:
    return float(f"{value:.3g}")


def test_bg_nbd_reproduces_fader_hardie_lee_2005(cdnow):
    model = clv.fit_purchases(cdnow)
    assert len(cdnow.frequency) == model.customers == 2357
    assert model.converged
    fitted = [three_digits(v) for v in (model.r, model.alpha, model.a, model.b, model.log_likelihood)]
    assert fitted == [0.243, 4.41, 0.793, 2.43, -9580.0]
    # The paper's figures, to the digits it prints.
    assert (round(model.r, 3), round(model.alpha, 3), round(model.a, 3), round(model.b, 3)) == (0.243, 4.414, 0.793, 2.426)
    assert round(model.log_likelihood, 1) == -9582.4


def test_gamma_gamma_reproduces_the_published_spend_model(cdnow):
    # Fader & Hardie (2013), "The Gamma-Gamma model of monetary value", and lifetimes' docs: 946 repeat buyers,
    # p = 6.25, q = 3.74, v (gamma) = 15.44 (15.45 in lifetimes' docs: 15.4477 rounds either way).
    model = clv.fit_spend(cdnow)
    assert model.buyers == 946 and model.converged
    assert (round(model.p, 2), round(model.q, 2), round(model.v, 1)) == (6.25, 3.74, 15.4)


def test_predictions_follow_the_paper(cdnow):
    model = clv.fit_purchases(cdnow)
    alive = clv.probability_alive(model, cdnow)
    assert np.all(alive[cdnow.frequency == 0] == 1.0) and np.all((alive > 0) & (alive <= 1))
    # Weeks 40-78 of CDNOW_sample.txt hold 1,882 purchase days of these customers; the model says ~1,653.
    assert clv.holdout_error(clv.expected_purchases(model, cdnow, 39).sum(), 1882) < 0.15
    spend = clv.fit_spend(cdnow)
    year = clv.expected_value(model, spend, cdnow, 52)
    undiscounted = clv.expected_value(model, spend, cdnow, 52, annual_discount_rate=0.0)
    assert np.all(year >= 0) and np.all(year <= undiscounted)
    assert undiscounted.sum() == pytest.approx(
        (clv.expected_purchases(model, cdnow, 52) * clv.expected_spend(spend, cdnow)).sum())


def test_too_little_data_says_so_instead_of_training(cdnow):
    few = clv.Summary.of(cdnow.frequency[:150], cdnow.recency[:150], cdnow.T[:150], cdnow.monetary[:150])
    assert few.repeat_buyers < clv.MIN_REPEAT_BUYERS
    with pytest.raises(clv.TooLittleData, match=r"too little data .* repeat buyers among 150 customers"):
        clv.fit_purchases(few)
    with pytest.raises(clv.TooLittleData):
        clv.fit_spend(few)


def test_the_quality_check_refuses_a_model_that_misses_the_holdout(cdnow):
    purchases, spend = clv.fit_purchases(cdnow), clv.fit_spend(cdnow)
    assert clv.check_quality(purchases, spend, predicted_holdout=1650, actual_holdout=1788).passed
    missed = clv.check_quality(purchases, spend, predicted_holdout=1650, actual_holdout=3000)
    assert not missed.passed and "holdout" in missed.problems[0]
    unbounded = clv.SpendModel(p=6.0, q=0.9, v=15.0, log_likelihood=-4000.0, converged=True, buyers=946)
    diverged = clv.PurchaseModel(r=float("nan"), alpha=4.4, a=0.8, b=2.4, log_likelihood=float("nan"),
                                 converged=False, customers=2357)
    problems = clv.check_quality(diverged, unbounded, 1650, 1788).problems
    assert any("did not converge" in p for p in problems) and any("not finite" in p for p in problems)
    assert any("q = 0.9" in p for p in problems)
