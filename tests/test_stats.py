"""The decision rules (`lastlayer.stats`) and claim declarations (`lastlayer.claims`).

Two kinds of test: exact values on hand-made data, and false-verdict rates on synthetic data where the
truth is known. The rates use a fixed seed; each bound sits near the nominal rate plus Monte-Carlo slack
and well below what a broken rule (a point comparison, a too-narrow interval) would give.
"""
import math

import numpy as np
import pytest
from scipy import stats as st

from lastlayer import stats as S
from lastlayer.claims import Claim, Missing, Verdicts, check_unique, decide_parts, describe, require
from lastlayer.numbers import format_interval


def rate_of(verdicts, which):
    return np.mean([v == which for v in verdicts])


# ---------------------------------------------------------------- intervals, exact values
def test_mean_interval_one_sample_matches_t_by_hand():
    a = np.array([1.0, 2.0, 3.0, 4.0, 6.0])
    est, (lo, hi), n, sd = S.mean_interval(a)
    h = st.t.ppf(0.975, 4) * a.std(ddof=1) / math.sqrt(5)
    assert (est, n) == (3.2, 5) and sd == pytest.approx(a.std(ddof=1))
    assert (lo, hi) == pytest.approx((3.2 - h, 3.2 + h))
    _, (lo90, hi90), _, _ = S.mean_interval(a, alpha=0.1)
    assert lo < lo90 < hi90 < hi


def test_mean_interval_paired_is_one_sample_of_differences():
    a, b = np.array([1.0, 2.5, 3.0, 5.0]), np.array([0.5, 2.0, 3.5, 3.0])
    assert S.mean_interval(a, b, paired=True) == S.mean_interval(a - b)


def test_mean_interval_welch_matches_scipy_and_hand():
    a, b = np.array([5.1, 4.9, 5.6, 5.8, 6.0, 5.2]), np.array([4.0, 4.4, 3.9, 5.9])
    est, (lo, hi), n, sd = S.mean_interval(a, b)
    va, vb = a.var(ddof=1) / 6, b.var(ddof=1) / 4
    df = (va + vb) ** 2 / (va**2 / 5 + vb**2 / 3)
    h = st.t.ppf(0.975, df) * math.sqrt(va + vb)
    assert est == pytest.approx(a.mean() - b.mean()) and n == 4
    assert (lo, hi) == pytest.approx((est - h, est + h))
    ci = st.ttest_ind(a, b, equal_var=False).confidence_interval()
    assert (lo, hi) == pytest.approx((ci.low, ci.high))
    assert sd == pytest.approx(math.sqrt(a.var(ddof=1) + b.var(ddof=1)))


def test_mean_interval_zero_variance_collapses():
    assert S.mean_interval([2.0, 2.0, 2.0]) == (2.0, (2.0, 2.0), 3, 0.0)
    assert S.mean_interval([2.0, 2.0], [1.0, 1.0, 1.0])[1] == (1.0, 1.0)
    est, (lo, hi), _, _ = S.mean_interval([2.0, 2.0], [1.0, 1.5, 2.0])  # one group constant: still Welch
    assert lo < est < hi


