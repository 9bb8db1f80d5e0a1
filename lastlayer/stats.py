"""Decision rules: from measurements to a verdict on a claim, through a confidence interval.

Every rule turns data into an interval at level 1 - alpha and reads the verdict off where the interval
lies relative to the claim's boundaries. A point estimate alone never decides: an interval that straddles
a boundary gives "inconclusive". Every rule has two exits at a finite n: a one-sided claim declares the smallest
effect that counts (`min_effect`), so a precise estimate below it is "not reproduced", never an endless
"inconclusive". `lastlayer.power` plans, from a run's own data, the n that reaches either exit with 80% power;
`Claim.decide` attaches that plan to every decision. Pure numpy/scipy, so the rules can be tested on synthetic
data in seconds.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import ClassVar, Sequence

import numpy as np
from scipy import stats as _st

from .numbers import level, unit_scale

VERDICTS = ("reproduced", "partly", "inconclusive", "not reproduced", "not testable")
# How `combine` reads the parts of a claim, in the words the book prints under such a claim.
COMBINE_RULE = ("The claim is reproduced when every part is; partly when some parts are reproduced and some "
                "not; not reproduced when a part is not reproduced and none is reproduced; not testable when no "
                "part could be measured; otherwise inconclusive.")


def _sig(x):
    return None if x is None else float(f"{float(x):.6g}")


@dataclass(frozen=True)
class Decision:
    verdict: str
    estimate: float | None
    interval: tuple[float, float] | None
    n: int
    detail: str
    n_needed: int | None = None   # inconclusive only: the planned n (`n_planned`) that would decide
    parts: tuple["Decision", ...] = ()
    label: str = ""  # what this part of a claim measured (`claims.decide_parts`); empty for a whole claim
    n_planned: int | None = None  # n per group with 80% power to reach either exit, planned from this data
    #                               (`lastlayer.power.plan`); None when no n up to the planner's cap does
    power: float | None = None    # the simulated power at n_planned

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {self.verdict!r}; expected one of {VERDICTS}")

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "estimate": _sig(self.estimate),
                "interval": None if self.interval is None else [_sig(v) for v in self.interval],
                "n": int(self.n), "n_needed": self.n_needed, "detail": self.detail,
                "n_planned": self.n_planned, "power": None if self.power is None else round(float(self.power), 3),
                "parts": [p.to_dict() for p in self.parts], **({"label": self.label} if self.label else {})}


# ---------------------------------------------------------------- input checks and intervals
class TooFew(ValueError):
    """Fewer measurements than a rule needs: the claim cannot be decided from this run (`claims.Missing`)."""


def _values(x, name="values", min_n=2, ndim=(1,)) -> np.ndarray:
    arr = np.asarray(x, dtype=float)
    if arr.ndim not in ndim:
        raise ValueError(f"{name}: expected {' or '.join(map(str, ndim))}-D values, got shape {arr.shape}")
    if len(arr) < min_n:
        raise TooFew(f"{name}: need at least {min_n} values, got {len(arr)}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains non-finite values (nan or inf)")
    return arr


def _alpha(alpha):
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    return float(alpha)


def _choice(value, options, name):
    if value not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value


def _level(alpha):
    return level(alpha)


def _num(x, name, low=-math.inf, strict=False):
    """A finite real option, optionally bounded below (strictly or not)."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {x!r}") from None
    if not math.isfinite(x) or x < low or (strict and x == low):
        raise ValueError(f"{name} must be finite and {'>' if strict else '>='} {low:g}, got {x!r}")
    return x


