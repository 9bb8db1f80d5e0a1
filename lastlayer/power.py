"""Planning a confirmatory run: the n that reaches a decision, either exit, with 80% power.

A pilot run gives each claim an effect and a spread. `plan(rule, data)` finds the smallest n per group at
which the declared rule, fed data like the pilot's, leaves "inconclusive" in at least `TARGET` of simulated
runs. Power here is the chance of *a* decision (reproduced or not reproduced), since a confirmatory run
exists to answer, whichever way.

How each kind of rule is simulated, at the pilot's estimates taken as the truth:
- t-interval rules (direction, magnitude, equivalence, noninferiority, threshold of a mean, per-run
  correlations): normal data. A sample's mean and standard deviation are drawn from their exact sampling
  distributions (normal and scaled chi), so tens of thousands of runs cost milliseconds; for two groups
  (Welch) each group is drawn so, and the interval uses Welch-Satterthwaite degrees of freedom as the rule
  does. For one side alone this power is the noncentral t's, which `tests/test_power.py` checks against
  `scipy.stats.nct`.
- rates (Clopper-Pearson): exact, the binomial probabilities of every count summed where the exact
  interval decides.
- best setting: each setting normal at its pilot mean and spread, the rule's Welch comparisons vectorised.
- bootstrap rules (median threshold, correlation of pairs): the pilot's units resampled to size n and the
  rule itself run, with fewer bootstrap replicates (a planning figure, not a decision).
No library computes the power of an interval rule with two exits (statsmodels' power classes answer one
test at one boundary), so the simulation is ours, and it is tested against direct simulation of the rule.
"""
from __future__ import annotations

import math
from dataclasses import replace
from typing import NamedTuple

import numpy as np
from scipy import stats as _st

from . import stats as S

TARGET = 0.8
N_MAX = 100_000          # beyond this n per group a claim is called undecidable at the pilot's effect
N_MAX_RESAMPLED = 500    # the cap for rules simulated whole (bootstrap): each evaluation runs the rule
SIMS = 20_000            # simulated runs per n for the vectorised models
SIMS_RESAMPLED = 100
PLAN_BOOT = 500          # bootstrap replicates inside a simulated run


def _t_model(rule, data, extra):
    """(kind, parameters) of the normal model behind a t-interval rule: one sample (of differences when paired)
    or two independent groups."""
    a = S._values(data[0], "a")
    b = data[1] if len(data) > 1 else None
    if b is None or extra.get("paired"):
        d = a if b is None else a - S._values(b, "b")
        return "one", (float(d.mean()), float(d.std(ddof=1)))
    b = S._values(b, "b")
    return "two", (float(a.mean()), float(a.std(ddof=1)), float(b.mean()), float(b.std(ddof=1)))


def _judge(rule):
    if isinstance(rule, S.Direction):
        return S.direction_judge(rule.expected, rule.min_effect)
    if isinstance(rule, S.Magnitude):
        return S.magnitude_judge(rule.target, rule.tolerance)
    if isinstance(rule, S.Equivalence):
        return S.equivalence_judge(rule.margin)
    if isinstance(rule, S.Noninferiority):
        return S.noninferiority_judge(rule.margin)
    return S.side_judge(rule.threshold, rule.side)


def _mean_sd(rng, mu, sd, n, sims):
    """Sample means and standard deviations of `sims` normal samples of size n, from their distributions."""
    m = mu + sd / math.sqrt(n) * rng.standard_normal(sims)
    s = sd * np.sqrt(rng.chisquare(n - 1, sims) / (n - 1))
    return m, s


def _t_power(kind, par, judge, alpha, n, rng, sims=SIMS):
    if kind == "one":
        mu, sd = par
        if sd == 0:
            return float(judge(mu, mu) != 0)
        m, s = _mean_sd(rng, mu, sd, n, sims)
        h = _st.t.ppf(1 - alpha / 2, n - 1) * s / math.sqrt(n)
        return float(np.mean(judge(m - h, m + h) != 0))
    ma, sa, mb, sb = par
    if sa == 0 and sb == 0:
        return float(judge(ma - mb, ma - mb) != 0)
    xa, va = _mean_sd(rng, ma, sa, n, sims)
    xb, vb = _mean_sd(rng, mb, sb, n, sims)
    h = _welch_half(va**2 / n, vb**2 / n, n, alpha)
    d = xa - xb
    return float(np.mean(judge(d - h, d + h) != 0))


def _welch_half(va, vb, n, alpha):
    """Half-width of Welch t-intervals from per-group variances of the mean (arrays), n per group."""
    se2 = va + vb
    with np.errstate(invalid="ignore", divide="ignore"):
        df = np.where(se2 > 0, se2**2 / ((va**2 + vb**2) / (n - 1)), 1.0)
    return _st.t.ppf(1 - alpha / 2, df) * np.sqrt(se2)


def _rate_power(rule, p, alpha, n):
    k = np.arange(n + 1)
    lo, hi = S._cp(k, np.full(n + 1, n), alpha)
    decided = S.side_judge(rule.threshold, rule.side)(lo, hi) != 0
    return float(_st.binom.pmf(k, n, p)[decided].sum())