@pytest.mark.parametrize("call, message", [
    (lambda: S.mean_interval([1.0]), "at least 2"),
    (lambda: S.mean_interval([1.0, 2.0], [3.0]), "at least 2"),
    (lambda: S.mean_interval([1.0, np.nan, 2.0]), "non-finite"),
    (lambda: S.mean_interval([1.0, np.inf, 2.0]), "non-finite"),
    (lambda: S.mean_interval([1.0, 2.0], [1.0, 2.0, 3.0], paired=True), "equal lengths"),
    (lambda: S.mean_interval([1.0, 2.0], paired=True), "needs b"),
    (lambda: S.mean_interval([1.0, 2.0], alpha=1.5), "alpha"),
    (lambda: S.direction([1.0, 2.0], expected="up"), "expected"),
    (lambda: S.threshold([1.0, 2.0], threshold=0, statistic="mode"), "statistic"),
    (lambda: S.threshold([1.0, 2.0], threshold=0, side="over"), "side"),
    (lambda: S.correlation([1, 2, 3], [1, 2, 3], threshold=0, method="kendall"), "method"),
    (lambda: S.correlation([1, 2, 3], [1, 2, 3, 4], threshold=0), "equal lengths"),
    (lambda: S.correlation([1, 1, 1], [1, 2, 3], threshold=0), "constant"),
    (lambda: S.magnitude([1.0, 2.0], target=0.0, tolerance=1.0), "equivalence"),
    (lambda: S.magnitude([1.0, 2.0], target=1.0, tolerance=0.0), "tolerance"),
    (lambda: S.equivalence([1.0, 2.0], margin=-1.0), "margin"),
    (lambda: S.noninferiority([1.0, 2.0], None, margin=1.0), "both"),
    (lambda: S.rate(11, 10, threshold=0.5), "k <= n"),
    (lambda: S.rate(1.5, 10, threshold=0.5), "integers"),
    (lambda: S.rate(1, 10, threshold=1.0), "threshold"),
    (lambda: S.exact_rate_interval(-1, 10), "k <= n"),
    (lambda: S.bootstrap_interval([1.0, 2.0], n_boot=10), "n_boot"),
    (lambda: S.combine([], how="all"), "at least one"),
    (lambda: S.combine([S.not_testable("x")], how="any"), "how"),
    (lambda: S.bonferroni(0.05, 0), "positive integer"),
    (lambda: S.not_testable(""), "reason"),
    (lambda: S.Decision("maybe", None, None, 0, ""), "unknown verdict"),
])
def test_invalid_input_raises(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_bootstrap_interval_1d_2d_and_fast_path():
    x = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0, 3.0])
    est, (lo, hi), n, se = S.bootstrap_interval(x, np.median, n_boot=2000, seed=3)
    assert est == 3.5 and n == 10 and lo <= est <= hi and se > 0
    # the vectorised path for numpy reductions resamples exactly like the generic one
    assert S.bootstrap_interval(x, lambda v: np.median(v), n_boot=2000, seed=3)[1] == (lo, hi)
    assert S.bootstrap_interval(x, np.median, n_boot=2000, seed=4)[1] != (lo, hi)
    rows = np.stack([x, x - 1.0], axis=1)  # rows are units: the difference of columns is always 1
    est2, iv2, n2, _ = S.bootstrap_interval(rows, lambda m: m[:, 0].mean() - m[:, 1].mean(), n_boot=500)
    assert (est2, iv2, n2) == (pytest.approx(1.0), pytest.approx((1.0, 1.0)), 10)


def test_bootstrap_interval_tends_to_plain_percentile_for_large_n():
    x = np.random.default_rng(0).normal(size=400)
    _, (lo, hi), _, _ = S.bootstrap_interval(x, np.mean, n_boot=4000, seed=1)
    h = 1.96 * x.std(ddof=1) / 20
    assert lo == pytest.approx(x.mean() - h, abs=0.01) and hi == pytest.approx(x.mean() + h, abs=0.01)


def test_bootstrap_diff():
    est, iv, n, _ = S.bootstrap_diff([5.0, 5.0, 5.0], [2.0, 2.0], np.mean, n_boot=500)
    assert (est, iv, n) == (3.0, (3.0, 3.0), 2)
    rng = np.random.default_rng(1)
    est, (lo, hi), _, _ = S.bootstrap_diff(rng.normal(1, 1, 50), rng.normal(0, 1, 50))
    assert lo < est < hi and lo > 0


@pytest.mark.parametrize("k, n, lo, hi", [
    (0, 10, 0.0, 0.30850), (10, 10, 0.69150, 1.0), (5, 10, 0.18709, 0.81291), (1, 20, 0.00127, 0.24873)])
def test_clopper_pearson_known_values(k, n, lo, hi):
    assert S.exact_rate_interval(k, n) == pytest.approx((lo, hi), abs=5e-5)


