"""The ASV poster's claims, declared before any run, and `decide`, which turns the runs into verdicts.

Measurements (`experiments.run` returns them as `Runs.rows`):
- `PooledRow`s: the variance picture of F34 at initialisation, one per (method, weight draw, pooled layer) with
  the log2 jumps of the forward and backward variance across the layer, their predictions, and τ, γ measured;
- `GridRow`s of Tables 1, 2 and 3: one per trained model (method, optimizer, lr, seed, dataset, peak_acc,
  diverged).
A run that diverged keeps the peak accuracy it reached before (chance if in its first epoch): it counts as a
poor run, never dropped, and the `ours` line reports how many diverged.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lastlayer import stats
from lastlayer.claims import Claim, Missing, Verdicts, decide_parts, with_plans
from lastlayer.numbers import format_interval

from .reference import METHODS, PAPER_DATASETS, TABLE1, TABLE2, TABLE3

if TYPE_CHECKING:
    from .experiments import GridRow, Params, PooledRow

LABELS = {"xavier": "Xavier", "kaiming_forward": "Kaiming (forward)", "kaiming_backward": "Kaiming (backward)",
          "asv_forward": "ASV (forward)", "asv_backward": "ASV (backward)"}
CLASSICAL = ("xavier", "kaiming_forward", "kaiming_backward")
PROXY = ("Fashion-MNIST subsets and a shallower, narrower network of the same family, trained for a few epochs "
         "on 2 CPU cores, instead of the paper's {net} on its image folders for 1000 epochs")
NO_IMAGES = ("the paper's Car, Food and Fungi image folders are not available here; the `paper` profile reads "
             "them from $LASTLAYER_DATA/asv (car/, food/, fungi/, each with train/ and val/) and trains {net} for "
             "1000 epochs on a GPU")
PICTURE = "proxy: F34 at initialisation fed standard-normal images (the theory's unit-variance input) rather than photographs"
# One margin for one kind of quantity: every picture claim is a log2 ratio of a variance (a jump, or tau) to its
# target or prediction. Half of log2 2 = 1, the smallest variance correction any compared method makes (ReLU's
# factor 1/2, Kaiming's whole correction over an uncorrected fan-in; the pooling corrections ASV adds in F34 are
# larger: log2(tau/0.5) = +2.36 and log2(gamma/0.5) = -2.17 at the stem, -1.59 and -11.2 at the global pool).
VARIANCE_MARGIN = 0.5  # log2: a variance kept, or predicted, within a factor 2^0.5 (41%)
VARIANCE_WHY = ("one margin for every log2 ratio of a variance to its target or prediction: 0.5, half of log2 2 = 1, "
                "the smallest variance correction a compared method makes (ReLU's factor 1/2; the pooling corrections "
                "ASV adds in F34 are larger, log2(tau / 0.5) = +2.36 and log2(gamma / 0.5) = -2.17 at the stem pool, "
                "-1.59 and -11.2 at the global pool), so an interval inside +-0.5 is nearer 'kept' than 'a correction "
                "missed'. A factor 2 (log2 1) would call a layer that ignores ReLU 'kept', and the errors compound: a "
                "factor 2 at each of F34's 34 weight layers is 2^34, the exploding or vanishing the method exists to "
                "prevent")


def _margin(table: dict, claimed: tuple[str, ...]) -> dict[str, float]:
    """{row: best claimed minus best other, as a fraction} of a published table (percent)."""
    return {k: (max(row[m] for m in claimed) - max(v for m, v in row.items() if m not in claimed)) / 100
            for k, row in table.items()}


# The smallest advantage that counts as the paper's, for the best_setting claims (fractions: the rules see those)
T1_MARGINS = _margin(TABLE1, ("asv_backward",))  # car 0.0839, food 0.0232, fungi 0.0157
T1_MIN_EFFECT = round(min(T1_MARGINS.values()) / 2, 5)  # 0.00785: half of Fungi's 1.57 points
T3_MARGINS = _margin(TABLE3, ("asv_forward", "asv_backward"))  # sgd 0.0014, adadelta 0.1069, adagrad 0.0696, rmsprop 0.0007, adam 0.0309
T3_MIN_EFFECT = round(float(np.median(list(T3_MARGINS.values()))) / 2, 5)  # 0.01545: half of Adam's 3.09 points
T1_WHY = (f"; min_effect {T1_MIN_EFFECT:g} (0.785 points) is half the smallest margin Table 1 publishes (Fungi, "
          f"69.73 against 68.16%: 1.57 points; Car 8.39, Food 2.32): an advantage below it is not the paper's")
T3_WHY = (f"; min_effect {T3_MIN_EFFECT:g} (1.545 points) is half the median of the five margins Table 3 publishes "
          "(3.09 points, Adam: 51.15 against 48.06%). Not half the smallest: SGD's and RMSprop's margins (0.14 and "
          "0.07 points, 2 and 1 of Car's 1,394 validation images) are ties in the paper's own numbers, and half of "
          "0.07 points is below what any validation set here resolves (one image of the proxy's 2,000 is 0.05 "
          "points), which would leave the rule as it was with min_effect 0. For those two optimizers the claim so "
          "asks more than the paper's numbers show")
T2_MARGIN = _margin(TABLE2, ("asv_backward",))["car"]  # 0.0954
T2_MIN_EFFECT = round(T2_MARGIN / 2, 5)  # 0.0477: half of Car's 9.54 points
T2_WHY = (f"; min_effect {T2_MIN_EFFECT:g} ({100 * T2_MIN_EFFECT:.2f} points) is half the one margin Table 2 "
          f"publishes (80.77 against 71.23%: {100 * T2_MARGIN:.2f} points), as Tables 1 and 3 take half of theirs: a "
          "lead below it is nearer no lead than the paper's. Not Table 1's 0.785 points: Table 2 publishes its own "
          "margin, on its own network, six times Fungi's, and a lead of a few points is a smaller effect than that")
TABLE2_REASON = (
    "Table 2 is F50 on Car with Adam, most likely at the best of Table 1's learning-rate grid (its caption is "
    "Table 1's; the same network, data and optimizer give ASV backward 51.15% in Table 3's Adam row against 80.77% "
    "here, so Table 3's one-rate protocol is not Table 2's). So the table2 rows run Table 1's Adam grid (`lrs`, "
    "1e-6 ... 1e-3) with Table 3's network on Table 3's dataset (f20_narrow, F50's proxy, on Fashion-MNIST; F50 on "
    "Car in the paper profile), on `table2_seeds` seeds of their own rather than Table 3's Adam rows at one rate")
T2_NOT_RUN = "table2_seeds is 0: this run trained no table2 rows (Table 1's Adam grid on Table 3's network and data)"
MARGIN_REVISED = (
    "Set after the pilot run, on a reviewer's request for one margin per kind of quantity: the margin of every "
    "log2 ratio of a variance to its target or prediction is now 0.5 (factor 2^0.5), half of ReLU's factor 2, the "
    "smallest variance correction a compared method makes. It was 1.0 (factor 2) for forward- and "
    "backward-variance-pooling, too wide to tell a kept variance from one that misses that correction, and 0.25 "
    "(a stated 19%, no reason from the paper) for stem-pool-jump-windows and global-pool-tau: tighter for the first "
    "two, looser for the last two. (Earlier revisions: the two pooling claims were declared part by part, the two "
    "theory claims changed schema only.)")
T1_REVISED = ("Set after the pilot run: min_effect declared, half the smallest margin of Table 1 (Fungi, 1.57 "
              "points, so 0.00785 as the fraction the rule sees); it was 0, so a tie could never be not reproduced. "
              "`unit` points only writes the boundary so. Earlier: decided part by part.")
T3_REVISED = ("Set after the pilot run: min_effect declared, half the median margin of Table 3 (Adam, 3.09 points, so "
              "0.01545 as the fraction the rule sees), not half its smallest (0.07 points, one validation image), "
              "see why; it was 0. `unit` points only writes the boundary so. Earlier: decided part by part.")

CLAIMS = [
    Claim(id="forward-variance-pooling",
          statement="ASV forward keeps the forward signal variance across the pooling layers of F34.",
          paper="ASV forward 'preserves the variance of the forward propagation', pooling included (poster, "
                "section ASV); no number is given.",
          estimand="per weight draw, log2 Var(u_{l+1}) / Var(u_l) across each pooled layer l of F34 (the 3x3 max "
                   "pool after layer 1, global average pooling after layer 33) under ASV forward",
          rule="equivalence", parameters={"margin": VARIANCE_MARGIN, "alpha": stats.bonferroni(0.05, 2)},
          why="'kept' is read as |log2 jump| < 0.5: " + VARIANCE_WHY + ". One part per pooled layer, alpha 0.05 "
              "split over the two (Bonferroni) so a contradiction of either is not a multiple-test artefact",
          setting=PICTURE, parts="pooled layer of F34",
          revised=MARGIN_REVISED),
    Claim(id="backward-variance-pooling",
          statement="ASV backward keeps the backward gradient variance across the pooling layers of F34.",
          paper="ASV backward 'preserves the variance of the backward propagation', pooling included; no number.",
          estimand="per weight draw, log2 Var(dE/dz_{l-1}) / Var(dE/dz_l) across each pooled layer l of F34 under "
                   "ASV backward, from a unit-variance gradient at the logits",
          rule="equivalence", parameters={"margin": VARIANCE_MARGIN, "alpha": stats.bonferroni(0.05, 2)},
          why="as for the forward claim (margin 0.5 in log2, the one margin of every variance claim). The official "
              "code's cap (3x the std with gamma 1/2) is part of the method we run; at the global pool it binds, "
              "which the verdict then reflects",
          setting=PICTURE, parts="pooled layer of F34",
          revised=MARGIN_REVISED),
    Claim(id="classical-jump-more",
          statement="Xavier and Kaiming, which ignore pooling, let the variance jump more than ASV does across "
                    "F34's pooling layers.",
          paper="'Both [Xavier and Kaiming] ignore the pooling operation'; the poster's variance histograms.",
          estimand="per weight draw, |log2 jump| of a classical method minus |log2 jump| of the matching ASV "
                   "method (forward jumps: ASV forward; backward: ASV backward), paired by draw (same seed, same "
                   "standard-normal weights up to each layer's scale); one part per direction, pooled layer and "
                   "classical method",
          rule="direction", parameters={"expected": "greater", "min_effect": VARIANCE_MARGIN,
                                        "alpha": stats.bonferroni(0.05, 12)},
          why="12 parts (2 directions x 2 pooled layers x 3 methods) that must all hold; Bonferroni keeps a false "
              "contradiction of any of them at 5%. min_effect 0.5 in log2 (a factor 2^0.5): the margin within which "
              "the variance claims call a variance kept, so a classical jump larger than ASV's by less than that is "
              "no difference between keeping the variance and not; the paper gives no number for this difference",
          setting=PICTURE, parts="direction, pooled layer and classical method",
          revised="Set after the pilot run: min_effect 0.5 in log2 declared (it was 0), so that a part whose "
                  "classical jump exceeds ASV's by less than the band in which a variance counts as kept (the "
                  "margin of forward- and backward-variance-pooling, from ReLU's factor 2) is not reproduced "
                  "rather than reproduced or left open; with it every part reaches an exit at a finite n. In the "
                  "pilot this turns one part (backward, layer 1, Kaiming forward: +0.22, an exact difference) from "
                  "reproduced to not reproduced. Earlier: decided part by part, `paired` moved to the data."),
    Claim(id="stem-pool-jump-windows",
          statement="The backward jump of ASV backward across F34's stem pool is what gamma predicts when it is "
                    "counted over the actual, overlapping 3x3 stride-2 windows.",
          paper="The paper's gamma = (1 - 2^-T)/T assumes disjoint windows (stride = kernel); the stem pool has "
                "stride 2 < 3, so each input lies in up to 4 windows.",
          estimand="per ASV-backward weight draw, measured log2 backward jump across layer 1 minus the jump predicted "
                   "with gamma = sum over windows of (1 - 2^-T_w) / inputs (`lastlayer.init.windowed_max_gamma`)",
          rule="equivalence", parameters={"margin": VARIANCE_MARGIN, "alpha": 0.05},
          why="a formula 'explains' a jump when it predicts it within the margin of every variance claim, 0.5 in "
              "log2: " + VARIANCE_WHY + ". The paper's gamma is off by log2(9/4) = 1.17 here, more than twice that",
          setting="extension", revised=MARGIN_REVISED),
    Claim(id="global-pool-tau",
          statement="Average pooling's tau, derived for independent positions, holds at F34's global average pool.",
          paper="tau = (1 + (T-1)/pi) / (2T) for ReLU then average pooling over T independent elements "
                "(0.166 for T = 49).",
          estimand="per weight draw, log2 of the measured tau = E[z_33^2] / Var(u_33) at F34's global pool over the "
                   "formula's",
          rule="equivalence", parameters={"margin": VARIANCE_MARGIN, "alpha": 0.05},
          why="the same margin, 0.5 in log2, as every variance claim (tau is the ratio the forward jump at this "
              "layer follows); the positions of one channel share its filter (and the positive mean of the ReLU "
              "inputs), so they need not be independent",
          setting="extension", revised=MARGIN_REVISED),
    Claim(id="asv-backward-best-adam",
          statement="With Adam, ASV backward gives the best validation accuracy on every dataset (Table 1).",
          paper="ASV backward best on Car, Food and Fungi: 81.49 / 78.81 / 69.73% against at most 73.10 / 76.49 / "
                "68.16% for the other methods (F34, 1000 epochs).",
          estimand="per dataset, best mean over seeds of ASV backward minus that of the best other method, each "
                   "seed's accuracy being its peak validation accuracy at the best learning rate of the grid for "
                   "that seed (the paper reports the best of its grid)",
          rule="best_setting", parameters={"claimed": ["asv_backward"], "min_effect": T1_MIN_EFFECT, "alpha": 0.05},
          why="one dataset in the proxy, so no multiplicity correction; several datasets are combined as parts "
              "that must all hold" + T1_WHY,
          setting="proxy: " + PROXY.format(net="F34"), parts="dataset", unit="points",
          revised=T1_REVISED),
    Claim(id="asv-backward-best-adam-paper",
          statement="With Adam, ASV backward gives the best validation accuracy on Car, Food and Fungi (Table 1).",
          paper="81.49 / 78.81 / 69.73% for ASV backward against at most 73.10 / 76.49 / 68.16%.",
          estimand="as for the proxy, on F34 and the paper's three image folders",
          rule="best_setting", parameters={"claimed": ["asv_backward"], "min_effect": T1_MIN_EFFECT,
                                           "alpha": stats.bonferroni(0.05, 3)},
          why="three datasets that must all hold; Bonferroni over them" + T1_WHY + ". " + NO_IMAGES.format(net="F34"),
          setting="paper setup", parts="dataset", unit="points",
          revised=T1_REVISED),
    Claim(id="asv-best-optimizers",
          statement="An ASV method (forward or backward) gives the best accuracy whichever the optimizer (Table 3).",
          paper="An ASV method is best for all five optimizers on F50 / Car (forward for SGD, Adagrad, RMSprop; "
                "backward for Adadelta, Adam).",
          estimand="per optimizer, best mean peak validation accuracy over seeds of ASV forward and backward minus "
                   "that of the best classical method",
          rule="best_setting", parameters={"claimed": ["asv_forward", "asv_backward"], "min_effect": T3_MIN_EFFECT,
                                           "alpha": stats.bonferroni(0.05, 5)},
          why="five optimizers that must all hold; Bonferroni over them. Each optimizer runs at one learning rate "
              "(the paper gives none)" + T3_WHY,
          setting="proxy: " + PROXY.format(net="F50"), parts="optimizer", unit="points",
          revised=T3_REVISED),
    Claim(id="asv-best-optimizers-paper",
          statement="An ASV method gives the best accuracy on F50 / Car for SGD, Adadelta, Adagrad, RMSprop and Adam "
                    "(Table 3).",
          paper="ASV best in 5 of 5 optimizers (e.g. Adam: 51.15% against 48.06% for Kaiming backward).",
          estimand="as for the proxy, on F50 and the Car image folder",
          rule="best_setting", parameters={"claimed": ["asv_forward", "asv_backward"], "min_effect": T3_MIN_EFFECT,
                                           "alpha": stats.bonferroni(0.05, 5)},
          why="five optimizers that must all hold; Bonferroni over them" + T3_WHY + ". " + NO_IMAGES.format(net="F50"),
          setting="paper setup", parts="optimizer", unit="points",
          revised=T3_REVISED),
    Claim(id="asv-backward-best-adam-f50",
          statement="With Adam, ASV backward also gives the 50-layer bottleneck network F50 the best validation "
                    "accuracy (Table 2).",
          paper=f"80.77% for ASV backward against at most 71.23% (Kaiming backward) for the other methods: ahead by "
                f"{100 * T2_MARGIN:.2f} points (F50, Car, Adam).",
          estimand="best mean over seeds of ASV backward minus that of the best other method, each seed's accuracy "
                   "being its peak validation accuracy at the best Adam learning rate of Table 1's grid for that "
                   "seed, with Table 3's network on Table 3's dataset (the paper reports the best of its grid)",
          rule="best_setting", parameters={"claimed": ["asv_backward"], "min_effect": T2_MIN_EFFECT, "alpha": 0.05},
          why="one dataset, so no multiplicity correction. " + TABLE2_REASON + T2_WHY,
          setting="proxy: " + PROXY.format(net="F50"), unit="points",
          revised="Set after the pilot run: was 'not testable' (not run); Table 2's grid is now run on F50's proxy, "
                  "with its own pilot on fresh seeds."),
    Claim(id="asv-backward-best-adam-f50-paper",
          statement="With Adam, ASV backward gives F50 the best validation accuracy on Car (Table 2).",
          paper=f"80.77% for ASV backward against at most 71.23% (Kaiming backward) for the other methods: ahead by "
                f"{100 * T2_MARGIN:.2f} points (F50, Car, Adam).",
          estimand="as for the proxy, on F50 and the Car image folder",
          rule="best_setting", parameters={"claimed": ["asv_backward"], "min_effect": T2_MIN_EFFECT, "alpha": 0.05},
          why="one dataset, so no multiplicity correction. " + TABLE2_REASON + T2_WHY + ". " +
              NO_IMAGES.format(net="F50"),
          setting="paper setup", unit="points",
          revised="Set after the pilot run: the paper setup of asv-backward-best-adam-f50, which was one 'not "
                  "testable' claim for both settings; decided only by a run of F50 on the Car folder."),
]
# stage 1 of the two-stage verdicts: each claim's pilot and planned n (written by `python -m lastlayer plan asv_init --write`)
CLAIMS = with_plans(CLAIMS, Path(__file__).with_name("planned.json"))
BY_ID = {c.id: c for c in CLAIMS}


# ---------------------------------------------------------------- from measurements to decisions

def _each(d: stats.Decision, text) -> str:
    """The `ours` line of a claim decided part by part: each part's label and `text(part)`, or why it is not
    testable."""
    return "; ".join(p.detail if p.verdict == "not testable" else f"{p.label}: {text(p)}" for p in d.parts or (d,))


def _interval(d: stats.Decision) -> str:
    return f"{format_interval(d.estimate, d.interval, d.n, digits=2, sign=True)}, {d.verdict}"


def _of(rows, method: str, pool: str = "") -> dict[tuple[int, str], list[PooledRow]]:
    """{(layer, pool): rows of `method` at that pooled layer, by draw}, layers in order; `pool` keeps only the
    layers whose pooling starts so ('max', 'avg')."""
    out: dict = {}
    for r in sorted((r for r in rows if r.method == method and r.pool.startswith(pool)), key=lambda r: r.layer):
        out.setdefault((r.layer, r.pool), []).append(r)
    return {k: sorted(v, key=lambda r: r.draw) for k, v in out.items()}


def _col(rows, name: str) -> np.ndarray:
    return np.array([getattr(r, name) for r in rows], float)


def _layers(rows, method: str, value) -> list[tuple[str, tuple]]:
    """One part per pooled layer: `value` of the draws of `method` there (a function of their rows)."""
    return [(f"layer {layer} ({pool})", (value(g),)) for (layer, pool), g in _of(rows, method).items()]


def _classical(rows) -> list[tuple[str, tuple]]:
    """Parts of `classical-jump-more`: per direction, classical method and pooled layer, |jump| of the classical
    method and of the matching ASV method, paired by draw."""
    parts = []
    for direction, asv in (("fwd", "asv_forward"), ("bwd", "asv_backward")):
        ref = _of(rows, asv)
        for m in CLASSICAL:
            other = _of(rows, m)
            parts += [(f"{direction} layer {layer} {LABELS[m]}",
                       (np.abs(_col(other.get((layer, pool), []), f"{direction}_jump")),
                        np.abs(_col(g, f"{direction}_jump"))))
                      for (layer, pool), g in ref.items()]
    return parts


def _one_layer(rows, method: str, pool: str, value, which: int) -> tuple[np.ndarray]:
    """`value` of the draws of `method` at one layer with pooling `pool` (`which`: 0 the first, -1 the last)."""
    layers = list(_of(rows, method, pool).values())
    if not layers:
        raise Missing(f"the variance picture has no {method} rows at a {pool} pooled layer")
    return (value(layers[which]),)


def _picture(v: Verdicts, rows) -> None:
    fwd, bwd = (lambda g: _col(g, "fwd_jump")), (lambda g: _col(g, "bwd_jump"))
    v.add("forward-variance-pooling", lambda c: decide_parts(c, _layers(rows, "asv_forward", fwd)),
          lambda d: _each(d, _interval))
    v.add("backward-variance-pooling", lambda c: decide_parts(c, _layers(rows, "asv_backward", bwd)),
          lambda d: _each(d, _interval))
    v.add("classical-jump-more", lambda c: decide_parts(c, _classical(rows), paired=True),
          lambda d: _each(d, _interval))  # every part shows the interval that decided it
    stem_gap = lambda g: _col(g, "bwd_jump") - _col(g, "bwd_pred_windows")
    v.add("stem-pool-jump-windows", lambda c: c.decide(*_one_layer(rows, "asv_backward", "max", stem_gap, 0)),
          _interval)
    tau_log2 = lambda g: np.log2(_col(g, "tau") / _col(g, "tau_formula"))
    v.add("global-pool-tau", lambda c: c.decide(*_one_layer(rows, "asv_forward", "avg", tau_log2, -1)), _interval)


def best_of_grid(runs: list[GridRow]) -> dict[str, np.ndarray]:
    """{method: per-seed peak accuracy at the seed's best learning rate, seeds in order} for every method of
    `METHODS` (an empty array for a method with no run, which a rule then refuses as too few)."""
    best: dict[tuple[str, int], float] = {}
    for r in runs:
        best[r.method, r.seed] = max(best.get((r.method, r.seed), -np.inf), r.peak_acc)
    return {m: np.array([best[k] for k in sorted(k for k in best if k[0] == m)], float) for m in METHODS}


def _grid_parts(runs: list[GridRow], group: str) -> list[tuple[str, tuple]]:
    """One part per dataset (Table 1) or optimizer (Table 3), in the order run: the `best_of_grid` scores."""
    keys = dict.fromkeys(getattr(r, group) for r in runs)
    return [(k, (best_of_grid([r for r in runs if getattr(r, group) == k]),)) for k in keys]


def _grid_ours(d: stats.Decision, parts, runs: list[GridRow]) -> str:
    scores = dict(parts)

    def text(p):
        means = {m: float(np.mean(v)) for m, v in scores[p.label][0].items() if len(v)}
        top = max(means, key=means.get)
        return (f"best {LABELS[top]} {100 * means[top]:.1f}%; claimed minus best other, in points: "
                f"{format_interval(p.estimate, p.interval, p.n, scale=100, digits=1, sign=True)}, {p.verdict}")
    diverged = sum(r.diverged for r in runs)
    return f"{_each(d, text)}; {diverged} of {len(runs)} runs diverged (counted at the peak they reached)"


def _table(v: Verdicts, proxy: str, paper: str, runs: list[GridRow], group: str, paper_setup: bool, net: str,
           not_run: str | None = None):
    """The claim of one table whose setting the run matches, from its runs; the other one is not testable.
    `not_run`: why a run may have no rows of this table at all."""
    measured, other = (paper, proxy) if paper_setup else (proxy, paper)
    parts = _grid_parts(runs, group)

    def measure(c):
        if not runs and not_run:
            raise Missing(not_run)
        return decide_parts(c, parts)
    v.add(measured, measure, lambda d: _grid_ours(d, parts, runs))
    v.add(other, stats.not_testable(NO_IMAGES.format(net=net) if other == paper else
                                    "this run trained the paper's setup itself, so the proxy was not run"))


def decide(rows, params: Params) -> list[tuple[Claim, stats.Decision, str | None]]:
    """Every claim of CLAIMS with its decision and a line of what we measured. Pure: rows in, decisions out.

    `rows` are `experiments.run`'s (`PooledRow`s of F34's variance picture, `GridRow`s of Tables 1, 2 and 3).
    The proxy and the paper-setup claim of a table are exclusive: `params` say which setting the table ran
    (the paper's network on its image folders, or not), that claim is decided, the other is not testable.
    A claim whose rows are missing is not testable, with the reason.
    """
    v = Verdicts(CLAIMS)
    _picture(v, [r for r in rows if r.experiment == "variance picture"])
    table1, table2, table3 = ([r for r in rows if r.experiment == t] for t in ("table1", "table2", "table3"))
    _table(v, "asv-backward-best-adam", "asv-backward-best-adam-paper", table1, "dataset",
           set(params.datasets) <= set(PAPER_DATASETS) and params.model == "f34", "F34")
    f50_on_car = params.table3_dataset in PAPER_DATASETS and params.table3_model == "f50"
    _table(v, "asv-backward-best-adam-f50", "asv-backward-best-adam-f50-paper", table2, "dataset", f50_on_car, "F50",
           not_run=T2_NOT_RUN)
    _table(v, "asv-best-optimizers", "asv-best-optimizers-paper", table3, "optimizer", f50_on_car, "F50")
    return v.done()