def _best_power(rule, scores, alpha, n, rng, sims=SIMS // 4):
    claimed = {rule.claimed} if isinstance(rule.claimed, str) else set(rule.claimed)
    sign = 1.0 if rule.higher_is_better else -1.0
    keys = list(scores)
    par = [(float(np.mean(sign * np.asarray(scores[k], float))), float(np.std(scores[k], ddof=1))) for k in keys]
    draws = [_mean_sd(rng, mu, sd, n, sims) for mu, sd in par]
    M = np.stack([m for m, _ in draws], 1)
    V = np.stack([s**2 / n for _, s in draws], 1)
    inside = np.array([k in claimed for k in keys])
    a = alpha / inside.sum()
    rows = np.arange(sims)
    top = np.where(inside, M, -np.inf).argmax(1)
    rival = np.where(~inside, M, -np.inf).argmax(1)
    beats = np.ones(sims, bool)
    for j in np.flatnonzero(~inside):
        d = M[rows, top] - M[:, j]
        beats &= d - _welch_half(V[rows, top], V[:, j], n, a) > 0
    d = M[rows, top] - M[rows, rival]
    h = _welch_half(V[rows, top], V[rows, rival], n, a)
    code = S.direction_judge("greater", rule.min_effect)(d - h, d + h)
    code = np.where((code == 1) & ~beats, 0, code)
    return float(np.mean(code != 0))


def _resampled_power(rule, data, extra, n, rng, sims=SIMS_RESAMPLED):
    units = [np.asarray(x, float) for x in data]
    opts = {**rule.options(), **extra, "n_boot": PLAN_BOOT}
    fn = S._FUNCTIONS[rule.name]
    hits = 0
    for i in range(sims):
        idx = rng.integers(0, len(units[0]), n)
        try:
            d = fn(*(u[idx] for u in units), **{**opts, "seed": i})
        except ValueError:  # a resample with no spread (a constant correlation): counts as undecided
            continue
        hits += d.verdict != "inconclusive"
    return hits / sims


def power_function(rule: S.Rule, data: tuple, extra: dict | None = None):
    """(power(n), smallest n, largest n) for `rule` fed data like `data` (the pilot's)."""
    extra = dict(extra or {})
    alpha = float(extra.get("alpha", rule.alpha))
    if isinstance(rule, S.Rate):
        k, n0 = data
        return (lambda n: _rate_power(rule, k / n0, alpha, n)), 1, N_MAX
    if isinstance(rule, S.BestSetting):
        scores = {k: S._values(v, f"scores[{k!r}]") for k, v in data[0].items()}
        return (lambda n: _best_power(rule, scores, alpha, n, np.random.default_rng(0))), 2, N_MAX
    if isinstance(rule, S.Correlation) or (isinstance(rule, S.Threshold) and rule.statistic == "median"):
        return (lambda n: _resampled_power(rule, data, extra, n, np.random.default_rng(0))), 3, N_MAX_RESAMPLED
    kind, par = _t_model(rule, data, extra)
    judge = _judge(rule)
    return (lambda n: _t_power(kind, par, judge, alpha, n, np.random.default_rng(0))), 2, N_MAX


class Plan(NamedTuple):
    n: int | None   # n per group; None when no n up to `cap` reaches the target
    power: float    # the simulated power at n (at the cap when n is None)
    cap: int


def plan(rule: S.Rule, data: tuple, extra: dict | None = None, target: float = TARGET) -> Plan:
    """The smallest n per group whose simulated power to decide is at least `target`, and that power; n None
    when no n up to the cap reaches it (the pilot's estimate sits on a boundary of the claim).
    Geometric steps, then bisection between the last n short of the target and the first that reaches it;
    every n is simulated with the same random stream, so the power curve is smooth in n."""
    if not 0 < target < 1:
        raise ValueError(f"target power must be in (0, 1), got {target!r}")
    f, lo, cap = power_function(rule, data, extra)
    n, prev = lo, lo - 1
    while True:
        p = f(n)
        if p >= target:
            break
        if n >= cap:
            return Plan(None, p, cap)
        prev, n = n, min(cap, max(n + 1, int(n * 1.5)))
    while n - prev > 1:  # f(prev) < target <= f(n)
        mid = (prev + n) // 2
        pm = f(mid)
        if pm >= target:
            n, p = mid, pm
        else:
            prev = mid
    return Plan(n, p, cap)


def attach_plan(rule: S.Rule, decision: S.Decision, data: tuple, extra: dict) -> S.Decision:
    """The decision with its planned n for a confirmatory run (and, when inconclusive, as `n_needed`)."""
    try:
        n, p, cap = plan(rule, data, extra)
    except (S.TooFew, ValueError):
        return decision
    text = (f" For 80% power to decide, a confirmatory run needs n = {n} (simulated power {p:.0%})." if n else
            f" No n up to {cap} decides with 80% power "
            f"at this run's estimate (it sits on a boundary of the claim).")
    return replace(decision, n_planned=n, power=p, n_needed=n if decision.verdict == "inconclusive" else None,
                   detail=decision.detail + text)