# ---------------------------------------------------------------- rules on hand-made data
def test_direction_verdicts():
    assert S.direction([1.0, 1.2, 0.9, 1.1]).verdict == "reproduced"
    assert S.direction([1.0, 1.2, 0.9, 1.1], expected="less").verdict == "not reproduced"
    assert S.direction([-1.0, -1.2, -0.9], expected="less").verdict == "reproduced"
    assert S.direction([0.0, 0.0, 0.0]).verdict == "not reproduced"  # exactly no effect contradicts a > b
    a, b = [2.0, 3.0, 4.0], [1.0, 2.5, 3.0]
    assert S.direction(a, b, paired=True).verdict == "reproduced"  # differences 1, .5, 1
    d = S.direction([0.5, -0.3, 0.9, 0.1, -0.2])
    assert d.verdict == "inconclusive" and d.interval[0] < 0 < d.interval[1]
    # min_effect: a small interval around 0.05 excludes every effect of 0.5 or more
    small = S.direction([0.04, 0.06, 0.05, -0.01, 0.1, 0.0], min_effect=0.5)
    assert small.verdict == "not reproduced" and small.interval[0] < 0
    assert S.direction([0.04, 0.06, 0.05, -0.01, 0.1, 0.0]).verdict == "inconclusive"
    # a real but small effect, shown above 0 and entirely below min_effect: smaller than what counts
    tiny = S.direction([0.050, 0.052, 0.049, 0.051], min_effect=0.1)
    assert tiny.interval[0] > 0 and tiny.verdict == "not reproduced"
    assert S.direction([0.050, 0.052, 0.049, 0.051], min_effect=0.04).verdict == "reproduced"


def test_magnitude_verdicts():
    assert S.magnitude([0.9, 1.1, 1.0, 1.05], target=1.0, tolerance=0.2).verdict == "reproduced"
    assert S.magnitude([0.2, 0.3, 0.25, 0.22], target=1.0, tolerance=0.2).verdict == "not reproduced"
    assert S.magnitude([-1.1, -0.9, -1.0], target=-1.0, tolerance=0.3).verdict == "reproduced"
    assert S.magnitude([2.0, -1.0, 1.5, -0.5], target=1.0, tolerance=0.2).verdict == "inconclusive"
    # overlapping the band is not enough: the interval must lie inside it
    edge = S.magnitude([0.70, 0.85, 0.75, 0.80], target=1.0, tolerance=0.2)
    assert edge.interval[0] < 0.8 < edge.interval[1] and edge.verdict == "inconclusive"
    assert S.magnitude([0.55, 0.6, 0.58, 0.57], target=1.0, tolerance=0.2).verdict == "not reproduced"


def test_equivalence_and_noninferiority_verdicts():
    assert S.equivalence([0.01, -0.02, 0.0, 0.015], margin=0.1).verdict == "reproduced"
    assert S.equivalence([0.5, 0.52, 0.49, 0.51], margin=0.1).verdict == "not reproduced"
    assert S.equivalence([0.05, 0.2, -0.1, 0.15], margin=0.1).verdict == "inconclusive"
    a, b = np.array([0.90, 0.91, 0.89, 0.92]), np.array([0.91, 0.92, 0.90, 0.92])
    assert S.noninferiority(a, b, paired=True, margin=0.02).verdict == "reproduced"
    assert S.noninferiority(a - 0.1, b, paired=True, margin=0.02).verdict == "not reproduced"
    assert S.noninferiority(a, b, margin=0.0).verdict == "inconclusive"


def test_threshold_never_decides_on_a_point_estimate():
    x = [0.6, 0.2, 0.9, 0.4, 0.7]  # mean 0.56 above 0.5, interval straddles it
    d = S.threshold(x, threshold=0.5)
    assert d.estimate > 0.5 and d.verdict == "inconclusive"
    assert S.threshold(x, threshold=0.1).verdict == "reproduced"
    assert S.threshold(x, threshold=0.1, side="below").verdict == "not reproduced"
    assert S.threshold(x, threshold=1.0, side="below").verdict == "reproduced"
    heavy = [1.9, 2.0, 2.1, 2.0, 2.2, 1.8, 2.0, 2.05, 1.95, 2.0, 2.1, 1.9, 2.0, 100.0, -100.0]
    m = S.threshold(heavy, threshold=1.5, statistic="median")
    assert m.estimate == 2.0 and m.verdict == "reproduced"
    assert S.threshold(heavy, threshold=1.5, statistic="mean").verdict == "inconclusive"  # the outliers' spread


def test_rate_verdicts():
    assert S.rate(0, 10, threshold=0.5, side="below").verdict == "reproduced"
    assert S.rate(9, 10, threshold=0.5, side="below").verdict == "not reproduced"
    d = S.rate(3, 10, threshold=0.5, side="below")
    assert d.verdict == "inconclusive" and d.interval == pytest.approx(S.exact_rate_interval(3, 10))