def mean_interval(a, b=None, *, paired=False, alpha=0.05):
    """t-interval for mean(a), mean(a - b) (paired) or mean(a) - mean(b) (Welch).

    Returns (estimate, (lo, hi), n, sd_for_power), where sd_for_power is the spread per unit of n:
    the standard error at n per group is about sd_for_power / sqrt(n) (sqrt(var_a + var_b) for Welch).
    """
    alpha = _alpha(alpha)
    a = _values(a, "a")
    if b is None or paired:
        if paired:
            if b is None:
                raise ValueError("paired=True needs b")
            b = _values(b, "b")
            if len(a) != len(b):
                raise ValueError(f"paired samples need equal lengths, got {len(a)} and {len(b)}")
            a = a - b
        n, est, sd = len(a), float(a.mean()), float(a.std(ddof=1))
        se, df = sd / math.sqrt(n), n - 1
    else:
        b = _values(b, "b")
        va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
        n, est, se = min(len(a), len(b)), float(a.mean() - b.mean()), math.sqrt(va + vb)
        sd = math.sqrt(a.var(ddof=1) + b.var(ddof=1))
        # Welch-Satterthwaite degrees of freedom; undefined (0/0) only when both variances vanish
        df = se**4 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1)) if se > 0 else 1.0
    if se == 0:  # degenerate: no spread, the interval is the point
        return est, (est, est), n, 0.0
    h = float(_st.t.ppf(1 - alpha / 2, df)) * se
    return est, (est - h, est + h), n, sd


_FAST = {np.mean, np.median, np.std, np.var, np.min, np.max, np.sum}


def _boot_stats(values, statistic, rng, n_boot):
    idx = rng.integers(0, len(values), size=(n_boot, len(values)))
    if statistic in _FAST and values.ndim == 1:  # numpy reductions vectorise over resamples
        return np.asarray(statistic(values[idx], axis=1), dtype=float)
    return np.array([float(statistic(values[i])) for i in idx])


def _boot_iv(reps, est, n, alpha, basic=False):
    """Bootstrap interval from replicates, at percentile levels widened for small n.

    The plain percentile interval undercovers with a handful of runs (it uses z and the /n variance);
    Hesterberg's expanded percentile picks levels at sqrt(n/(n-1)) * t_{n-1} instead, which tends to
    the plain one as n grows. `basic` reflects the quantiles around the estimate (2*est - q), which
    removes the first-order bias of statistics such as a maximum of means."""
    reps = reps[np.isfinite(reps)]  # e.g. a correlation of a constant resample: dropped, not counted
    if len(reps) == 0:
        raise ValueError("bootstrap: no finite replicate of the statistic")
    a = 2 * _st.norm.sf(math.sqrt(n / (n - 1)) * _st.t.ppf(1 - alpha / 2, n - 1))
    lo, hi = (float(q) for q in np.quantile(reps, [a / 2, 1 - a / 2]))
    return (2 * est - hi, 2 * est - lo) if basic else (lo, hi)


def _n_boot(n_boot):
    if not (isinstance(n_boot, (int, np.integer)) and n_boot >= 100):
        raise ValueError(f"n_boot must be an integer >= 100, got {n_boot!r}")
    return int(n_boot)


def bootstrap_interval(values, statistic=np.median, *, alpha=0.05, n_boot=10000, seed=0):
    """Percentile bootstrap over the units (elements of a 1-D array, rows of a 2-D one).
    Returns (estimate, (lo, hi), n, se_boot)."""
    alpha, values, n_boot = _alpha(alpha), _values(values, ndim=(1, 2)), _n_boot(n_boot)
    reps, est = _boot_stats(values, statistic, np.random.default_rng(seed), n_boot), float(statistic(values))
    return est, _boot_iv(reps, est, len(values), alpha), len(values), float(np.nanstd(reps))


def bootstrap_diff(a, b, statistic=np.mean, *, alpha=0.05, n_boot=10000, seed=0):
    """Percentile bootstrap of statistic(a) - statistic(b), each group resampled independently.
    Returns (estimate, (lo, hi), min(n_a, n_b), se_boot)."""
    alpha, a, b = _alpha(alpha), _values(a, "a", ndim=(1, 2)), _values(b, "b", ndim=(1, 2))
    rng, n_boot, n = np.random.default_rng(seed), _n_boot(n_boot), min(len(a), len(b))
    reps = _boot_stats(a, statistic, rng, n_boot) - _boot_stats(b, statistic, rng, n_boot)
    est = float(statistic(a)) - float(statistic(b))
    return est, _boot_iv(reps, est, n, alpha), n, float(np.nanstd(reps))


