"""The geometry paper's claims, declared before any run, and `decide`, which turns the per-run rows into
decisions.

Every rule reads a 95% interval (see `lastlayer.stats`). Arms trained with the same seed share the backbone's
initialisation and batch order, so arm-against-arm comparisons are paired by seed. Spreads are compared with
the paper's like with like: the paper quotes the range (max - min) of three runs, and the range grows with the
number of runs, so we split our runs into disjoint triples of consecutive seeds and use the range of each
triple; leftover runs (n mod 3) take no part in those claims. Accuracies are fractions (0.18 = 18 points).
No run is dropped: a non-finite loss stops training with an error, so every row here is a finished run.
A claim whose runs are missing or too few in this run (an arm not run, fewer than two values or triples) is
'not testable' and says what is missing (`lastlayer.claims.Missing`).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from lastlayer.claims import Claim, Missing, Verdicts, require, with_plans
from lastlayer.numbers import format_interval
from lastlayer.stats import Decision

from . import reference as ref
from .experiments import angular_order, shuffled_directions

PROXY = "proxy: a LeNet-sized CNN with a 2-D embedding and a short schedule instead of ResNet-101"
NEIGHBOURS = ("neighbours read in the equally spaced, randomly ordered layout (the 'spaced' arm, whose class order "
              "the seed fixes) instead of the paper's random initialisation")
MAG = ("The magnitude rule changed after the pilot run: it used to say reproduced when the interval merely "
       "overlapped the band; now the interval must lie inside the band (straddling an edge is inconclusive, "
       "lying wholly outside is not reproduced). ")
HALF_SPACING = 180 / 10  # degrees: half the angle between neighbours of ten equally spaced vectors

CLAIMS = [
    Claim(id="minority-no-area",
          statement="Under random initialisation, training on the long-tailed set leaves some classes without "
                    "classification area.",
          paper="Figure 3a: four classes (1, 5, 7, 9) end the shown training without area.",
          estimand="share of random-initialisation runs that end with at least one class without area "
                   "(a class vector inside the convex hull of the others: an exact test)",
          rule="rate", parameters={"threshold": 0.5, "side": "above"},
          why="The paper shows one run; we read its observation as the typical outcome, i.e. in more than half "
              "of the runs. Exact binomial interval over independent runs."),
    Claim(id="lost-classes-rare",
          statement="The classes left without area are the poorly represented ones.",
          paper="The classes without area 'correspond to classes with low representation in the train set'.",
          estimand="per random-initialisation run, classes without area among the rarer half of the classes "
                   "minus those among the more frequent half; mean over runs (paired t-interval)",
          rule="direction", parameters={"expected": "greater", "min_effect": 1.0},
          why="The two halves hold equally many classes, so with no link to representation the difference "
              "averages 0. The paper's one run (Figure 3a) loses four classes, all of them poorly represented: "
              "a difference of about 4. Half of it (2) would ask a single picture for a precise size, so the "
              "smallest effect that counts is one class per run: the count is a whole number per run, and a mean "
              "difference under one class means the typical run loses no more rare than frequent classes.",
          revised="min_effect 1 (class per run) added after the pilot run (it was 0, which let an ever more "
                  "precise estimate stay inconclusive); derived from the paper's Figure 3a, not from the pilot."),
    Claim(id="lost-digits",
          statement="The digits 1, 5, 7 and 9 are the ones left without area.",
          paper="Figure 3a: classes 1, 5, 7 and 9 have no area.",
          estimand="which digits lose their area",
          rule="not testable",
          why="The paper does not say which digit has which rank in the long tail, and which digits lose their "
              "area follows from that map; the book ranks the digits in their natural order (a parameter)."),
    Claim(id="larger-overcome-adjacent", setting="proxy: " + NEIGHBOURS,
          statement="Classes with more training images overcome the adjacent classes with fewer, up to leaving "
                    "them without area.",
          paper="Section 3.1: 'classes with higher presence in train tend to overcome the adjacent classes with "
                "less presence, up to a point where the minority classes are left without area' (no number).",
          estimand="per equally spaced, randomly ordered run, over its classes without area: the share of the "
                   "class's two neighbours in the initial layout that have more training images, minus the "
                   "share expected by chance for its rank (r / 9 for the class with r larger classes); mean over "
                   "the runs that lose a class (t-interval)",
          rule="direction", parameters={"expected": "greater", "min_effect": 0.1},
          why="Adjacency is in the embedding: the rows do not hold the final angles, but the spaced arm's layout "
              "is fixed by its seed, and where the vectors keep their cyclic order (the row's order_kept) the "
              "initial neighbours are the final ones. Subtracting r / 9 removes the trivial part (a rare class "
              "has mostly larger classes around it whatever the mechanism): with no link between neighbours and "
              "losing, the mean is 0 exactly. The paper gives no size; the smallest effect that counts is 0.1, "
              "a tenth of the neighbour slots: one lost class in five has one larger neighbour more than chance "
              "(for the ranks that lose area, 5 to 9, the room above chance is 0.44 down to 0). Runs that lose "
              "no class give no value. Under the paper's random initialisation the neighbours would need the "
              "final class angles, which the rows do not record."),
    Claim(id="directions-stable",
          statement="The directions of the class vectors change little during training.",
          paper="Figure 4: the directions 'withstand little variation' (no number given).",
          estimand="per random-initialisation run, the median over classes of the angle between the class "
                   "vector at initialisation and at the end; mean over runs (t-interval), degrees",
          rule="threshold", parameters={"threshold": HALF_SPACING, "side": "below"},
          why="18 degrees is half the spacing of ten equally spaced vectors: a vector that turns less stays "
              "nearer its start than its neighbour's place, so the initial layout still decides the wedges."),
    Claim(id="variability-train",
          statement="Repeated trainings with random initialisation and the same set-up end at widely different "
                    "train accuracies.",
          paper=f"From 95% to 64%: a range of {100 * ref.RANDOM_TRAIN_RANGE:.0f} points over {ref.RUNS} runs.",
          estimand="range (max - min) of the final train accuracy within disjoint triples of random-"
                   "initialisation runs; mean over triples (t-interval)",
          rule="magnitude", parameters={"target": ref.RANDOM_TRAIN_RANGE, "tolerance": ref.RANDOM_TRAIN_RANGE / 2},
          unit="points",
          why="The paper's range is of 3 runs, so ours is too (a range of more runs is larger by construction). "
              "Tolerance: half the paper's value; a range of 3 runs is itself a noisy number. The paper writes "
              "this range of 95 - 64 = 31 points as 'a difference of 31%': its % are points.",
          revised=MAG + "Target and tolerance are unchanged (31 +- 15.5 points, the paper's Section 3.1)."),
    Claim(id="variability-test",
          statement="Repeated trainings with random initialisation and the same set-up end at widely different "
                    "test accuracies.",
          paper=f"From 50% to 33%: a range of {100 * ref.RANDOM_TEST_RANGE:.0f} points over {ref.RUNS} runs.",
          estimand="range (max - min) of the final test accuracy within disjoint triples of random-"
                   "initialisation runs; mean over triples (t-interval)",
          rule="magnitude", parameters={"target": ref.RANDOM_TEST_RANGE, "tolerance": ref.RANDOM_TEST_RANGE / 2},
          unit="points",
          why="As for the train accuracy: ranges of 3 runs against the paper's (50 - 33 = 17 points, written "
              "'17%'), tolerance half its value.",
          revised=MAG + "Target and tolerance are unchanged (17 +- 8.5 points, the paper's Section 3.1)."),
    Claim(id="guided-spread",
          statement="Guided initialisation reduces the spread of test accuracy across repetitions.",
          paper=f"The range falls from {100 * ref.RANDOM_TEST_RANGE:.0f} to {100 * ref.GUIDED_TEST_RANGE:.0f} "
                f"points ({ref.RUNS} runs each).",
          estimand="range of the test accuracy of a triple of guided runs minus that of the random runs with the "
                   "same three seeds; mean over triples (paired t-interval)",
          rule="magnitude", parameters={"target": ref.GUIDED_TEST_RANGE - ref.RANDOM_TEST_RANGE,
                                        "tolerance": (ref.RANDOM_TEST_RANGE - ref.GUIDED_TEST_RANGE) / 2},
          unit="points",
          why="Ranges of 3 runs, as the paper's; the target is the paper's change from 17 to 4 points (-13 "
              "points; the abstract rounds it to '12%', which lies inside the band), the tolerance half of it. "
              "'Reduced to 4%' is a range in points: a relative reading (17 to 4 is a 76% cut) would not give "
              "the abstract's 12%.",
          revised=MAG + "Target and tolerance are unchanged (-13 +- 6.5 points)."),
    Claim(id="guided-accuracy",
          statement="Guided initialisation raises the mean test accuracy.",
          paper=f"Final test accuracies {100 * ref.GUIDED_TEST_GAIN:.0f}% higher on average.",
          estimand="test accuracy of the guided run minus the random run with the same seed; mean over seeds "
                   "(paired t-interval)",
          rule="magnitude", parameters={"target": ref.GUIDED_TEST_GAIN, "tolerance": ref.GUIDED_TEST_GAIN / 2},
          unit="points",
          why="'18% higher' is read as 18 points of accuracy, from the paper's own usage: it writes every "
              "difference of accuracies with % meaning points ('a difference of 31% and 17%' for 95 - 64 and "
              "50 - 33; 'reduces 12% the variability' for a range falling from 17 to 4 points, which relative "
              "would be a 76% cut). The relative reading (18% of the random mean of about 42%, about 8 points) "
              "has no support in the text. A gain is judged against the paper's size, not only its sign: "
              "tolerance half the effect, about 1.5 standard errors of the paper's own 3-against-3 difference "
              "given its reported spreads.",
          revised=MAG + "The reading of '18% higher' was re-examined after the pilot run and kept: 18 points "
                        "(target 0.18, tolerance 0.09, paired difference of accuracies), because the paper writes "
                        "point differences as % throughout (31%, 17%, 12%, 4%)."),
    Claim(id="guided-areas",
          statement="With guided initialisation no class is left without area.",
          paper="Figures 3b and 3d: 'the absent areas of the previous experiment are now present'.",
          estimand="share of guided runs that end with at least one class without area",
          rule="rate", parameters={"threshold": 0.5, "side": "below"},
          why="The paper shows one guided run with every area present; we read it as the typical outcome, i.e. "
              "fewer than half of the guided runs lose any class."),
    Claim(id="norm-faster",
          statement="Constraining the norms of the class vectors makes training converge faster.",
          paper=f"Extended version: {100 * ref.NORM_CONVERGENCE_CUT:.0f}% less time to converge.",
          estimand="per seed, epochs for the norm-constrained run to reach 95% of its final train accuracy "
                   "divided by the same for the random run, minus 1; mean over seeds (t-interval)",
          rule="magnitude", parameters={"target": -ref.NORM_CONVERGENCE_CUT, "tolerance": ref.NORM_CONVERGENCE_CUT / 2},
          unit="%",
          why="The extended version gives neither its constraint nor its measure of convergence; ours holds "
              "every norm at one value and counts epochs (the constraint costs no time per epoch). '40% less "
              "time' is a ratio of one training to another, so the estimand is the per-seed ratio (paired by "
              "seed), not the ratio of the mean epochs (which the book shows beside it). Tolerance half the "
              "paper's cut.",
          revised=MAG + "Target and tolerance are unchanged (-40% +- 20%); the estimand (mean of the per-seed "
                        "relative changes) is what decide computes."),
    Claim(id="spacing-raises-accuracy", setting="extension",
          statement="Equal spacing alone, in a random class order, raises the test accuracy over random "
                    "initialisation.",
          paper="Not in the paper: the control separating the two ingredients of guided initialisation.",
          estimand="test accuracy of the equally spaced, randomly ordered run minus the random run with the same "
                   "seed; mean over seeds (paired t-interval)",
          rule="direction", parameters={"expected": "greater", "min_effect": 0.01}, unit="points",
          why="The paper gives no number for either ingredient of guided initialisation; its whole gain is 18 "
              "points, so each ingredient's share is at most that. One point of accuracy is the smallest gain "
              "that counts: about one binomial standard error of a single run's accuracy on the 2,000-image test "
              "set (sqrt(0.45 * 0.55 / 2000) = 1.1 points), and 1/18 of the paper's gain. An interval wholly "
              "below it contradicts the claim."),
    Claim(id="order-raises-accuracy", setting="extension",
          statement="Ordering the equally spaced vectors by class count raises the test accuracy over a random "
                    "order.",
          paper="Not in the paper: the paper credits the count order ('classes with similar number of instances "
                "are located next to each other').",
          estimand="test accuracy of the guided run minus the equally spaced, randomly ordered run with the same "
                   "seed; mean over seeds (paired t-interval)",
          rule="direction", parameters={"expected": "greater", "min_effect": 0.01}, unit="points",
          why="As above: one point (about one standard error of a run's test accuracy, 1/18 of the paper's "
              "guided gain) is the smallest gain that counts."),
    Claim(id="order-keeps-areas", setting="extension",
          statement="Ordering the equally spaced vectors by class count leaves fewer classes without area than a "
                    "random order.",
          paper="Not in the paper: its explanation is that the count order keeps frequent classes from pushing "
                "out the areas of rare neighbours.",
          estimand="classes without area in the guided run minus in the equally spaced, randomly ordered run "
                   "with the same seed; mean over seeds (paired t-interval)",
          rule="direction", parameters={"expected": "less", "min_effect": 1.0},
          why="The paper's mechanism, tested against equal spacing alone. The paper gives no size for this "
              "control; its own contrast (random initialisation losing four classes in Figure 3a, guided none) is "
              "4 classes. The smallest effect that counts is one class fewer per run: a mean difference under "
              "one class means the typical run loses the same classes in either order.",
          revised="min_effect 1 (class per run) added after the pilot run (it was 0); a stated smallest "
                  "meaningful difference, not taken from the pilot."),
    Claim(id="fixed-best", setting="extension",
          statement="Freezing the guided, equally spaced class vectors gives the best test accuracy of all the "
                    "classifiers compared.",
          paper="Not in the paper.",
          estimand="mean test accuracy of the fixed arm minus the best mean of the other arms (Welch t-intervals "
                   "over the runs of each arm)",
          rule="best_setting", parameters={"claimed": ["fixed"], "higher_is_better": True, "min_effect": 0.01},
          unit="points",
          revised="The estimand said 'bootstrap over runs within each arm' but the best_setting rule decides by "
                  "Welch t-intervals; the estimand now names them. The arithmetic is unchanged. After the pilot "
                  "run, min_effect 0.01 (one point) was added (it was 0): without it a precise tie could never "
                  "be 'not reproduced'; one point is the margin the two other accuracy extensions use.",
          why="Suggested by an earlier run of this notebook (seeds 0-7), so it is judged on fresh seeds "
              "(the `seed` parameter starts past them). One point of accuracy is the smallest advantage that "
              "counts (about one standard error of a run's accuracy on the 2,000-image test set)."),
]
# stage 1 of the two-stage verdicts: each claim's pilot and planned n (written by `python -m lastlayer plan geometry --write`)
CLAIMS = with_plans(CLAIMS, Path(__file__).with_name("planned.json"))


# --- from rows to the arrays the rules take -----------------------------------------------------------

def by_arm(rows) -> dict[str, dict]:
    """{arm: {seed: row}} of `experiments.Row`s."""
    out: dict[str, dict] = {}
    for r in rows:
        out.setdefault(r.arm, {})[int(r.seed)] = r
    return out


def values(runs: dict[str, dict], arm: str, key: str) -> np.ndarray:
    """One measurement of every run of `arm`, in seed order."""
    arm_runs = runs.get(arm, {})
    return np.array([float(getattr(arm_runs[s], key)) for s in sorted(arm_runs)])


def paired(runs, a: str, b: str, key: str) -> tuple[np.ndarray, np.ndarray]:
    """The measurement of arms a and b on the seeds both ran, in seed order."""
    seeds = sorted(set(runs.get(a, {})) & set(runs.get(b, {})))
    return (np.array([float(getattr(runs[a][s], key)) for s in seeds]),
            np.array([float(getattr(runs[b][s], key)) for s in seeds]))


def triple_ranges(v) -> np.ndarray:
    """Range (max - min) of each disjoint triple of consecutive values; a leftover one or two are unused."""
    v = np.asarray(v, float)
    v = v[:len(v) // 3 * 3].reshape(-1, 3)
    return v.max(1) - v.min(1)


# --- the decisions ------------------------------------------------------------------------------------

def _points(d: Decision, **fmt) -> str:
    """A difference of accuracies in points, signed: '+1.2 points [-0.3 points, +2.7 points] (n = 6)'."""
    return format_interval(d.estimate, d.interval, d.n, **{"scale": 100, "digits": 1, "unit": " points",
                                                          "sign": True, **fmt})


def decide(rows, params) -> list[tuple[Claim, Decision, str | None]]:
    """Every claim of `CLAIMS`, decided from the per-run rows (`experiments.Row`) of `run(params)`.

    Claims of the paper count as a proxy unless `params.backbone` is the paper's ResNet-101.
    """
    runs = by_arm(rows)
    proxy = params.backbone != "resnet101"
    declared = [replace(c, setting=f"{PROXY}; {NEIGHBOURS}") if proxy and c.id == "larger-overcome-adjacent" else c
                for c in CLAIMS]
    v = Verdicts(declared, setting=PROXY if proxy else None)
    v.add("minority-no-area", *_rate(runs, "random", "random runs leave a class without area"))
    v.add("lost-classes-rare", *_lost_rare(runs))
    v.add("larger-overcome-adjacent", *_larger_neighbours(runs, params.digit_order))
    v.add("directions-stable", *_one_sample(values(runs, "random", "median_turn"), "random runs",
                                            "mean median turn", scale=1, unit=" degrees", sign=False))
    for cid, key in (("variability-train", "train_acc"), ("variability-test", "test_acc")):
        v.add(cid, *_one_sample(triple_ranges(values(runs, "random", key)), "triples of random runs",
                                "mean range of 3 runs", sign=False))
    v.add("guided-spread", *_spread_change(runs))
    v.add("guided-accuracy", *_paired(runs, "guided", "random", "test_acc"))
    v.add("guided-areas", *_rate(runs, "guided", "guided runs leave a class without area"))
    v.add("norm-faster", *_convergence(runs))
    v.add("spacing-raises-accuracy", *_paired(runs, "spaced", "random", "test_acc"))
    v.add("order-raises-accuracy", *_paired(runs, "guided", "spaced", "test_acc"))
    v.add("order-keeps-areas", *_paired(runs, "guided", "spaced", "no_area", scale=1, digits=2, unit=" classes"))
    v.add("fixed-best", *_best(runs))
    return v.done()


# Each measure below returns (measure, ours) for `Verdicts.add`: a function of the claim giving its Decision,
# and one of the Decision giving the text of our result.

def _rate(runs, arm: str, what: str):
    lost = values(runs, arm, "no_area")
    k, n = int((lost > 0).sum()), len(lost)

    def measure(claim):
        if n < 1:
            raise Missing(f"the {arm} arm was not run")
        return claim.decide(k, n)
    return measure, lambda d: f"{k} of {n} {what}; share " + format_interval(d.estimate, d.interval, d.n,
                                                                             scale=100, digits=0, unit="%")


def _one_sample(v, need: str, what: str, **fmt):
    def measure(claim):
        require(v, what=need)
        return claim.decide(v)
    return measure, lambda d: f"{what} " + _points(d, **fmt)


def _paired(runs, a: str, b: str, key: str, **fmt):
    x, y = paired(runs, a, b, key)

    def measure(claim):
        require(x, what=f"seeds run by both the {a} and the {b} arm")
        return claim.decide(x, y, paired=True)
    return measure, lambda d: f"{a} minus {b}: " + _points(d, **fmt)


def _lost_rare(runs):
    rare, frequent = values(runs, "random", "rare_no_area"), values(runs, "random", "frequent_no_area")

    def measure(claim):
        require(rare, what="random runs")
        return claim.decide(rare, frequent, paired=True)
    return measure, lambda d: (f"classes without area per random run: {rare.mean():.2f} of the rarer half, "
                               f"{frequent.mean():.2f} of the more frequent half; difference "
                               + format_interval(d.estimate, d.interval, d.n, digits=2, sign=True))


def larger_neighbour_excess(row, order) -> float | None:
    """For one run of the equally spaced, randomly ordered arm: the mean over its classes without area of the share
    of the class's two neighbours in the initial layout (`shuffled_directions` of the row's seed) that have more
    training images, minus r / 9 (the chance share for a class with r larger classes out of 9 others). Ranks
    follow `order` (the long tail's class order, largest first: counts fall by a factor 1 / p per rank). None
    when the run loses no class."""
    lost = [int(c) for c in str(row.no_area_classes).split()]
    if not lost:
        return None
    classes = len(order)
    rank = {int(k): i for i, k in enumerate(order)}
    cycle = angular_order(shuffled_directions(classes, int(row.seed)))
    excess = []
    for c in lost:
        i = cycle.index(c)
        larger = sum(rank[b] < rank[c] for b in (cycle[i - 1], cycle[(i + 1) % classes]))
        excess.append(larger / 2 - rank[c] / (classes - 1))
    return float(np.mean(excess))


def _larger_neighbours(runs, order):
    spaced = runs.get("spaced", {})
    v = np.array([e for e in (larger_neighbour_excess(spaced[s], order) for s in sorted(spaced)) if e is not None])

    def measure(claim):
        require(v, what="spaced runs that leave a class without area")
        return claim.decide(v)
    return measure, lambda d: (f"{len(v)} of {len(spaced)} spaced runs lose a class; share of larger neighbours "
                               f"of a lost class above chance " + format_interval(d.estimate, d.interval, d.n,
                                                                                  digits=3, sign=True))


def _spread_change(runs):
    g, r = paired(runs, "guided", "random", "test_acc")
    g, r = triple_ranges(g), triple_ranges(r)

    def measure(claim):
        require(g, what="triples of seeds run by both the guided and the random arm")
        return claim.decide(g, r, paired=True)
    return measure, lambda d: (f"range of 3 runs: guided {100 * g.mean():.1f}, random {100 * r.mean():.1f} "
                               f"points; change " + _points(d))


def _convergence(runs):
    norm, rand = paired(runs, "norm", "random", "epochs_to_95")

    def measure(claim):
        require(norm, what="seeds run by both the norm and the random arm")
        return claim.decide(norm / rand - 1)
    # The claim is a relative cut, so the estimate is the mean of the per-seed ratios (norm / random - 1); a ratio
    # of the means can point the other way when a few seeds converge much later, so both are shown.
    return measure, lambda d: (f"epochs to 95% of the final train accuracy: norm {norm.mean():.1f}, random "
                               f"{rand.mean():.1f} on average (ratio of the means {norm.mean() / rand.mean() - 1:+.0%});"
                               f" estimated: the mean of the per-seed relative changes, "
                               + _points(d, digits=0, unit="%"))


def _best(runs):
    scores = {arm: values(runs, arm, "test_acc") for arm in runs}

    def measure(claim):
        if "fixed" not in scores or len(scores) < 2 or min(len(v) for v in scores.values()) < 2:
            raise Missing("needs the fixed arm and another arm, with at least 2 runs each")
        return claim.decide(scores)

    def ours(d):
        best_other = max((a for a in scores if a != "fixed"), key=lambda a: scores[a].mean())
        return (f"fixed {100 * scores['fixed'].mean():.1f}%, best other ({best_other}) "
                f"{100 * scores[best_other].mean():.1f}%; fixed ahead by " + _points(d))
    return measure, ours