def test_correlation_rules():
    x = np.arange(12.0)
    d = S.correlation(x, x**3, threshold=0.5, n_boot=1000)
    assert d.estimate == pytest.approx(1.0) and d.verdict == "reproduced"
    p = S.correlation(x, x**3, threshold=0.5, method="pearson", n_boot=1000)
    assert p.estimate == pytest.approx(np.corrcoef(x, x**3)[0, 1])
    assert S.correlation(x, -x, threshold=0.0, n_boot=1000).verdict == "not reproduced"
    r = S.correlation_from_runs([0.6, 0.7, 0.65, 0.72], threshold=0.5)
    assert r.verdict == "reproduced" and "per-run correlation" in r.detail


def test_best_setting_verdicts():
    scores = {"a": [0.90, 0.91, 0.92, 0.905], "b": [0.80, 0.81, 0.79, 0.80], "c": [0.70, 0.71, 0.69, 0.7]}
    win = S.best_setting(scores, claimed={"a"})
    assert win.verdict == "reproduced" and win.estimate == pytest.approx(0.90875 - 0.8)
    assert S.best_setting(scores, claimed={"b", "c"}).verdict == "not reproduced"
    assert S.best_setting(scores, claimed={"c"}, higher_is_better=False).verdict == "reproduced"
    for bad in (set(), {"a", "b", "c"}, {"z"}):
        with pytest.raises(ValueError):
            S.best_setting(scores, claimed=bad)


V = {"r": "reproduced", "n": "not reproduced", "i": "inconclusive", "t": "not testable", "p": "partly"}


@pytest.mark.parametrize("parts, expected", [
    ("rr", "r"), ("nn", "n"), ("rn", "p"), ("rni", "p"), ("ni", "n"), ("nii", "n"), ("ri", "i"),
    ("ii", "i"), ("tt", "t"), ("rt", "i"), ("nt", "n"), ("rp", "p"), ("r", "r"),
])
def test_combine_truth_table(parts, expected):
    ds = [S.Decision(V[c], None, None, 0 if c == "t" else 3 + i, "x", 7 if c == "i" else None,
                     n_planned=None if c == "t" else (7 if c == "i" else 5)) for i, c in enumerate(parts)]
    out = S.combine(ds)
    assert out.verdict == V[expected] and out.parts == tuple(ds)
    assert out.n == (0 if set(parts) == {"t"} else 3)  # the smallest n among the parts that were measured
    assert out.estimate is None and out.interval is None
    assert out.n_needed == (7 if V[expected] == "inconclusive" and "i" in parts else None)
    # the n a confirmatory run needs is the largest that any measured part needs
    assert out.n_planned == (None if set(parts) == {"t"} else (7 if "i" in parts else 5))


def test_helpers_and_serialisation():
    assert S.bonferroni(0.05, 4) == 0.0125
    nt = S.not_testable("needs ImageNet")
    assert (nt.verdict, nt.n, nt.detail, nt.estimate) == ("not testable", 0, "needs ImageNet", None)
    d = S.Decision("reproduced", 0.123456789, (0.0123456789, 1234567.89), 5, "x", parts=(nt,))
    out = d.to_dict()
    assert out["estimate"] == 0.123457 and out["interval"] == [0.0123457, 1234570.0]
    assert out["parts"][0]["verdict"] == "not testable"
    assert set(S.RULES) == {"direction", "magnitude", "equivalence", "noninferiority", "threshold", "rate",
                            "correlation", "correlation_from_runs", "best_setting"}
    assert set(S.VERDICTS) == {"reproduced", "partly", "inconclusive", "not reproduced", "not testable"}


# ---------------------------------------------------------------- false-verdict rates on synthetic data
def test_direction_null_effect_rarely_reproduced():
    rng = np.random.default_rng(11)
    one = [S.direction(rng.normal(0, 1, 6)).verdict for _ in range(2000)]
    welch = [S.direction(rng.normal(0, 1, 5), rng.normal(0, 3, 9)).verdict for _ in range(2000)]
    assert rate_of(one, "reproduced") < 0.04 and rate_of(welch, "reproduced") < 0.04