def _cp(k, n, alpha):
    """Clopper-Pearson bounds, vectorised over k and n (fractional k: the continuous extension)."""
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore"):  # beta(0, .) at k = 0 or k = n is nan; np.where discards it
        lo = np.where(k > 0, _st.beta.ppf(alpha / 2, k, n - k + 1), 0.0)
        hi = np.where(k < n, _st.beta.ppf(1 - alpha / 2, k + 1, n - k), 1.0)
    return lo, hi


def exact_rate_interval(k, n, alpha=0.05):
    """Clopper-Pearson interval for a binomial rate k / n."""
    alpha, k, n = _alpha(alpha), _num(k, "k"), _num(n, "n")
    if not (n >= 1 and 0 <= k <= n):
        raise ValueError(f"need 0 <= k <= n and n >= 1, got k={k!r}, n={n!r}")
    lo, hi = _cp(k, n, alpha)
    return float(lo), float(hi)


# ---------------------------------------------------------------- from interval to verdict
def _decide(judge, est, iv, n, alpha, what, claim):
    verdict = _VERDICT[int(judge(*iv))]
    detail = (f"{what} {est:.4g}, {_level(alpha)} interval [{iv[0]:.4g}, {iv[1]:.4g}] (n = {n}) "
              f"against the claim {claim}: {verdict}.")
    return Decision(verdict, est, iv, n, detail)


# Judges read an interval (lo, hi), scalars or arrays alike, as 1 (reproduced), -1 (not reproduced) or 0
# (inconclusive): the rule functions and the planner (`lastlayer.power`) use the same ones.
_VERDICT = {1: "reproduced", -1: "not reproduced", 0: "inconclusive"}


def _code(yes, no):
    """`yes` and `no` are boolean (arrays); `no` wins where both hold (see `direction_judge`)."""
    return np.where(no, -1, np.where(yes, 1, 0))


def direction_judge(expected="greater", min_effect=0.0):
    """On the expected side e = s * effect: not reproduced when the interval lies entirely below `min_effect`
    (the effect, if any, is smaller than the smallest that counts; with min_effect 0, entirely at or below 0);
    reproduced when it lies entirely above 0 and is not below min_effect. Every interval narrower than
    min_effect decides, so a claim with min_effect > 0 reaches an exit at a finite n whatever the effect."""
    s = 1.0 if expected == "greater" else -1.0

    def judge(lo, hi):
        elo, ehi = np.minimum(s * lo, s * hi), np.maximum(s * lo, s * hi)
        return _code(elo > 0, ehi < min_effect if min_effect else ehi <= 0)
    return judge


def magnitude_judge(target, tolerance):
    """Reproduced when the interval lies inside target +- tolerance (and excludes 0 on target's side); not
    reproduced when it lies wholly outside that band; straddling an edge is inconclusive."""
    blo, bhi = target - tolerance, target + tolerance

    def judge(lo, hi):
        inside = (lo >= blo) & (hi <= bhi) & ((lo > 0) if target > 0 else (hi < 0))
        return _code(inside, (hi < blo) | (lo > bhi))
    return judge


def equivalence_judge(margin):
    return lambda lo, hi: _code((-margin < lo) & (hi < margin), (lo >= margin) | (hi <= -margin))


def noninferiority_judge(margin):
    return lambda lo, hi: _code(lo > -margin, hi < -margin)


def side_judge(threshold, side="above"):
    if _choice(side, ("above", "below"), "side") == "above":
        return lambda lo, hi: _code(lo > threshold, hi <= threshold)
    return lambda lo, hi: _code(hi < threshold, lo >= threshold)


def _effect(a, b, paired, alpha):
    est, iv, n, sd = mean_interval(a, b, paired=paired, alpha=alpha)
    what = "mean" if b is None else ("mean paired difference" if paired else "difference of means (Welch)")
    return est, iv, n, sd, what


