"""The report's claims, declared before any run, and `decide`: from the per-round rows to verdicts.

`decide` reads nothing but the rows of `experiments.run` (`RoundRow`, `GradientRow`), which the notebook saves
with `report.add_runs`, so every verdict can be recomputed from the results file (`RoundRow(**entry)` or,
for experiment 'fig2', `GradientRow(**entry)` rebuilds a row).
A sweep's rows hold only the values that differ from Table I; the Table I value's rounds come from the
Table I rows (same seeds, same pairs).

Choices shared by the claims:
- A round whose loss became non-finite counts with accuracy 0.5 (a model that learned nothing), never
  dropped: a setting that diverges often must not look good because only its lucky rounds are averaged.
- A claim made for all three models (or all three layers) is one claim of three parts that must all hold
  (`stats.combine`); each part is tested at alpha 0.05 / 3 (Bonferroni) so that the claim keeps 0.05.
- "Changes little" is an equivalence margin of 0.03 accuracy: less than the smallest gap between two
  models in Table I (0.05), so that "little" means smaller than what the report calls a difference.
"""
from __future__ import annotations

import math

import numpy as np

from lastlayer import stats
from lastlayer.claims import Claim, Missing, Verdicts, decide_parts
from lastlayer.numbers import format_interval
from lastlayer.papers.digit_pairs import reference as ref

DIVERGED_ACC = 0.5   # the accuracy a diverged round counts with
DEAD_WITHIN = 5      # "within a few mini-batches": the body must be dead from this mini-batch on, or earlier
MARGIN = 0.03        # "changes little" / "about the paper's value", in accuracy
ALPHA3 = stats.bonferroni(0.05, 3)
ALPHA2 = stats.bonferroni(0.05, 2)
REVISED_PARTS = ("Declared `parts`: the claim was always decided part by part (each part at the declared alpha) and "
                 "combined with stats.combine, which the criterion now says; the arithmetic is unchanged.")
REVISED_CRITERION = ("The hand-written criterion is replaced by the rule's own sentence and `parts` is declared; the "
                     "declared alpha is kept, so the arithmetic is unchanged.")