def test_direction_true_effect_is_found_and_rarely_contradicted():
    rng = np.random.default_rng(12)
    # a one-sd effect with 20 runs per group: Welch power is about 0.87
    v = [S.direction(rng.normal(1, 1, 20), rng.normal(0, 1, 20)).verdict for _ in range(1000)]
    assert rate_of(v, "not reproduced") < 0.05 and rate_of(v, "reproduced") > 0.8
    # when the true effect equals min_effect, "excludes every effect of min_effect" happens <= 2.5%
    v = [S.direction(rng.normal(0.5, 1, 8), min_effect=0.5).verdict for _ in range(2000)]
    assert rate_of(v, "not reproduced") < 0.04


def test_equivalence_at_the_margin_rarely_reproduced():
    rng = np.random.default_rng(13)
    v = [S.equivalence(rng.normal(0.3, 0.2, 10), margin=0.3).verdict for _ in range(2000)]
    assert rate_of(v, "reproduced") < 0.05
    v = [S.equivalence(rng.normal(0.0, 0.2, 30), margin=0.3).verdict for _ in range(500)]
    assert rate_of(v, "reproduced") > 0.9  # and a truly null difference is shown equivalent


def test_noninferiority_at_the_margin_rarely_reproduced():
    rng = np.random.default_rng(14)
    v = [S.noninferiority(rng.normal(-0.1, 0.1, 8), rng.normal(0, 0.1, 8), margin=0.1).verdict for _ in range(2000)]
    assert rate_of(v, "reproduced") < 0.04


def test_magnitude_at_target_rarely_contradicted():
    rng = np.random.default_rng(15)
    v = [S.magnitude(rng.normal(1.0, 1.0, 6), target=1.0, tolerance=0.1).verdict for _ in range(2000)]
    assert rate_of(v, "not reproduced") < 0.05  # at most alpha: alpha/2 beyond each edge of the band


def test_rate_at_threshold_rarely_reproduced():
    # the verdict is a function of k alone: decide each distinct k once, weigh by how often it was drawn
    ks, counts = np.unique(np.random.default_rng(16).binomial(50, 0.2, size=20000), return_counts=True)
    for side in ("above", "below"):
        rep = np.array([S.rate(int(k), 50, threshold=0.2, side=side).verdict == "reproduced" for k in ks])
        assert counts[rep].sum() / counts.sum() < 0.04
        assert counts[rep].sum() > 0  # the rule can say reproduced at all on these draws


def test_median_threshold_at_the_true_median_rarely_reproduced():
    rng = np.random.default_rng(17)
    v = [S.threshold(rng.normal(0, 1, 12), threshold=0.0, statistic="median", n_boot=1000, seed=i).verdict
         for i in range(300)]
    assert rate_of(v, "reproduced") < 0.06


def test_correlation_of_independent_data_rarely_reproduced():
    rng = np.random.default_rng(18)
    v = [S.correlation(rng.normal(size=15), rng.normal(size=15), threshold=0.0, n_boot=1000, seed=i).verdict
         for i in range(300)]
    assert rate_of(v, "reproduced") < 0.06


def test_best_setting_with_equal_settings_rarely_reproduced():
    rng = np.random.default_rng(19)
    # claiming 3 of 4 tied settings: the best of three means beats the best of one by chance, which a
    # percentile bootstrap of the maxima calls "reproduced" far more often than alpha at small n
    for n, k_claimed in [(3, 3), (10, 3), (3, 1), (5, 1)]:
        v = [S.best_setting({c: rng.normal(0, 1, n) for c in "abcd"}, claimed=set("abcd"[:k_claimed])).verdict
             for _ in range(400)]
        assert rate_of(v, "reproduced") < 0.04, (n, k_claimed)


def test_best_setting_finds_a_clear_winner():
    rng = np.random.default_rng(20)
    v = [S.best_setting({"a": rng.normal(2.5, 1, 5), "b": rng.normal(0, 1, 5), "c": rng.normal(0, 1, 5)},
                        claimed="a").verdict for _ in range(200)]
    assert rate_of(v, "reproduced") > 0.8


# ---------------------------------------------------------------- claims
def make(**kw):
    base = dict(id="acc-gain", statement="A beats B.", paper="+2 points", estimand="paired accuracy over 5 seeds",
                rule="direction", parameters={"min_effect": 0.01}, why="1 point is the smallest gain that matters")
    return Claim(**{**base, **kw})