def direction(a, b=None, *, paired=False, expected="greater", min_effect=0.0, alpha=0.05):
    """Claim a > b (or a < b; with b None, mean(a) > 0 or < 0), by at least `min_effect` to count."""
    s = {"greater": 1.0, "less": -1.0}[_choice(expected, ("greater", "less"), "expected")]
    min_effect = _num(min_effect, "min_effect", 0.0)
    est, iv, n, sd, what = _effect(a, b, paired, alpha)
    claim = f"{'>' if s > 0 else '<'} 0"
    if min_effect:
        claim += f" (not reproduced if entirely {'below' if s > 0 else 'above'} {s * min_effect:g})"
    return _decide(direction_judge(expected, min_effect), est, iv, n, alpha, what, claim)


def magnitude(a, b=None, *, paired=False, target, tolerance, alpha=0.05):
    """Claim the effect is about `target`: reproduced when the interval lies inside target +- tolerance;
    not reproduced when it lies wholly outside that band."""
    target, tolerance = _num(target, "target"), _num(tolerance, "tolerance", 0.0, strict=True)
    if target == 0:
        raise ValueError("magnitude needs a non-zero target; for 'no effect' use equivalence")
    est, iv, n, sd, what = _effect(a, b, paired, alpha)
    return _decide(magnitude_judge(target, tolerance), est, iv, n, alpha, what,
                   f"inside [{target - tolerance:g}, {target + tolerance:g}]")


def equivalence(a, b=None, *, paired=False, margin, alpha=0.05):
    """Claim no meaningful difference, |effect| < margin. With a (1 - alpha) interval this is TOST at
    alpha/2 per side: conservative, so 'reproduced' is never easier than the stated alpha."""
    margin = _num(margin, "margin", 0.0, strict=True)
    est, iv, n, sd, what = _effect(a, b, paired, alpha)
    return _decide(equivalence_judge(margin), est, iv, n, alpha, what, f"inside (-{margin:g}, {margin:g})")


def noninferiority(a, b, *, paired=False, margin, alpha=0.05):
    """Claim a is not worse than b by more than margin (higher is better: flip signs otherwise)."""
    if b is None:
        raise ValueError("noninferiority needs both a and b")
    margin = _num(margin, "margin", 0.0)
    est, iv, n, sd, what = _effect(a, b, paired, alpha)
    return _decide(noninferiority_judge(margin), est, iv, n, alpha, what, f"above -{margin:g}")


def threshold(values, *, threshold, side="above", statistic="mean", alpha=0.05, n_boot=10000, seed=0):
    """Claim the mean (t-interval) or median (bootstrap) of values is above (below) threshold."""
    threshold = _num(threshold, "threshold")
    judge = side_judge(threshold, side)
    if _choice(statistic, ("mean", "median"), "statistic") == "mean":
        est, iv, n, _ = mean_interval(values, alpha=alpha)
    else:
        est, iv, n, _ = bootstrap_interval(values, np.median, alpha=alpha, n_boot=n_boot, seed=seed)
    return _decide(judge, est, iv, n, alpha, statistic, f"{side} {threshold:g}")


_threshold = threshold  # the rules below take a keyword named `threshold`, which hides the function


def rate(k, n, *, threshold, side="above", alpha=0.05):
    """Claim the rate of events k / n is above (below) threshold, on the exact Clopper-Pearson interval."""
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (k, n)):
        raise ValueError(f"k and n must be integers, got {k!r}, {n!r}")
    if not 0 < _num(threshold, "threshold") < 1:
        raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
    iv = exact_rate_interval(k, n, alpha)
    verdict, p = _VERDICT[int(side_judge(threshold, side)(*iv))], k / n
    detail = (f"rate {k}/{n} = {p:.4g}, exact {_level(alpha)} interval [{iv[0]:.4g}, {iv[1]:.4g}] against "
              f"the claim {side} {threshold:g}: {verdict}.")
    return Decision(verdict, p, iv, int(n), detail)