CLAIMS = [
    Claim(id="model-order", statement="Siamese 10 is more accurate than siamese 2, which is more accurate than the pair model.",
          paper="0.98 ± 0.006 > 0.93 ± 0.004 > 0.83 ± 0.012 (Table I, 10 rounds)",
          estimand="two differences of mean test accuracy over rounds (Welch): siamese 10 minus siamese 2, "
                   "siamese 2 minus pair; each model at its Table I setting",
          rule="direction", parameters={"expected": "greater", "alpha": ALPHA2},
          why="The ranking is the report's central result; two gaps that must both hold, so each is tested at "
              "0.05 / 2 (Bonferroni).",
          setting="paper setup", parts="gap between neighbouring models", revised=REVISED_CRITERION),
    Claim(id="table1-values", statement="Table I's accuracies: pair 0.83, siamese 2 0.93, siamese 10 0.98.",
          paper="0.83 ± 0.012, 0.93 ± 0.004, 0.98 ± 0.006 (Table I)",
          estimand="per model, mean test accuracy over rounds minus the paper's Table I mean",
          rule="equivalence", parameters={"margin": MARGIN, "alpha": ALPHA3},
          why="Three values that must all match, each tested at 0.05 / 3. A margin of 0.03 is about 2.5 times "
              "the largest round-to-round std of Table I and below its smallest gap between models (0.05).",
          setting="paper setup", parts="model", revised=REVISED_CRITERION),
    Claim(id="batch-norm-helps", statement="Batch normalisation improves the accuracy of all three models.",
          paper="higher accuracy with batch norm in all three cases (Figure 1a)",
          estimand="per model, mean test accuracy with batch norm minus without (Welch), skips off",
          rule="direction", parameters={"expected": "greater", "alpha": ALPHA3},
          why="Three models, each tested at 0.05 / 3. Figure 1a averages over channels and learning rates; we "
              "compare at each model's Table I setting, the one the report recommends.",
          setting="proxy: at each model's Table I learning rate and sizes, not averaged over channels and learning rates",
          parts="model", revised=REVISED_PARTS),
    Claim(id="skip-little", statement="Skip connections change the accuracy little.",
          paper="'the presence or not of skip connections is not strongly influencing' the accuracy (Figure 1a)",
          estimand="per model, mean test accuracy with skips minus without (Welch), batch norm on",
          rule="equivalence", parameters={"margin": MARGIN, "alpha": ALPHA3},
          why="'Not strongly' as an equivalence margin of 0.03 (below Table I's smallest gap between models); "
              "three models, each at 0.05 / 3.",
          setting="proxy: at each model's Table I learning rate and sizes, not averaged over channels and learning rates",
          parts="model", revised=REVISED_PARTS),
    Claim(id="best-lr", statement="All three models are most accurate at a learning rate of 0.1 or 0.25.",
          paper="'all three models have higher performances for learning rate in the range between 0.1 and 0.25' (Figure 1b)",
          estimand="per model, best mean test accuracy among the rates 0.1 and 0.25 minus the best among the "
                   "other rates of the sweep (Welch)",
          rule="best_setting", parameters={"claimed": list(ref.BEST_LRS), "higher_is_better": True, "alpha": ALPHA3},
          why="The report's grid of rates (0.001 to 1); three models, each at 0.05 / 3. Diverged rounds count 0.5.",
          setting="proxy: batch norm on, skips off, Table I sizes, not averaged over all parameter combinations",
          parts="model",
          revised="Declared `parts` (the claim was always decided per model and combined), and the estimand says "
                  "Welch where it said 'bootstrapped over rounds', which the rule never did; the arithmetic is "
                  "unchanged."),
    Claim(id="aux-helps", statement="The auxiliary digit loss improves siamese 2.",
          paper="siamese 2 with weights (1, 10^-0.5) beats the same model without auxiliary loss (Figure 1c)",
          estimand="mean test accuracy of siamese 2 with w2 = 10^-0.5 minus with w2 = 0 (Welch)",
          rule="direction", parameters={"expected": "greater", "alpha": 0.05},
          why="One comparison at the report's level of 0.05; w2 = 0 is the left end of Figure 1c's sweep.",
          setting="paper setup"),
    Claim(id="aux-weight", statement="A moderate auxiliary-loss weight, 0.1 or 10^-0.5, is best for siamese 2.",
          paper="best mean at (1, 0.1), most consistent at (1, 10^-0.5); larger weights hurt the final classification (Figure 1c)",
          estimand="best mean test accuracy among w2 in {0.1, 10^-0.5} minus the best among the other weights "
                   "of the sweep (Welch)",
          rule="best_setting", parameters={"claimed": list(ref.BEST_W_AUX), "higher_is_better": True, "alpha": 0.05},
          why="The report names two weights as best; one claim at 0.05. Diverged rounds count 0.5.",
          setting="paper setup",
          revised="The estimand said 'bootstrapped over rounds' but the rule has always compared settings by Welch "
                  "t-intervals; the estimand now says so, and the arithmetic is unchanged."),
    Claim(id="sizes-little", statement="The layer sizes do not affect the accuracy.",
          paper="'the dimensions of the layers do not affect the performance' (Figure 1d)",
          estimand="per layer (c1, c2, hidden), mean test accuracy of the pair model at the largest minus the "
                   "smallest size of the sweep (Welch)",
          rule="equivalence", parameters={"margin": MARGIN, "alpha": ALPHA3},
          why="The extremes of each sweep, where an effect would be largest; margin 0.03 as for skips; three "
              "layers, each at 0.05 / 3.",
          setting="proxy: the pair model only, at its Table I learning rate",
          parts="layer", revised=REVISED_PARTS),
    Claim(id="dead-gradients", statement="Without batch norm the gradients of the layers drop to 0 within a few mini-batches.",
          paper="without batch norm 'the gradients at any layer drop to 0 after two minibatches' (Figure 2)",
          estimand="share of rounds of the pair model without batch norm (Table I setting, learning rate 1) whose "
                   "body layers (all but the head) all have a gradient of exactly 0 from mini-batch 5 or earlier "
                   "to the end of the record",
          rule="rate", parameters={"threshold": 0.5, "side": "above", "alpha": 0.05},
          why="The report shows one run; we ask whether it is what most rounds do (rate above one half). "
              "'Exactly 0', per layer: dead ReLUs give exact zeros, and the head is left out because its bias "
              "keeps a gradient when the body is dead. Diverged rounds count as not dead.",
          setting="paper setup"),
    Claim(id="bn-keeps-gradients", statement="With batch norm the gradients do not die.",
          paper="'normalization preserved the gradients and the ongoing of the learning during all the minibatches' (Figure 2)",
          estimand="share of rounds of the pair model with batch norm (Table I setting) whose body layers die as in "
                   "dead-gradients",
          rule="rate", parameters={"threshold": 0.5, "side": "below", "alpha": 0.05},
          why="The mirror of dead-gradients: most rounds with batch norm keep their gradients.",
          setting="paper setup"),
    Claim(id="siamese-gradients", statement="The effect of batch norm on the gradients is the same for the siamese network.",
          paper="'the effect was the same also for the siamese network' (Section III; no figure)",
          estimand="the dead-gradient rate of the siamese models without batch norm",
          rule="not testable",
          parameters={"reason": "Not measured here: the report gives neither the siamese model nor the learning "
                                "rate behind this remark, and the 15-minute budget goes to the pair model's Figure 2."},
          setting="paper setup"),
]