def test_claim_validation_names_the_claim():
    for kw, msg in [(dict(id="Acc Gain"), "slug"), (dict(rule="vibes"), "unknown rule"),
                    (dict(setting="somewhere"), "setting"), (dict(setting="proxy: "), "setting"),
                    (dict(parameters={"margn": 1}), "margn"), (dict(rule="equivalence", parameters={}), "margin"),
                    (dict(parameters={"a": [1, 2]}), "accepts no parameter"),
                    (dict(rule="not testable", parameters={}, why=""), "reason")]:
        with pytest.raises(ValueError, match=msg) as e:
            make(**kw)
        assert repr(kw.get("id", "acc-gain")) in str(e.value)
    make(setting="proxy: CIFAR-10 instead of ImageNet")
    make(setting="extension")


def test_claim_hash_decide_and_entry():
    c = make()
    assert len(c.declaration_hash) == 16 and c.declaration_hash == make(revised="min_effect was 0.02").declaration_hash
    assert c.declaration_hash != make(parameters={"min_effect": 0.02}).declaration_hash
    assert make(rule="best_setting", parameters={"claimed": {"y", "x"}}).declaration_hash == \
        make(rule="best_setting", parameters={"claimed": ["x", "y"]}).declaration_hash  # a set hashes sorted
    a, b = [0.91, 0.92, 0.93, 0.915], [0.88, 0.90, 0.91, 0.895]
    d = c.decide(a, b, paired=True)
    bare = S.direction(a, b, paired=True, min_effect=0.01)  # the declared rule's arithmetic, plus its plan
    assert (d.verdict, d.estimate, d.interval, d.n) == (bare.verdict, bare.estimate, bare.interval, bare.n)
    assert d.detail.startswith(bare.detail) and d.n_planned >= 2 and 0.8 <= d.power <= 1
    with pytest.raises(ValueError, match="overridden"):
        c.decide(a, b, min_effect=0.0)
    e = c.entry(d)
    assert set(e) >= {"id", "statement", "paper", "ours", "estimate", "interval", "n", "n_needed", "n_planned", "rule",
                      "rule_parameters", "declaration_hash", "setting", "verdict", "criterion", "estimand",
                      "why", "detail", "parts"}
    assert e["verdict"] == d.verdict and e["rule_parameters"] == {"min_effect": 0.01}
    assert e["ours"] == format_interval(d.estimate, d.interval, d.n) and "above 0" in e["criterion"]
    assert c.entry(d, ours="custom")["ours"] == "custom"
    nt = Claim(id="imagenet", statement="s", paper="p", estimand="e", rule="not testable", why="needs ImageNet")
    assert nt.entry(nt.decide())["ours"] == "needs ImageNet"
    combo = S.combine([d, S.not_testable("later")])
    assert "; later" in c.entry(combo)["ours"]


RULE_PARAMS = {"direction": {}, "magnitude": {"target": 2.0, "tolerance": 0.5}, "equivalence": {"margin": 0.1},
               "noninferiority": {"margin": 0.1}, "threshold": {"threshold": 0.7}, "rate": {"threshold": 0.05},
               "correlation": {"threshold": 0.3}, "correlation_from_runs": {"threshold": 0.3},
               "best_setting": {"claimed": ["a"]}}


def _data_for(rule, rng):
    x = rng.normal(1.0, 0.5, 8)
    return {"rate": (3, 40), "correlation": (x, x + rng.normal(0, 0.5, 8)), "noninferiority": (x, x - 0.1),
            "best_setting": ({"a": x, "b": x - 1, "c": x - 2},)}.get(rule, (x,))


