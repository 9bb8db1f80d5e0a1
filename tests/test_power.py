"""The planner (`lastlayer.power`) against direct simulation of the rules it plans for.

A design planned for 80% power must decide in 75-85% of simulated runs; every rule must reach both exits at its
planned n: a true effect of the claim's size gives `reproduced`, a contradicting one `not reproduced`, each in at
least 80% of runs."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st

from lastlayer import power as P
from lastlayer import stats as S


def exact(mu, sd, n=8):
    """A pilot sample whose mean and standard deviation are exactly mu and sd."""
    z = np.random.default_rng(0).standard_normal(n)
    return mu + sd * (z - z.mean()) / z.std(ddof=1)


def decided_share(rule, draw, n, runs=1500, extra=None, verdict=None):
    """Share of `runs` simulated runs of size n that the rule decides (or that end in `verdict`)."""
    rng = np.random.default_rng(123)
    hits = 0
    for _ in range(runs):
        v = S._FUNCTIONS[rule.name](*draw(rng, n), **{**rule.options(), **(extra or {})}).verdict
        hits += (v != "inconclusive") if verdict is None else (v == verdict)
    return hits / runs


# (rule, pilot data, extra, how to draw a run of size n from the same truth)
DESIGNS = {
    "one-sample direction": (S.Direction(min_effect=0.3), (exact(0.4, 1.0),), {},
                             lambda r, n: (r.normal(0.4, 1.0, n),)),
    "welch direction": (S.Direction(expected="less", min_effect=0.2), (exact(0.0, 1.0), exact(0.3, 0.5)), {},
                        lambda r, n: (r.normal(0.0, 1.0, n), r.normal(0.3, 0.5, n))),
    "paired equivalence": (S.Equivalence(margin=0.5), (exact(0.2, 1.0), np.zeros(8)), {"paired": True},
                           lambda r, n: (r.normal(0.2, 1.0, n), np.zeros(n))),
    "magnitude": (S.Magnitude(target=1.0, tolerance=0.5), (exact(0.8, 1.2),), {},
                  lambda r, n: (r.normal(0.8, 1.2, n),)),
}


@pytest.mark.parametrize("name", sorted(DESIGNS))
def test_a_design_planned_for_80_percent_decides_in_75_to_85_percent(name):
    rule, pilot, extra, draw = DESIGNS[name]
    n, pw, _ = P.plan(rule, pilot, extra)
    assert n is not None and n >= 10, (name, n)  # large enough that one more run moves power by little
    share = decided_share(rule, draw, n, extra=extra)
    assert 0.75 <= share <= 0.85, (name, n, pw, share)
    assert abs(share - pw) < 0.05


def test_best_setting_plan_matches_simulation():
    rule = S.BestSetting(claimed=("a",), min_effect=0.02)
    pilot = ({"a": exact(0.80, 0.03, 4), "b": exact(0.79, 0.03, 4), "c": exact(0.70, 0.03, 4)},)
    n, pw, _ = P.plan(rule, pilot)
    assert n >= 10
    share = decided_share(rule, lambda r, m: ({"a": r.normal(0.80, 0.03, m), "b": r.normal(0.79, 0.03, m),
                                              "c": r.normal(0.70, 0.03, m)},), n, runs=800)
    assert 0.75 <= share <= 0.85 and abs(share - pw) < 0.05, (n, pw, share)


def test_rate_power_is_the_exact_binomial_sum():
    rule = S.Rate(threshold=0.5, side="above")
    f, _, _ = P.power_function(rule, (13, 20))  # pilot rate 0.65
    n = 60
    k = np.arange(n + 1)
    by_hand = sum(st.binom.pmf(j, n, 0.65) for j in k
                  if S.rate(int(j), n, threshold=0.5).verdict != "inconclusive")
    assert f(n) == pytest.approx(by_hand, abs=1e-9)
    m, pw, _ = P.plan(rule, (13, 20))
    assert pw >= 0.8 and f(m - 1) < 0.8 or m == 1


def test_one_sided_power_agrees_with_the_noncentral_t():
    # far from the not-reproduced exit, deciding is showing lo > 0: the one-sided t-test's power
    rule, mu, sd, n = S.Direction(), 0.5, 1.0, 20
    f, _, _ = P.power_function(rule, (exact(mu, sd),))
    tcrit = st.t.ppf(0.975, n - 1)
    nct = st.nct.sf(tcrit, n - 1, mu * math.sqrt(n) / sd) + st.nct.cdf(-tcrit, n - 1, mu * math.sqrt(n) / sd)
    assert f(n) == pytest.approx(nct, abs=0.01)


# every rule, a true effect of the claim's size and a contradicting one: (rule, truth that holds, one that
# contradicts), each a function drawing a run of size n, and the pilot it is planned from
def normal(mu, sd=1.0):
    return (lambda r, n: (r.normal(mu, sd, n),)), (exact(mu, sd),)


def two(mu_a, mu_b, sd=1.0):
    return (lambda r, n: (r.normal(mu_a, sd, n), r.normal(mu_b, sd, n))), (exact(mu_a, sd), exact(mu_b, sd))


def settings(mu_a, mu_b, sd=0.05):
    draw = lambda r, n: ({"a": r.normal(mu_a, sd, n), "b": r.normal(mu_b, sd, n), "c": r.normal(0.0, sd, n)},)
    return draw, ({"a": exact(mu_a, sd, 4), "b": exact(mu_b, sd, 4), "c": exact(0.0, sd, 4)},)


def pairs(rho):
    cov = [[1, rho], [rho, 1]]
    draw = lambda r, n: tuple(r.multivariate_normal([0, 0], cov, n).T)
    return draw, draw(np.random.default_rng(5), 400)  # a large pilot: its resamples stand for the truth


EXITS = {
    "direction": (S.Direction(min_effect=0.5), normal(1.0), normal(0.0)),
    "magnitude": (S.Magnitude(target=1.0, tolerance=0.5), normal(1.0), normal(0.0)),
    "equivalence": (S.Equivalence(margin=0.5), normal(0.0), normal(1.0)),
    "noninferiority": (S.Noninferiority(margin=0.5), two(0.0, 0.0), two(-1.0, 0.0)),
    "threshold": (S.Threshold(threshold=0.5), normal(1.0), normal(0.0)),
    "correlation_from_runs": (S.CorrelationFromRuns(threshold=0.3), normal(0.6, 0.2), normal(0.0, 0.2)),
    "best_setting": (S.BestSetting(claimed=("a",), min_effect=0.05), settings(1.0, 0.9), settings(0.9, 0.9)),
    "correlation": (S.Correlation(threshold=0.3, n_boot=500), pairs(0.8), pairs(-0.3)),
}


def test_every_rule_is_covered():
    assert set(EXITS) | {"rate"} == set(S.RULES)


@pytest.mark.parametrize("name", sorted(EXITS))
@pytest.mark.parametrize("truth", ["holds", "contradicts"])
def test_every_rule_reaches_each_exit_at_its_planned_n(name, truth):
    rule, holds, contradicts = EXITS[name]
    draw, pilot = holds if truth == "holds" else contradicts
    n, _, _ = P.plan(rule, pilot)
    assert n is not None, (name, truth)
    expected = "reproduced" if truth == "holds" else "not reproduced"
    runs = 200 if name == "correlation" else 1500
    # at least 80%, less two Monte Carlo standard errors of the share (the plan sits at 80% by construction)
    assert decided_share(rule, draw, n, runs=runs, verdict=expected) >= 0.8 - 2 * math.sqrt(0.16 / runs), \
        (name, truth, n)


@pytest.mark.parametrize("p, expected", [(0.8, "reproduced"), (0.2, "not reproduced")])
def test_rate_reaches_each_exit_at_its_planned_n(p, expected):
    rule = S.Rate(threshold=0.5)
    n, _, _ = P.plan(rule, (int(p * 10), 10))
    rng = np.random.default_rng(3)
    v = [S.rate(int(rng.binomial(n, p)), n, threshold=0.5).verdict for _ in range(2000)]
    assert np.mean([x == expected for x in v]) >= 0.8


def test_an_estimate_on_a_boundary_has_no_plan_and_says_so():
    decide = lambda rule, x: P.attach_plan(rule, rule.decide(x), (x,), {})
    d = decide(S.Direction(), exact(0.0, 1.0))  # no min_effect, no effect: the interval straddles 0 forever
    assert d.n_planned is None and "No n up to" in d.detail
    # the same data under a declared smallest effect: a finite n decides ('smaller than 0.5')
    d = decide(S.Direction(min_effect=0.5), exact(0.0, 1.0))
    assert d.n_planned is not None and d.n_planned < 100 and f"n = {d.n_planned}" in d.detail


def test_planned_n_is_shown_as_n_needed_only_when_inconclusive():
    rule = S.Direction(min_effect=0.2)
    wide = P.attach_plan(rule, rule.decide(exact(0.3, 1.0, 4)), (exact(0.3, 1.0, 4),), {})
    assert wide.verdict == "inconclusive" and wide.n_needed == wide.n_planned > 4
    clear = P.attach_plan(rule, rule.decide(exact(3.0, 0.1, 4)), (exact(3.0, 0.1, 4),), {})
    assert clear.verdict == "reproduced" and clear.n_needed is None and clear.n_planned is not None
