"""The CLV models: published fits reproduced, and the expectations on hand-computed cases."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pfd_pipeline import clv

CDNOW = Path(__file__).parent / "fixtures" / "cdnow" / "cdnow_customers_summary.csv"


@pytest.fixture(scope="module")
def cdnow() -> pl.DataFrame:
    return pl.read_csv(CDNOW)


@pytest.fixture(scope="module")
def cdnow_fit(cdnow) -> clv.BgNbd:
    return clv.fit_bgnbd(cdnow["x"].to_numpy(), cdnow["t_x"].to_numpy(), cdnow["T"].to_numpy())


def test_bgnbd_reproduces_the_published_cdnow_fit(cdnow, cdnow_fit):
    """Fader, Hardie & Lee (2005), Marketing Science 24(2), section 5: on the 2,357 CDNOW
    customers over the 39-week calibration period the MLE is r = 0.243, alpha = 4.414,
    a = 0.793, b = 2.426 with LL = -9582.4 (also Hardie's note 004, "Implementing the BG/NBD
    Model for Customer Base Analysis in Excel")."""
    assert cdnow.height == 2357
    assert cdnow_fit.converged
    assert round(cdnow_fit.r, 3) == 0.243
    assert round(cdnow_fit.alpha, 3) == 4.414
    assert round(cdnow_fit.a, 3) == 0.793
    assert round(cdnow_fit.b, 3) == 2.426
    assert round(cdnow_fit.log_likelihood, 1) == -9582.4


def test_bgnbd_conditional_expectation_matches_hardies_worked_customer(cdnow_fit):
    """Hardie's note 004: customer 1 (x = 2, t_x = 30.43, T = 38.86) is expected to make 1.226
    purchases in the next 39 weeks."""
    one = (np.array([2.0]), np.array([30.43]), np.array([38.86]))
    assert round(float(clv.expected_purchases(cdnow_fit, 39, *one)[0]), 3) == 1.226


def test_gamma_gamma_reproduces_the_published_cdnow_fit(cdnow):
    """Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary Value": on the 946 CDNOW
    customers with repeat purchases, p = 6.25, q = 3.74, gamma = 15.44 (the optimum is
    15.4477, which the note prints truncated; lifetimes prints 15.45)."""
    repeat = cdnow.filter(pl.col("x") > 0)
    fit = clv.fit_gamma_gamma(repeat["x"].to_numpy(), repeat["zbar"].to_numpy())
    assert fit.customers == 946
    assert fit.converged
    assert round(fit.p, 2) == 6.25
    assert round(fit.q, 2) == 3.74
    assert fit.gamma == pytest.approx(15.44, abs=0.01)


# Parameters where the hypergeometric function has a closed form: with r = 1, b = 2, a = 2 and
# no repeat purchases, 2F1(1, 2; 3; z) = 2 (-ln(1 - z) - z) / z^2.
SIMPLE = clv.BgNbd(r=1.0, alpha=1.0, a=2.0, b=2.0, log_likelihood=0.0, converged=True)


def _hand_expected(t: float, age: float) -> float:
    """E[Y(t) | x = 0, T = age] for SIMPLE, written out: (a + b - 1) / (a - 1) = 3 times
    1 - ((alpha + T) / (alpha + T + t))^r * 2F1(1, 2; 3; z), z = t / (alpha + T + t)."""
    z = t / (1 + age + t)
    hyp = 2 * (-math.log(1 - z) - z) / z**2
    return 3 * (1 - (1 - z) * hyp)


def test_expected_purchases_on_a_hand_computed_case():
    # T = 1, t = 2: z = 0.5, 2F1 = 8 (ln 2 - 0.5) = 1.545177, E = 3 (1 - 0.5 * 1.545177)
    value = clv.expected_purchases(SIMPLE, 2.0, np.array([0.0]), np.array([0.0]), np.array([1.0]))
    assert float(value[0]) == pytest.approx(0.682234, abs=1e-6)
    assert float(value[0]) == pytest.approx(_hand_expected(2.0, 1.0), rel=1e-12)


def test_p_alive():
    # no repeat purchase: alive by assumption; x = 1, t_x = 1, T = 3 with SIMPLE:
    # 1 / (1 + a / (b + x - 1) * ((alpha + T) / (alpha + t_x))^(r + x)) = 1 / (1 + 1 * 2^2)
    alive = clv.p_alive(SIMPLE, np.array([0.0, 1.0]), np.array([0.0, 1.0]), np.array([3.0, 3.0]))
    assert alive.tolist() == pytest.approx([1.0, 0.2])


def test_clv_on_a_hand_computed_tiny_case():
    """Two months ahead at 12% a year: E[purchases] in month 1 and in month 2, each discounted,
    times the expected margin per order (no repeat orders: the population mean of the
    Gamma-Gamma model, p * gamma / (q - 1)) less the cost-to-serve per order."""
    week = clv.WEEKS_PER_MONTH
    age = 3.0
    month1 = _hand_expected(week, age)
    month2 = _hand_expected(2 * week, age) - month1
    discounted_by_hand = month1 / 1.12 ** (1 / 12) + month2 / 1.12 ** (2 / 12)
    total, discounted = clv.discounted_purchases(
        SIMPLE, 2, 0.12, np.array([0.0]), np.array([0.0]), np.array([age])
    )
    assert float(total[0]) == pytest.approx(month1 + month2, rel=1e-12)
    assert float(discounted[0]) == pytest.approx(discounted_by_hand, rel=1e-12)

    margin_fit = clv.GammaGamma(
        p=2.0, q=3.0, gamma=50.0, log_likelihood=0.0, converged=True, customers=0
    )
    margin = clv.expected_margin(margin_fit, np.array([0.0]), np.array([0.0]))
    assert float(margin[0]) == pytest.approx(50.0)  # 2 * 50 / (3 - 1)
    cost_per_order = 30.0
    assert float(discounted[0]) * (float(margin[0]) - cost_per_order) == pytest.approx(
        discounted_by_hand * 20.0, rel=1e-12
    )


def test_discounted_purchases_match_each_customers_own_expectation():
    """Customers sharing (repeat purchases, age) share the horizon terms, not t_x: each one's
    total equals its own eq. 10 at the horizon, in any order of the customers."""
    x = np.array([2.0, 0.0, 2.0, 5.0, 2.0, 0.0])
    t_x = np.array([10.0, 0.0, 30.0, 40.0, 10.0, 0.0])
    age = np.array([52.0, 20.0, 52.0, 60.0, 40.0, 52.0])
    fit = clv.BgNbd(r=0.5, alpha=8.0, a=0.8, b=2.5, log_likelihood=0.0, converged=True)
    total, discounted = clv.discounted_purchases(fit, 6, 0.1, x, t_x, age)
    for i in range(len(x)):
        own = clv.expected_purchases(fit, 6 * clv.WEEKS_PER_MONTH, x[i : i + 1], t_x[i : i + 1],
                                     age[i : i + 1])  # fmt: skip
        assert total[i] == pytest.approx(float(own[0]), rel=1e-12)
    assert total[0] != total[2]  # same x and age, other t_x
    assert (discounted < total).all()
    reverse = clv.discounted_purchases(fit, 6, 0.1, x[::-1], t_x[::-1], age[::-1])
    assert np.array_equal(reverse[0], total[::-1])


@pytest.mark.parametrize("customers", [0, 1, 7, 5_000])
def test_distinct_pairs_are_numpys_unique_pairs(customers):
    """discounted_purchases computes eq. 10 once per distinct (x, T): the pairs, their order and
    each customer's pair are np.unique(axis=1)'s."""
    rng = np.random.default_rng(customers)
    x = rng.integers(0, 6, customers).astype(float)
    t = rng.integers(1, 40, customers) / 7.0
    pairs, pair_of = np.unique(np.stack([x, t]), axis=1, return_inverse=True)
    got_x, got_t, got_of = clv._distinct_pairs(x, t)
    assert np.array_equal(got_x, pairs[0]) and np.array_equal(got_t, pairs[1])
    assert np.array_equal(got_of, pair_of.reshape(-1))
    assert np.array_equal(got_x[got_of], x) and np.array_equal(got_t[got_of], t)


def test_expected_margin_rules():
    """Shrunk towards the population mean with positive repeat margins; a non-positive mean
    stays as it is (the loss is not hidden); no repeat orders: the population mean."""
    fit = clv.GammaGamma(p=2.0, q=3.0, gamma=50.0, log_likelihood=0.0, converged=True, customers=0)
    margin = clv.expected_margin(fit, np.array([2.0, 3.0, 0.0]), np.array([10.0, -4.0, 0.0]))
    # (gamma + x * mean) * p / (p * x + q - 1) = (50 + 20) * 2 / (4 + 2) = 23.333...
    assert margin.tolist() == pytest.approx([70 * 2 / 6, -4.0, 50.0])
    # without a fit: own mean, and the repeat buyers' mean for the others
    unfitted = clv.expected_margin(None, np.array([2.0, 3.0, 0.0]), np.array([10.0, -4.0, 0.0]))
    assert unfitted.tolist() == pytest.approx([10.0, -4.0, 3.0])


def test_expected_margin_with_an_infinite_population_mean():
    """q <= 1: repeat buyers are still shrunk (p x + q - 1 > 0), newcomers get the mean of the
    repeat buyers' expected margins instead of the undefined p gamma / (q - 1)."""
    fit = clv.GammaGamma(p=2.0, q=0.5, gamma=50.0, log_likelihood=0.0, converged=True, customers=0)
    margin = clv.expected_margin(fit, np.array([1.0, 2.0, 0.0]), np.array([10.0, 20.0, 0.0]))
    # (50 + 10) * 2 / (2 + 0.5 - 1) = 80; (50 + 40) * 2 / (4 - 0.5) = 51.43; newcomer: mean
    assert margin.tolist() == pytest.approx([80.0, 180 / 3.5, (80.0 + 180 / 3.5) / 2])


def test_fit_sample_takes_every_kth_customer_up_to_the_cap():
    from pfd_pipeline.clv import FIT_SAMPLE, fit_sample

    assert list(fit_sample(5)) == [0, 1, 2, 3, 4]
    assert len(fit_sample(FIT_SAMPLE)) == FIT_SAMPLE
    big = fit_sample(200_000)
    assert len(big) == FIT_SAMPLE and big[1] - big[0] == 10
    assert len(fit_sample(FIT_SAMPLE + 1)) <= FIT_SAMPLE


@pytest.mark.parametrize(
    "log_params", [np.zeros(4), np.array([-1.4, 0.2, -0.3, 0.9]), np.array([2.0, -1.0, 3.0, -2.0])]
)
def test_bgnbd_gradient_is_the_likelihoods_slope(cdnow, log_params):
    """The fit's exact gradient (with respect to the log-parameters) agrees with central
    differences of the negative log-likelihood, away from the optimum and near it."""
    x, t_x, t = (cdnow[c].to_numpy().astype(float) for c in ("x", "t_x", "T"))
    t_x, t = t_x / 4, t / 4  # the fit's rescaling puts the longest age near 10

    def value(v):
        return clv._bgnbd_negative(*np.exp(v), x, t_x, t)[0]

    _, gradient = clv._bgnbd_negative(*np.exp(log_params), x, t_x, t)
    step = 1e-5
    central = [
        (value(log_params + step * e) - value(log_params - step * e)) / (2 * step)
        for e in np.eye(4)
    ]
    assert gradient == pytest.approx(central, rel=1e-5, abs=1e-3)


@pytest.mark.parametrize("log_params", [np.zeros(3), np.array([1.8, 1.3, 0.5])])
def test_gamma_gamma_gradient_is_the_likelihoods_slope(cdnow, log_params):
    repeat = cdnow.filter(pl.col("x") > 0)
    x = repeat["x"].to_numpy().astype(float)
    mean_value = repeat["zbar"].to_numpy() / 30

    def value(v):
        return clv._gamma_gamma_negative(*np.exp(v), x, mean_value)[0]

    _, gradient = clv._gamma_gamma_negative(*np.exp(log_params), x, mean_value)
    step = 1e-5
    central = [
        (value(log_params + step * e) - value(log_params - step * e)) / (2 * step)
        for e in np.eye(3)
    ]
    assert gradient == pytest.approx(central, rel=1e-5, abs=1e-3)


def _without_drop_out(seed: int, customers: int = 2000):
    """Customers who buy at gamma-distributed Poisson rates and never drop out (an NBD): the
    BG/NBD likelihood is then flat wherever a / (a + b), the drop-out probability, is near 0."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(1.5, 1 / 2.0, customers)  # purchases a week
    age = rng.uniform(5, 40, customers)
    x = rng.poisson(rate * age)
    recency = np.array(
        [a * rng.uniform(size=k).max() if k else 0.0 for a, k in zip(age, x, strict=True)]
    )
    return x.astype(float), recency, age


def _first_search_ends_on_the_plateau(monkeypatch) -> list:
    """Each fit's first L-BFGS-B run ends as it does where the machine's rounding stops its line
    search on the plateau (status 2, no success): whether it does depends on the CPU (OpenBLAS
    and the compiler pick other kernels, so the last bits of the likelihood differ), so the test
    makes it happen everywhere. Returns the list of runs, cleared to start a fit."""
    real = clv.minimize
    runs: list = []

    def minimize(*args, **kwargs):
        result = real(*args, **kwargs)
        if not runs:
            result.status, result.success = 2, False
            result.message = "ABNORMAL_TERMINATION_IN_LNSRCH"
        runs.append(result)
        return result

    monkeypatch.setattr(clv, "minimize", minimize)
    return runs


@pytest.mark.parametrize("seed", [1, 5])
def test_bgnbd_fit_on_a_plateau_converges(monkeypatch, seed):
    """Without drop-out in the data the BG/NBD likelihood is flat wherever a / (a + b) is near
    0. Where L-BFGS-B's line search ends on that plateau with no lower point (status 2; on some
    CPUs these two data sets do, on others not), it is started again without its curvature
    memory, and its steepest descent finds no lower point either, or converges: the fit is
    converged, with the same likelihood. Without the restart it is reported as not converged."""
    data = _without_drop_out(seed)
    fit = clv.fit_bgnbd(*data)
    assert fit.converged
    assert fit.a / (fit.a + fit.b) < 1e-6  # no drop-out, as generated
    runs = _first_search_ends_on_the_plateau(monkeypatch)
    restarted = clv.fit_bgnbd(*data)
    assert len(runs) == 2  # the first run, then one restart
    assert restarted.converged
    assert restarted.log_likelihood == pytest.approx(fit.log_likelihood, rel=1e-9)
    runs.clear()
    monkeypatch.setattr(clv, "RESTARTS", 0)
    once = clv.fit_bgnbd(*data)
    assert len(runs) == 1
    assert not once.converged


def test_a_failed_line_search_with_a_real_slope_is_not_converged():
    """A gradient pointing the wrong way makes every line search fail, also the restarted
    one; its size (not rounding) keeps the fit from being called converged."""

    def wrong(v):
        return float(np.sum((v - 3.0) ** 2)), -2.0 * (v - 3.0)

    result = clv._minimise(wrong, 2)
    assert result.status == 2
    assert not result.success
