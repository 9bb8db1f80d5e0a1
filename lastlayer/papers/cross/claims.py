"""The chapter's claims, declared before any run, and `decide`, which turns the per-run rows into decisions.

Every claim here is ours (setting 'extension'): a paper's claim carried to another paper's network, data or baseline.
'reproduced' means the hypothesis held there; 'not reproduced' that the interval contradicts it. Each claim is
decided part by part (per data set, and per embedding size where it has two), every part at alpha / k (Bonferroni,
k parts), and the parts combine by `stats.combine`. Accuracies are fractions (0.01 = one point). No run is dropped:
a non-finite loss stops training with an error, so every row is a finished run; a trainer that never reaches the
target accuracy counts by a stated rule (`time_to_target`). A claim whose runs are missing in this run (a head or a
trainer not run, fewer than two seeds) is 'not testable' and says what is missing.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from lastlayer.claims import Claim, Missing, Verdicts, decide_parts, with_plans

from .initialisers import InitRow, JumpRow
from .long_tail import TailRow
from .skipping import SkipRow

EXT = "extension"
# the fixed heads at fixed_classifier's S values (1, its main setting, and 20, its Figure 4's): the claimed settings
FIXED_ARMS = ["fixed_random", "fixed_spaced", "fixed_guided", "cosine_fixed S=1", "cosine_fixed S=20"]
ONE_POINT = ("One point of accuracy is the smallest difference that counts: about one binomial standard error of a "
             "single run's balanced accuracy on the 2,000-image test set (sqrt(0.6 x 0.4 / 2000) = 1.1 points), the "
             "margin the geometry chapter's extensions use.")

CLAIMS = [
    Claim(id="tail-fixing-no-harm", setting=EXT, unit="points", parts="data set and embedding size",
          correction="bonferroni",
          statement="Fixing the class vectors at random does not hurt the balanced accuracy on a long tail.",
          paper="fixed_classifier: 'there is no benefit at learning the class representation vectors instead of "
                "randomly drawing them and fixing them' (balanced data sets, a wide embedding).",
          estimand="per data set and embedding size: balanced test accuracy of the fixed random head minus the "
                   "learned head with the same seed (same backbone draw and batch order); mean over seeds (paired "
                   "t-interval)",
          rule="noninferiority", parameters={"margin": 0.01},
          why="'Does not hurt' is a one-sided claim: the fixed head may be better, and must not be worse by more than "
              "the smallest loss that counts. " + ONE_POINT),
    Claim(id="tail-guided-fewest-lost", setting=EXT, parts="data set", correction="bonferroni",
          statement="Equally spaced class vectors in geometry's guided order lose the fewest classes of all the "
                    "heads in a 2-D embedding.",
          paper="geometry: with guided initialisation 'the absent areas of the previous experiment are now present' "
                "(every class keeps an area).",
          estimand="per data set, in the 2-D embedding: classes whose test recall is below chance (1 / 10), per run; the "
                   "fewest mean of the other heads minus the fixed guided head's (positive: the guided head loses "
                   "fewer; Welch t-intervals)",
          rule="best_setting", parameters={"claimed": ["fixed_guided"], "higher_is_better": False, "min_effect": 0.5},
          why="A class below chance recall is lost whatever the head (geometry's classes without area are among "
              "them, and the test applies to cosine heads and biases too). The guided order must lose fewer classes "
              "than every other head; half a class per run is the smallest advantage that counts: the count is a "
              "whole number per run, so a mean advantage under half a class means most runs lose the same classes."),
    Claim(id="tail-fixed-best-accuracy", setting=EXT, unit="points", parts="data set and embedding size",
          correction="bonferroni",
          statement="On a long tail, a fixed classifier gives the best balanced accuracy of all the heads.",
          paper="geometry's extension found a fixed, equally spaced classifier best on its long tail; fixed_classifier "
                "finds fixed heads as good as or better than learned ones on balanced data.",
          estimand="per data set and embedding size: the best mean balanced test accuracy among the fixed heads "
                   "(random, equally spaced, guided, cosine at S = 1 and 20) minus the best mean of the others "
                   "(learned, norm-constrained, learned cosine) (Welch t-intervals)",
          rule="best_setting", parameters={"claimed": FIXED_ARMS, "higher_is_better": True, "min_effect": 0.01},
          why="The two papers credit fixing; which fixed head is best is what the table shows. " + ONE_POINT),
    Claim(id="tail-fixed-best-worst-class", setting=EXT, unit="points", parts="data set and embedding size",
          correction="bonferroni",
          statement="On a long tail, a fixed classifier gives the best worst-class accuracy of all the heads.",
          paper="geometry: the guided (fixed) layout keeps the poorly represented classes predictable; "
                "fixed_classifier: fixed vectors keep classes apart.",
          estimand="per data set and embedding size: the lowest test recall of any class, per run; the best mean "
                   "among the fixed heads minus the best mean of the others (Welch t-intervals)",
          rule="best_setting", parameters={"claimed": FIXED_ARMS, "higher_is_better": True, "min_effect": 0.02},
          why="The worst class has 200 test images: one binomial standard error of its recall is up to 3.5 points, "
              "so 2 points is the smallest advantage that counts for a mean over several runs."),
    Claim(id="asv-backward-best-other-networks", setting=EXT, unit="points", parts="network with pooling",
          correction="bonferroni",
          statement="With Adam, ASV backward gives the best validation accuracy after a short schedule on the other "
                    "papers' networks with pooling.",
          paper="asv_init: ASV backward gives the best validation accuracy with Adam (its Table 1, plain networks "
                "with max and global average pooling).",
          estimand="per network with pooling: peak validation accuracy with each initialiser at its best Adam "
                   "learning rate (chosen on seeds of their own); ASV backward's mean minus the best mean of the other "
                   "four (Welch t-intervals)",
          rule="best_setting", parameters={"claimed": ["asv_backward"], "higher_is_better": True, "min_effect": 0.01},
          why="asv_init's own claim and rule, carried to digit_pairs' and feature_cache's networks (batch norm off). "
              "Each initialiser gets its best rate, chosen on separate seeds, so no method loses by a rate that suits "
              "another. " + ONE_POINT.replace("balanced accuracy on the 2,000-image test set", "validation accuracy")),
    Claim(id="asv-keeps-variance-other-networks", setting=EXT, parts="network with pooling and direction",
          correction="bonferroni",
          statement="Across the pooling layers of the other papers' networks, Kaiming lets the signal variance jump "
                    "more than ASV does.",
          paper="asv_init: Xavier and Kaiming, which ignore pooling, let the variance jump across F34's pooling "
                "layers; ASV keeps it.",
          estimand="per network with pooling, forward (Kaiming forward against ASV forward) and backward (Kaiming "
                   "backward against ASV backward): |log2 jump| of the variance across a pooled layer, Kaiming's minus "
                   "ASV's, paired by weight draw and layer; mean (paired t-interval)",
          rule="direction", parameters={"expected": "greater", "min_effect": 0.25},
          why="Each ASV variant is built to keep one direction's variance, so it is compared with the Kaiming variant "
              "of the same direction. A quarter of a doubling (a factor 1.19) is the smallest difference in the jump "
              "that counts: below it the variance after a few such layers stays within a factor of two."),
    Claim(id="skip-cache-fastest", setting=EXT, unit="%", parts="data set", correction="bonferroni",
          statement="The feature-map cache reaches the target accuracy in less training time than normal training, "
                    "random dropping of the same share, and selective backprop.",
          paper="feature_cache: skipping the cache hits saves training time; Jiang et al. (2019) claim the same of "
                "selective backprop.",
          estimand="per data set: training seconds to the target test accuracy divided by normal training's with the "
                   "same seed (a run that never reaches it counts as its whole training time plus one mean epoch); "
                   "the best (lowest) mean of the other trainers minus caching's (positive: the cache is faster; "
                   "Welch t-intervals)",
          rule="best_setting", parameters={"claimed": ["caching"], "higher_is_better": False, "min_effect": 0.05},
          why="Times relative to normal training of the same seed cancel the machine's speed. A miss is counted, "
              "never dropped, as feature_cache's chapter counts it (a lower bound on the time it would have taken). "
              "5% of normal training's time is the smallest saving that counts: a smaller one is within the "
              "spread of the timings of one trainer on a shared machine."),
    Claim(id="skip-cache-beats-random", setting=EXT, unit="points", parts="data set", correction="bonferroni",
          statement="At equal images trained, the cache's choice of what to skip trains better than dropping the "
                    "same share at random.",
          paper="feature_cache: the cache drops images the network already knows (hits), so what it drops is not "
                "worth a step.",
          estimand="per data set: final test accuracy of the caching run minus the random-drop run of the same seed "
                   "(same weights, batch order and share dropped per epoch); mean over seeds (paired t-interval)",
          rule="direction", parameters={"expected": "greater", "min_effect": 0.01},
          why="The random drop is the control every pruning method needs (feature_cache's own extension). "
              + ONE_POINT.replace("balanced accuracy", "accuracy")),
    Claim(id="skip-cache-beats-selective-time", setting=EXT, unit="points", parts="data set", correction="bonferroni",
          statement="At equal training time, the cache trains better than selective backprop.",
          paper="feature_cache: its hit test costs one conv layer per image; selective backprop (Jiang et al. 2019) "
                "pays a whole forward pass to choose.",
          estimand="per data set: test accuracy of the last epoch finished within the shortest training time of the "
                   "three skipping trainers of a seed, caching minus selective backprop; mean over seeds (paired "
                   "t-interval)",
          rule="direction", parameters={"expected": "greater", "min_effect": 0.01},
          why="Equal time is the comparison that counts the cost of choosing. " + ONE_POINT.replace(
              "balanced accuracy", "accuracy")),
]
# stage 1 of the two-stage verdicts: each claim's pilot and planned n (written by `python -m lastlayer plan cross --write`)
CLAIMS = with_plans(CLAIMS, Path(__file__).with_name("planned.json"))


# --- from rows to the arrays the rules take -------------------------------------------------------------------

def tail_runs(rows) -> dict:
    """{(dataset, dim): {arm: {seed: TailRow}}}."""
    out: dict = {}
    for r in rows:
        if isinstance(r, TailRow) or getattr(r, "experiment", None) == "long tail":
            arm = r.head if not r.head.startswith("cosine") else f"{r.head} S={r.scale:g}"
            out.setdefault((r.dataset, int(r.dim)), {}).setdefault(arm, {})[int(r.seed)] = r
    return out


def skip_runs(rows) -> dict:
    """{dataset: {trainer: {seed: SkipRow}}}."""
    out: dict = {}
    for r in rows:
        if isinstance(r, SkipRow) or getattr(r, "experiment", None) == "skipping":
            out.setdefault(r.dataset, {}).setdefault(r.trainer, {})[int(r.seed)] = r
    return out


def paired(runs: dict, a: str, b: str, key: str) -> tuple[np.ndarray, np.ndarray]:
    """The measurement of settings a and b on the seeds both ran, in seed order."""
    seeds = sorted(set(runs.get(a, {})) & set(runs.get(b, {})))
    return (np.array([float(getattr(runs[a][s], key)) for s in seeds]),
            np.array([float(getattr(runs[b][s], key)) for s in seeds]))


def time_to_target(runs: dict, trainer: str) -> dict[int, float]:
    """{seed: training seconds to the target}, a miss counted as the whole training time plus one mean epoch. (A
    miss is NaN in a run's row and null once the row has been through a results file.)"""
    def seconds(r):
        t = float("nan") if r.seconds_to_target is None else float(r.seconds_to_target)
        return t if np.isfinite(t) else r.seconds + r.seconds / r.epochs
    return {s: seconds(r) for s, r in runs.get(trainer, {}).items()}


def relative_times(runs: dict) -> dict[str, np.ndarray]:
    """{trainer: time to the target / normal training's of the same seed}, on the seeds normal training ran."""
    normal = time_to_target(runs, "normal")
    out = {}
    for trainer in runs:
        t = time_to_target(runs, trainer)
        out[trainer] = np.array([t[s] / normal[s] for s in sorted(set(t) & set(normal))])
    return out


def init_runs(rows) -> dict:
    """{network: [InitRow of the evaluation seeds]}."""
    out: dict = {}
    for r in rows:
        if isinstance(r, InitRow) or getattr(r, "experiment", None) == "initialisers":
            if r.role == "eval":
                out.setdefault(r.network, []).append(r)
    return out


def jump_runs(rows) -> dict:
    """{network: [JumpRow]} (only networks with pooling have any)."""
    out: dict = {}
    for r in rows:
        if isinstance(r, JumpRow) or getattr(r, "experiment", None) == "variance picture":
            out.setdefault(r.network, []).append(r)
    return out


def _pooled(runs) -> bool:
    return any(r.pooled for r in runs)


def _method_scores(runs) -> dict[str, np.ndarray]:
    scores: dict = {}
    for r in sorted(runs, key=lambda r: r.seed):
        scores.setdefault(r.method, []).append(r.peak_acc)
    if "asv_backward" not in scores or len(scores) < 2:
        raise Missing("needs ASV backward and another initialiser")
    return {m: np.array(v) for m, v in scores.items()}


def _jump_pairs(runs, way: str) -> tuple[np.ndarray, np.ndarray]:
    """|jump| of Kaiming's and ASV's variant for `way` ('forward' or 'backward'), paired by (draw, layer)."""
    key = "fwd_jump" if way == "forward" else "bwd_jump"
    by = {(r.method, r.draw, r.layer): abs(getattr(r, key)) for r in runs}
    pairs = sorted((d, l) for m, d, l in by if m == f"kaiming_{way}" and (f"asv_{way}", d, l) in by)
    return (np.array([by[f"kaiming_{way}", d, l] for d, l in pairs]),
            np.array([by[f"asv_{way}", d, l] for d, l in pairs]))


def _label(dataset: str, dim: int | None = None) -> str:
    return dataset if dim is None else f"{dataset}, {dim}-D"


# --- the decisions ----------------------------------------------------------------------------------------------

def decide(rows, params) -> list:
    """Every claim of `CLAIMS`, decided from the rows (`TailRow`s, `JumpRow`s, `InitRow`s, `SkipRow`s) of
    `run(params)`."""
    tail, skip = tail_runs(rows), skip_runs(rows)
    v = Verdicts(CLAIMS)
    v.add("tail-fixing-no-harm", _parts(lambda: [
        (_label(d, k), paired(arms, "fixed_random", "learned", "balanced_acc"))
        for (d, k), arms in tail.items()], paired=True))
    v.add("tail-guided-fewest-lost", _parts(lambda: [
        (_label(d), (_scores(arms, "lost", ["fixed_guided"]),)) for (d, k), arms in tail.items() if k == 2]))
    v.add("tail-fixed-best-accuracy", _parts(lambda: [
        (_label(d, k), (_scores(arms, "balanced_acc", FIXED_ARMS),)) for (d, k), arms in tail.items()]))
    v.add("tail-fixed-best-worst-class", _parts(lambda: [
        (_label(d, k), (_scores(arms, "worst_class_acc", FIXED_ARMS),)) for (d, k), arms in tail.items()]))
    init, jump = init_runs(rows), jump_runs(rows)
    v.add("asv-backward-best-other-networks", _parts(lambda: [
        (net, (_method_scores(runs),)) for net, runs in init.items() if _pooled(runs)]))
    v.add("asv-keeps-variance-other-networks", _parts(lambda: [
        (f"{net}, {way}", _jump_pairs(runs, way)) for net, runs in jump.items() for way in ("forward", "backward")],
        paired=True))
    v.add("skip-cache-fastest", _parts(lambda: [(d, (_relative(runs),)) for d, runs in skip.items()]))
    v.add("skip-cache-beats-random", _parts(lambda: [
        (d, paired(runs, "caching", "random", "test_acc")) for d, runs in skip.items()], paired=True))
    v.add("skip-cache-beats-selective-time", _parts(lambda: [
        (d, paired(runs, "caching", "selective", "acc_at_equal_time")) for d, runs in skip.items()], paired=True))
    return v.done()


def _parts(parts, **extra):
    """A measure for `Verdicts.add`: the claim decided on each (label, data) that `parts()` gives."""
    def measure(claim):  # a part with fewer than two values is 'not testable' (decide_parts says why)
        return decide_parts(claim, parts(), **extra)
    return measure


def _scores(arms: dict, key: str, claimed=None) -> dict[str, np.ndarray]:
    """{arm: its runs' `key`, in seed order}; every claimed arm must be there (else the claim is not testable)."""
    scores = {arm: np.array([float(getattr(r, key)) for _, r in sorted(runs.items())]) for arm, runs in arms.items()}
    missing = sorted(set(claimed or ()) - set(scores))
    if missing:
        raise Missing(f"the claimed heads {', '.join(missing)} were not run")
    if len(scores) < 2 or min(len(s) for s in scores.values()) < 2:
        raise Missing("needs at least two heads, with at least 2 seeds each")
    return scores


def _relative(runs: dict) -> dict[str, np.ndarray]:
    scores = relative_times(runs)
    if "caching" not in scores or len(scores) < 2 or min(len(s) for s in scores.values()) < 2:
        raise Missing("needs the caching trainer and another, with normal training, on at least 2 seeds")
    return scores


# claims measured in wall-clock time: no two runs share their numbers, so the nbval reference does not compare them
TIMED = ("skip-cache-fastest", "skip-cache-beats-selective-time")