NAMES, KINDS = ref.NAMES, list(ref.NAMES)


# ---------------------------------------------------------------------------------------------------
# Reading the rows (`RoundRow` and `GradientRow`, read by attribute).

def _acc(row) -> float:
    a = row.test_acc
    return DIVERGED_ACC if a is None or (isinstance(a, float) and math.isnan(a)) else float(a)


def matches(row, where: dict) -> bool:
    return all(getattr(row, k, None) == v for k, v in where.items())


def accuracies(rows, **where) -> np.ndarray:
    """Test accuracies (diverged rounds as DIVERGED_ACC) of the round rows that match every `where` item."""
    return np.array([_acc(r) for r in rows if r.experiment != "fig2" and matches(r, where)])


def sweep(rows, experiment: str, kind: str, key: str) -> dict:
    """{value of `key`: accuracies} of a sweep, with Table I's value of `key` taken from the Table I rows."""
    base = [r for r in rows if r.experiment == "table1" and r.kind == kind]
    out = {getattr(base[0], key): accuracies(base)} if base else {}
    for r in rows:
        if r.experiment == experiment and r.kind == kind and r.varied == key:
            out.setdefault(getattr(r, key), None)
    for v in out:
        if out[v] is None:
            out[v] = accuracies(rows, experiment=experiment, kind=kind, varied=key, **{key: v})
    return dict(sorted(out.items()))


def combo(rows, kind: str, batch_norm: bool, skip: bool) -> np.ndarray:
    """Accuracies of one (batch norm, skip) combination of Figure 1a; Table I's is (True, False)."""
    if (batch_norm, skip) == (True, False):
        return accuracies(rows, experiment="table1", kind=kind)
    return accuracies(rows, experiment="fig1a", kind=kind, batch_norm=batch_norm, skip=skip)


def dead_count(rows, batch_norm: bool) -> tuple[int, int]:
    """(rounds whose body died early, rounds) of Figure 2's rows."""
    outcomes = [r.outcome for r in rows if r.experiment == "fig2" and r.batch_norm == batch_norm]
    return sum(o == "died" for o in outcomes), len(outcomes)


def _claimed(scores: dict, claimed, what: str) -> dict:
    """Scores keyed by the declared values where a swept value equals one up to rounding (10^-0.5 typed
    as a decimal in a profile), so that `best_setting` finds the claimed settings; `Missing` when a
    claimed setting or any other was not run."""
    near = lambda v: next((c for c in claimed if math.isclose(v, c, rel_tol=1e-9)), v)
    out = {near(v): a for v, a in scores.items()}
    absent = [c for c in claimed if c not in out]
    if absent or len(out) <= len(claimed):
        raise Missing(f"{what}: the sweep has no rounds at {', '.join(f'{c:g}' for c in absent)}" if absent
                      else f"{what}: the sweep has no setting besides the claimed ones")
    return out


# ---------------------------------------------------------------------------------------------------
# Writing our numbers.

def _text(d: stats.Decision, label: str = "") -> str:
    """'label +0.012 [-0.003, +0.027] (n = 10)'; a part that could not be measured says so."""
    body = d.verdict if d.estimate is None else format_interval(d.estimate, d.interval, d.n, sign=True)
    return f"{label} {body}" if label else body


def _per_part(d: stats.Decision) -> str:
    return "; ".join(_text(p, p.label) for p in d.parts)


# ---------------------------------------------------------------------------------------------------
# Deciding: one function per claim or group of claims, each adding to the shared `Verdicts`.