def correlation(x, y, *, threshold, side="above", method="spearman", alpha=0.05, n_boot=10000, seed=0):
    """Claim the correlation of paired x, y is above (below) threshold; bootstrap over the pairs."""
    x, y = _values(x, "x", min_n=3), _values(y, "y", min_n=3)
    if len(x) != len(y):
        raise ValueError(f"x and y must be paired (equal lengths), got {len(x)} and {len(y)}")
    if not -1 <= _num(threshold, "threshold") <= 1:
        raise ValueError(f"threshold must be in [-1, 1], got {threshold!r}")
    judge, alpha, n_boot = side_judge(threshold, side), _alpha(alpha), _n_boot(n_boot)
    _choice(method, ("spearman", "pearson"), "method")
    idx = np.random.default_rng(seed).integers(0, len(x), size=(n_boot, len(x)))
    xs, ys = x[idx], y[idx]
    if method == "spearman":  # Spearman = Pearson on ranks, computed per resample
        xs, ys = _st.rankdata(xs, axis=1), _st.rankdata(ys, axis=1)
        ex, ey = _st.rankdata(x), _st.rankdata(y)
    else:
        ex, ey = x, y
    xs, ys = xs - xs.mean(1, keepdims=True), ys - ys.mean(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        reps = (xs * ys).sum(1) / np.sqrt((xs**2).sum(1) * (ys**2).sum(1))
        est = float(np.corrcoef(ex, ey)[0, 1])
    if not math.isfinite(est):
        raise ValueError("correlation is undefined: x or y is constant")
    iv = _boot_iv(reps, est, len(x), alpha)
    return _decide(judge, est, iv, len(x), alpha, f"{method} correlation", f"{side} {threshold:g}")


def correlation_from_runs(rhos, *, threshold, side="above", alpha=0.05):
    """Claim the mean of per-run correlations is above (below) threshold (t-interval over runs)."""
    d = _threshold(rhos, threshold=threshold, side=side, statistic="mean", alpha=alpha)
    detail = d.detail.replace("mean", "mean per-run correlation", 1)
    return Decision(d.verdict, d.estimate, d.interval, d.n, detail)


def best_setting(scores, *, claimed, higher_is_better=True, min_effect=0.0, alpha=0.05):
    """Claim the best setting is one of `claimed`, by Welch t-intervals at 1 - alpha/k (k claimed settings,
    since the data choose which claimed setting is tried: the one with the best mean, `top`).

    reproduced: `top` beats every other setting, each Welch interval of top minus it entirely above 0, and
    the interval of top minus the best other setting is not entirely below `min_effect`;
    not reproduced: that interval of top minus the best other lies entirely below `min_effect` (with 0: at or
    below 0): the claimed setting is not better by the smallest margin that counts.
    The interval shown is that of top minus the best other, at the level that decided.
    (A bootstrap of the best of several means is too optimistic at the 3 to 10 runs per setting we have:
    it said 'reproduced' for tied settings several times more often than alpha at n = 3.)"""
    alpha, claimed = _alpha(alpha), {claimed} if isinstance(claimed, str) else set(claimed)
    if not isinstance(scores, dict) or len(scores) < 2:
        raise ValueError("scores must be a dict of at least two settings")
    if claimed - set(scores):
        raise ValueError(f"claimed settings not in scores: {sorted(map(str, claimed - set(scores)))}")
    if not claimed or claimed == set(scores):
        raise ValueError("claimed must name some settings but not all of them")
    min_effect = _num(min_effect, "min_effect", 0.0)
    sign = 1.0 if higher_is_better else -1.0
    vals = {k: sign * _values(v, f"scores[{k!r}]") for k, v in scores.items()}
    inside, outside = [k for k in vals if k in claimed], [k for k in vals if k not in claimed]
    a = alpha / len(inside)
    top = max(inside, key=lambda k: vals[k].mean())
    rival = max(outside, key=lambda k: vals[k].mean())
    est, iv, n, _ = mean_interval(vals[top], vals[rival], alpha=a)
    beats_all = all(mean_interval(vals[top], vals[o], alpha=a)[1][0] > 0 for o in outside)
    code = int(direction_judge("greater", min_effect)(*iv))
    if code == 1 and not beats_all:
        code = 0
    verdict = _VERDICT[code]
    detail = (f"best claimed ({top}) minus best other ({rival}) {est:.4g}, {_level(a)} Welch t-interval "
              f"[{iv[0]:.4g}, {iv[1]:.4g}] (n = {n})"
              + (f"; {top} against every other setting: {'each' if beats_all else 'not each'} interval above 0"
                 if len(outside) > 1 else "") + f": {verdict}.")
    return Decision(verdict, est, iv, n, detail)


def combine(parts: Sequence[Decision], *, how="all"):
    """A claim of several parts that must all hold."""
    _choice(how, ("all",), "how")
    parts = tuple(parts)
    if not parts or not all(isinstance(p, Decision) for p in parts):
        raise ValueError("combine needs at least one Decision")
    v = [p.verdict for p in parts]
    yes = any(x in ("reproduced", "partly") for x in v)
    no = any(x in ("not reproduced", "partly") for x in v)
    if all(x == "reproduced" for x in v):
        verdict = "reproduced"
    elif yes and no:
        verdict = "partly"
    elif no:  # one contradicted part contradicts a conjunction, whatever the others say
        verdict = "not reproduced"
    elif all(x == "not testable" for x in v):
        verdict = "not testable"
    else:
        verdict = "inconclusive"
    planned = [p.n_planned for p in parts if p.verdict != "not testable"]
    n_planned = max(planned) if planned and None not in planned else None  # the n that every part needs
    need = None
    if verdict == "inconclusive":  # the n that would decide the parts still open
        needs = [p.n_needed for p in parts if p.verdict == "inconclusive"]
        need = max(needs) if needs and None not in needs else None
    counts = ", ".join(f"{v.count(x)} {x}" for x in VERDICTS if x in v)
    detail = f"{len(parts)} parts that must all hold: {counts}; so {verdict}."
    n = min((p.n for p in parts if p.verdict != "not testable"), default=0)  # an untestable part has no n
    power = min((p.power for p in parts if p.power is not None), default=None)
    return Decision(verdict, None, None, n, detail, need, parts, n_planned=n_planned, power=power)


def bonferroni(alpha, k):
    """Per-test alpha when a claim runs k tests and must keep its overall error at alpha."""
    if not (isinstance(k, (int, np.integer)) and k >= 1):
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return _alpha(alpha) / k


def not_testable(reason: str) -> Decision:
    if not (isinstance(reason, str) and reason.strip()):
        raise ValueError("not_testable needs a reason")
    return Decision("not testable", None, None, 0, reason)


# ---------------------------------------------------------------- rules as objects: one sentence, one arithmetic
_OTHER = {"above": "at or below", "below": "at or above"}


def _g(x):
    return f"{x:g}" if isinstance(x, (int, float)) else str(x)


def _u(x, unit: str) -> str:
    """A declared boundary in the unit the book writes the claim's numbers in ('' leaves it as declared): the
    declared value scaled, at full precision, so 0.01 in points reads '1 point'."""
    if not unit or not isinstance(x, (int, float)) or x == 0:
        return _g(x)
    scale, suffix = unit_scale(unit)
    v = round(x * scale, 10)
    return f"{v:g}{' point' if suffix == ' points' and abs(v) == 1 else suffix}"


@dataclass(frozen=True)
class Rule:
    """A decision rule with its declared parameters. `decide` runs the rule's function on measurements and
    `describe` writes its criterion from the same fields, so the sentence a reader sees names the interval and
    the level that decided. Subclasses declare the function's keyword options as fields; `level` may be given
    as text ("1 - 0.05/k") where a caller divides alpha among the parts of a claim. `unit` (see
    `lastlayer.numbers.UNITS`) writes the declared boundaries in the unit the book writes the estimate in, so a
    margin of 0.01 reads "1 point" beside an estimate in points; the arithmetic is the declared one."""
    alpha: float = 0.05
    name: ClassVar[str] = ""
    interval: ClassVar[str] = "t-interval"  # what kind of interval decides

    def options(self) -> dict:
        return asdict(self)

    def decide(self, *data, **extra) -> Decision:
        """The rule on measurements; `extra` adds options the declaration leaves open (paired, seed) and may
        lower alpha for one part of a Bonferroni-corrected claim, never change a declared option."""
        options = self.options()
        clash = set(extra) & set(options) - {"alpha"}
        if clash:
            raise ValueError(f"{self.name}: {sorted(clash)} are declared and cannot be changed when deciding")
        return _FUNCTIONS[self.name](*data, **{**options, **extra})

    def level(self, alpha_text: str | None = None) -> str:
        return alpha_text or _level(self.alpha)

    def describe(self, alpha_text: str | None = None, unit: str = "") -> str:
        raise NotImplementedError

    def _sides(self, what: str, yes: str, no: str, alpha_text) -> str:
        return (f"Reproduced if the {self.level(alpha_text)} {what} lies {yes}; not reproduced if it lies {no}; "
                f"otherwise inconclusive.")


@dataclass(frozen=True)
class Direction(Rule):
    expected: str = "greater"
    min_effect: float = 0.0
    name: ClassVar[str] = "direction"

    def describe(self, alpha_text=None, unit=""):
        up, m = self.expected == "greater", self.min_effect
        if not m:
            return self._sides(f"{self.interval} of the effect", f"entirely {'above' if up else 'below'} 0",
                               f"entirely {'at or below' if up else 'at or above'} 0", alpha_text)
        x = _u(m if up else -m, unit)
        return (f"Reproduced if the {self.level(alpha_text)} {self.interval} of the effect lies entirely "
                f"{'above' if up else 'below'} 0 and reaches {x} ({x} is the smallest effect that counts); not "
                f"reproduced if it lies entirely {'below' if up else 'above'} {x} (the effect, if any, is smaller); "
                f"otherwise inconclusive.")


@dataclass(frozen=True)
class Magnitude(Rule):
    target: float = field(default=None)
    tolerance: float = field(default=None)
    name: ClassVar[str] = "magnitude"

    def describe(self, alpha_text=None, unit=""):
        t, tol = self.target, self.tolerance
        return (f"Reproduced if the {self.level(alpha_text)} {self.interval} of the effect lies inside "
                f"{_u(t - tol, unit)} to {_u(t + tol, unit)} ({_u(t, unit)} ± {_u(tol, unit)}); not reproduced if "
                f"it lies wholly outside that band; otherwise (it straddles an edge) inconclusive.")


@dataclass(frozen=True)
class Equivalence(Rule):
    margin: float = field(default=None)
    name: ClassVar[str] = "equivalence"

    def describe(self, alpha_text=None, unit=""):
        lo, hi = _u(-self.margin, unit), _u(self.margin, unit)
        return self._sides(f"{self.interval} of the difference", f"inside ({lo}, {hi})", "entirely outside",
                           alpha_text)


@dataclass(frozen=True)
class Noninferiority(Rule):
    margin: float = field(default=None)
    name: ClassVar[str] = "noninferiority"

    def describe(self, alpha_text=None, unit=""):
        m = _u(-self.margin, unit)
        return (f"Reproduced if the {self.level(alpha_text)} {self.interval} of the difference has its lower end "
                f"above {m}; not reproduced if its upper end is below {m}; otherwise inconclusive.")


@dataclass(frozen=True)
class _OneSided(Rule):
    """A rule that reads one interval against one threshold, from above or below."""
    threshold: float = field(default=None)
    side: str = "above"

    def quantity(self) -> str:
        raise NotImplementedError

    def describe(self, alpha_text=None, unit=""):
        t = _u(self.threshold, unit)
        return self._sides(self.quantity(), f"entirely {self.side} {t}", f"entirely {_OTHER.get(self.side, '?')} {t}",
                           alpha_text)


@dataclass(frozen=True)
class Threshold(_OneSided):
    statistic: str = "mean"
    n_boot: int = 10000
    seed: int = 0
    name: ClassVar[str] = "threshold"

    def quantity(self):
        return "bootstrap interval of the median" if self.statistic == "median" else "t-interval of the mean"


@dataclass(frozen=True)
class Rate(_OneSided):
    name: ClassVar[str] = "rate"
    interval: ClassVar[str] = "exact (Clopper-Pearson) interval"

    def quantity(self):
        return f"{self.interval} of the rate"


@dataclass(frozen=True)
class Correlation(_OneSided):
    method: str = "spearman"
    n_boot: int = 10000
    seed: int = 0
    name: ClassVar[str] = "correlation"
    interval: ClassVar[str] = "bootstrap interval"

    def quantity(self):
        return f"{self.interval} of the {self.method} correlation"


@dataclass(frozen=True)
class CorrelationFromRuns(_OneSided):
    name: ClassVar[str] = "correlation_from_runs"

    def quantity(self):
        return f"{self.interval} of the mean per-run correlation"


@dataclass(frozen=True)
class BestSetting(Rule):
    claimed: tuple = field(default=None)
    higher_is_better: bool = True
    min_effect: float = 0.0
    name: ClassVar[str] = "best_setting"
    interval: ClassVar[str] = "Welch t-interval"

    def options(self) -> dict:
        return {"claimed": self.claimed, "higher_is_better": self.higher_is_better, "min_effect": self.min_effect,
                "alpha": self.alpha}

    def describe(self, alpha_text=None, unit=""):
        claimed = [self.claimed] if isinstance(self.claimed, str) else list(self.claimed)
        k, better = len(claimed), "higher" if self.higher_is_better else "lower"
        per = alpha_text or (_level(self.alpha / k) if k > 1 else _level(self.alpha))
        m = self.min_effect
        floor = f"{_u(m, unit)} (the smallest advantage that counts)" if m else "0"
        return (f"Reproduced if the claimed setting with the best mean ({' or '.join(map(_g, claimed))}; {better} is "
                f"better) beats every other setting, each {per} {self.interval} above 0 (the alpha divided by the {k} "
                f"claimed setting{'s' if k > 1 else ''}, as the data choose which one is compared), and its interval "
                f"against the best other setting is not entirely below {floor}; not reproduced if that interval lies "
                f"entirely {'below ' + _u(m, unit) if m else 'at or below 0'}; otherwise inconclusive. The interval "
                f"shown is that one: best claimed minus best other.")


_FUNCTIONS = {"direction": direction, "magnitude": magnitude, "equivalence": equivalence,
              "noninferiority": noninferiority, "threshold": threshold, "rate": rate, "correlation": correlation,
              "correlation_from_runs": correlation_from_runs, "best_setting": best_setting}
RULES: dict[str, type[Rule]] = {r.name: r for r in (Direction, Magnitude, Equivalence, Noninferiority, Threshold,
                                                    Rate, Correlation, CorrelationFromRuns, BestSetting)}


def make_rule(name: str, parameters: dict) -> Rule:
    """The rule `name` with its declared parameters; unknown or missing parameters are an error naming them."""
    if name not in RULES:
        raise ValueError(f"unknown rule {name!r}; expected one of {sorted(RULES)}")
    cls = RULES[name]
    known = {f.name for f in fields(cls)}
    unknown = set(parameters) - known
    if unknown:
        raise ValueError(f"rule {name!r} accepts no parameter {sorted(unknown)}; it accepts {sorted(known)}")
    missing = {f.name for f in fields(cls) if f.default is None and f.name not in parameters}
    if missing:  # the criterion is part of the declaration, never supplied with the data
        raise ValueError(f"rule {name!r} needs declared parameters {sorted(missing)}")
    return cls(**parameters)