@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_every_rule_describes_the_interval_and_level_that_decide(alpha):
    """The rule object writes its criterion from the same fields its arithmetic uses: the sentence names the
    kind of interval and the level, and the decision's detail reports an interval of that level."""
    assert set(RULE_PARAMS) == set(S.RULES)
    rng = np.random.default_rng(1)
    level = f"{100 * (1 - alpha):g}%"
    for name, p in RULE_PARAMS.items():
        rule = S.make_rule(name, {**p, "alpha": alpha})
        text, d = rule.describe(), rule.decide(*_data_for(name, rng))
        assert text.startswith("Reproduced") and rule.interval in text and level in text, (name, text)
        assert level in d.detail, (name, d.detail)
    best = S.make_rule("best_setting", {"claimed": ["a", "b"], "alpha": alpha}).describe()
    assert "Welch t-interval" in best and f"{100 * (1 - alpha / 2):g}%" in best and "bootstrap" not in best
    assert "bootstrap interval of the median" in S.make_rule("threshold", {"threshold": 1, "statistic": "median"}).describe()
    assert "1.5 to 2.5" in describe("magnitude", RULE_PARAMS["magnitude"])
    assert "entirely above -0.05 (the effect, if any, is smaller)" in describe("direction", {"expected": "less",
                                                                                          "min_effect": 0.05})
    assert "below 0.05" in describe("rate", {"threshold": 0.05, "side": "below"})
    with pytest.raises(ValueError, match="accepts no parameter \\['margin'\\]"):
        S.make_rule("direction", {"margin": 1})
    with pytest.raises(ValueError, match="needs declared parameters \\['threshold'\\]"):
        S.make_rule("threshold", {})


def test_parts_and_the_bonferroni_correction_are_declared_and_described():
    c = make(parts="model", correction="bonferroni", parameters={"expected": "greater"})
    assert c.rule_criterion.startswith("For each model: Reproduced if the 95%-family (alpha 0.05 / k")
    assert c.rule_criterion.endswith(S.COMBINE_RULE)
    rng = np.random.default_rng(0)
    a, b = rng.normal(1, 1, 6), rng.normal(1, 1, 6)
    three = decide_parts(c, [("m1", (a,)), ("m2", (b,)), ("m3", (a + b,))])
    alone = S.direction(a, alpha=0.05 / 3)
    assert three.parts[0].interval == alone.interval and three.parts[0].label == "m1"
    assert three.parts[0].detail.startswith("m1: ")
    with pytest.raises(ValueError, match="alpha is declared"):
        make().decide(a, alpha=0.2)
    with pytest.raises(ValueError, match="needs `parts`"):
        make(correction="bonferroni")
    with pytest.raises(Missing, match="no part of this claim"):
        decide_parts(c, [])


def test_verdicts_have_one_policy_for_missing_data():
    """Too few values, or a measure that finds nothing, give 'not testable' with the reason, in every paper."""
    claims = [make(id="one"), make(id="two"), make(id="three"),
              Claim(id="later", statement="s", paper="p", estimand="e", rule="not testable", why="needs a GPU")]
    v = Verdicts(claims, setting="proxy: a smaller model")
    v.add("two", lambda c: c.decide([0.5]))  # one value: the rule's own check
    v.add("one", lambda c: c.decide([0.1, 0.2, 0.15]), ours=lambda d: f"{d.estimate:.2f}")

    def nothing(c):
        require([], n=2, what="seeds of the norm arm")
    v.add("three", nothing)
    with pytest.raises(ValueError, match="decided twice"):
        v.add("one", S.not_testable("again"))
    out = v.done()
    assert [c.id for c, _, _ in out] == ["one", "two", "three", "later"]
    (c1, d1, o1), (_, d2, o2), (_, d3, _), (_, d4, _) = out
    assert d1.verdict == "reproduced" and o1 == "0.15" and c1.setting == "proxy: a smaller model"
    assert d2.verdict == "not testable" and "need at least 2 values, got 1" in d2.detail and o2 is None
    assert d3.verdict == "not testable" and d3.detail == "needs at least 2 seeds of the norm arm; this run has 0"
    assert d4.verdict == "not testable" and d4.detail == "needs a GPU"
    with pytest.raises(ValueError, match="never decided: \\['two'\\]"):
        w = Verdicts(claims[:2])
        w.add("one", S.not_testable("x"))
        w.done()


def test_format_helpers():
    assert format_interval(0.1234, (0.05, 0.19), 8) == "0.123 [0.050, 0.190] (n = 8)"
    assert format_interval(0.1234, (0.05, 0.19), 8, scale=100, digits=1, unit="%") == "12.3% [5.0%, 19.0%] (n = 8)"
    with pytest.raises(ValueError, match="duplicate"):
        check_unique([make(), make(statement="other")])
    assert list(check_unique([make(), make(id="other")])) == ["acc-gain", "other"]