def _table1(v: Verdicts, rows) -> None:
    t1 = {k: accuracies(rows, experiment="table1", kind=k) for k in KINDS}
    v.add("model-order", lambda c: decide_parts(c, [("siamese 10 - siamese 2", (t1["siamese10"], t1["siamese2"])),
                                                    ("siamese 2 - pair", (t1["siamese2"], t1["pair"]))]), _per_part)
    v.add("table1-values", lambda c: decide_parts(c, [(NAMES[k], (t1[k] - ref.TABLE1[k][0],)) for k in KINDS]),
          lambda d: "; ".join(f"{p.label} {t1[k].mean():.3f} ({_text(p)})" if len(t1[k]) else _text(p, p.label)
                              for k, p in zip(KINDS, d.parts)))


def _figure1a(v: Verdicts, rows) -> None:
    v.add("batch-norm-helps", lambda c: decide_parts(
        c, [(NAMES[k], (combo(rows, k, True, False), combo(rows, k, False, False))) for k in KINDS]), _per_part)
    v.add("skip-little", lambda c: decide_parts(
        c, [(NAMES[k], (combo(rows, k, True, True), combo(rows, k, True, False))) for k in KINDS]), _per_part)


def _figure1b(v: Verdicts, rows) -> None:
    lrs = {k: sweep(rows, "fig1b", k, "lr") for k in KINDS}

    def best_lr(c):
        return decide_parts(c, [(NAMES[k], (_claimed(lrs[k], c.parameters["claimed"], NAMES[k]),)) for k in KINDS])
    v.add("best-lr", best_lr, lambda d: "; ".join(
        f"{p.label} best at {max(lrs[k], key=lambda lr: lrs[k][lr].mean()):g} ({_text(p, 'gap')})"
        for k, p in zip(KINDS, d.parts)))


def _figure1c(v: Verdicts, rows) -> None:
    aux = sweep(rows, "fig1c", "siamese2", "w_aux")

    def aux_helps(c):
        if 0.0 not in aux or len(aux) < 2:
            raise Missing("Figure 1c has no rounds of siamese 2 at w2 = 0 and at Table I's w2")
        return c.decide(aux[min(aux, key=lambda w: abs(w - ref.W_AUX))], aux[0.0])
    v.add("aux-helps", aux_helps)
    v.add("aux-weight", lambda c: c.decide(_claimed(aux, c.parameters["claimed"], "siamese 2")),
          lambda d: f"best at w2 = {max(aux, key=lambda w: aux[w].mean()):.3g} ({_text(d, 'gap')})")


def _figure1d(v: Verdicts, rows) -> None:
    def sizes(c):
        parts = []
        for layer in ("c1", "c2", "hidden"):
            s = sweep(rows, "fig1d", "pair", layer)
            if len(s) < 2:
                raise Missing(f"the {layer} sweep has {len(s)} size(s); it needs two")
            lo, hi = min(s), max(s)
            parts.append((f"{layer} {hi} - {lo}", (s[hi], s[lo])))
        return decide_parts(c, parts)
    v.add("sizes-little", sizes, _per_part)


def _figure2(v: Verdicts, rows) -> None:
    for claim_id, bn in (("dead-gradients", False), ("bn-keeps-gradients", True)):
        arm = "with batch norm" if bn else "without batch norm"
        k, n = dead_count(rows, bn)

        def measure(c, k=k, n=n, arm=arm):
            if n == 0:
                raise Missing(f"no Figure 2 rounds {arm}")
            return c.decide(k, n)
        v.add(claim_id, measure, lambda d, k=k, n=n, arm=arm: (
            f"{arm}: {k} of {n} rounds died by mini-batch {DEAD_WITHIN} "
            f"(rate {format_interval(d.estimate, d.interval, d.n, digits=2)})"))


def decide(rows, params) -> list[tuple[Claim, stats.Decision, str | None]]:
    """Every claim of CLAIMS, in declaration order, decided from the rows of `experiments.run`; a claim whose
    rounds are missing or too few is 'not testable' with the reason (`claims.Missing`), never dropped.
    `params` (`experiments.Params`) is not needed: the rows carry their settings."""
    rows = list(rows)
    v = Verdicts(CLAIMS)
    for decide_group in (_table1, _figure1a, _figure1b, _figure1c, _figure1d, _figure2):
        decide_group(v, rows)
    return v.done()
