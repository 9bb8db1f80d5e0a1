"""The report's claims, declared before any run, and `decide`: from the per-round rows to verdicts.

`decide` reads nothing but the flat rows the notebook saves with `report.add_runs` (those of
`experiments.rows` and `GradientRounds.rows`), so every verdict can be recomputed from the results file.
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
from lastlayer.claims import Claim
from lastlayer.papers.digit_pairs import reference as ref

DIVERGED_ACC = 0.5   # the accuracy a diverged round counts with
DEAD_WITHIN = 5      # "within a few mini-batches": the body must be dead from this mini-batch on, or earlier
MARGIN = 0.03        # "changes little" / "about the paper's value", in accuracy
ALPHA3 = stats.bonferroni(0.05, 3)
ALPHA2 = stats.bonferroni(0.05, 2)
PROTOCOL = "1000 training and 1000 test pairs, SGD with batch 100, 25 epochs, fresh pairs and weights per round"

CLAIMS = [
    Claim(id="model-order", statement="Siamese 10 is more accurate than siamese 2, which is more accurate than the pair model.",
          paper="0.98 ± 0.006 > 0.93 ± 0.004 > 0.83 ± 0.012 (Table I, 10 rounds)",
          estimand="two differences of mean test accuracy over rounds (Welch): siamese 10 minus siamese 2, "
                   "siamese 2 minus pair; each model at its Table I setting",
          rule="direction", parameters={"expected": "greater", "alpha": ALPHA2},
          why="The ranking is the report's central result; two gaps that must both hold, so each is tested at "
              "0.05 / 2 (Bonferroni).",
          setting="paper setup",
          criterion="Reproduced if the 97.5% interval of both gaps lies above 0; not reproduced if either lies "
                    "at or below 0; otherwise inconclusive."),
    Claim(id="table1-values", statement="Table I's accuracies: pair 0.83, siamese 2 0.93, siamese 10 0.98.",
          paper="0.83 ± 0.012, 0.93 ± 0.004, 0.98 ± 0.006 (Table I)",
          estimand="per model, mean test accuracy over rounds minus the paper's Table I mean",
          rule="equivalence", parameters={"margin": MARGIN, "alpha": ALPHA3},
          why="Three values that must all match, each tested at 0.05 / 3. A margin of 0.03 is about 2.5 times "
              "the largest round-to-round std of Table I and below its smallest gap between models (0.05).",
          setting="paper setup",
          criterion="Reproduced if, for every model, the 98.3% interval of (ours minus the paper's) lies inside "
                    "(-0.03, 0.03); not reproduced if for some model it lies entirely outside; otherwise inconclusive."),
    Claim(id="batch-norm-helps", statement="Batch normalisation improves the accuracy of all three models.",
          paper="higher accuracy with batch norm in all three cases (Figure 1a)",
          estimand="per model, mean test accuracy with batch norm minus without (Welch), skips off",
          rule="direction", parameters={"expected": "greater", "alpha": ALPHA3},
          why="Three models, each tested at 0.05 / 3. Figure 1a averages over channels and learning rates; we "
              "compare at each model's Table I setting, the one the report recommends.",
          setting="proxy: at each model's Table I learning rate and sizes, not averaged over channels and learning rates"),
    Claim(id="skip-little", statement="Skip connections change the accuracy little.",
          paper="'the presence or not of skip connections is not strongly influencing' the accuracy (Figure 1a)",
          estimand="per model, mean test accuracy with skips minus without (Welch), batch norm on",
          rule="equivalence", parameters={"margin": MARGIN, "alpha": ALPHA3},
          why="'Not strongly' as an equivalence margin of 0.03 (below Table I's smallest gap between models); "
              "three models, each at 0.05 / 3.",
          setting="proxy: at each model's Table I learning rate and sizes, not averaged over channels and learning rates"),
    Claim(id="best-lr", statement="All three models are most accurate at a learning rate of 0.1 or 0.25.",
          paper="'all three models have higher performances for learning rate in the range between 0.1 and 0.25' (Figure 1b)",
          estimand="per model, best mean test accuracy among the rates 0.1 and 0.25 minus the best among the "
                   "other rates of the sweep, bootstrapped over rounds",
          rule="best_setting", parameters={"claimed": list(ref.BEST_LRS), "higher_is_better": True, "alpha": ALPHA3},
          why="The report's grid of rates (0.001 to 1); three models, each at 0.05 / 3. Diverged rounds count 0.5.",
          setting="proxy: batch norm on, skips off, Table I sizes, not averaged over all parameter combinations"),
    Claim(id="aux-helps", statement="The auxiliary digit loss improves siamese 2.",
          paper="siamese 2 with weights (1, 10^-0.5) beats the same model without auxiliary loss (Figure 1c)",
          estimand="mean test accuracy of siamese 2 with w2 = 10^-0.5 minus with w2 = 0 (Welch)",
          rule="direction", parameters={"expected": "greater", "alpha": 0.05},
          why="One comparison at the report's level of 0.05; w2 = 0 is the left end of Figure 1c's sweep.",
          setting="paper setup"),
    Claim(id="aux-weight", statement="A moderate auxiliary-loss weight, 0.1 or 10^-0.5, is best for siamese 2.",
          paper="best mean at (1, 0.1), most consistent at (1, 10^-0.5); larger weights hurt the final classification (Figure 1c)",
          estimand="best mean test accuracy among w2 in {0.1, 10^-0.5} minus the best among the other weights "
                   "of the sweep, bootstrapped over rounds",
          rule="best_setting", parameters={"claimed": list(ref.BEST_W_AUX), "higher_is_better": True, "alpha": 0.05},
          why="The report names two weights as best; one claim at 0.05. Diverged rounds count 0.5.",
          setting="paper setup"),
    Claim(id="sizes-little", statement="The layer sizes do not affect the accuracy.",
          paper="'the dimensions of the layers do not affect the performance' (Figure 1d)",
          estimand="per layer (c1, c2, hidden), mean test accuracy of the pair model at the largest minus the "
                   "smallest size of the sweep (Welch)",
          rule="equivalence", parameters={"margin": MARGIN, "alpha": ALPHA3},
          why="The extremes of each sweep, where an effect would be largest; margin 0.03 as for skips; three "
              "layers, each at 0.05 / 3.",
          setting="proxy: the pair model only, at its Table I learning rate"),
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
BY_ID = {c.id: c for c in CLAIMS}


# ---------------------------------------------------------------------------------------------------
# Reading the rows.

def _acc(row) -> float:
    a = row["test_acc"]
    return DIVERGED_ACC if a is None or (isinstance(a, float) and math.isnan(a)) else float(a)


def accuracies(rows, **where) -> np.ndarray:
    """Test accuracies (diverged rounds as DIVERGED_ACC) of the rows that match every `where` item."""
    return np.array([_acc(r) for r in rows if all(r.get(k) == v for k, v in where.items())])


def sweep(rows, experiment: str, kind: str, key: str) -> dict:
    """{value of `key`: accuracies} of a sweep, with Table I's value of `key` taken from the Table I rows."""
    base = [r for r in rows if r.get("experiment") == "table1" and r["kind"] == kind]
    out = {base[0][key]: accuracies(base)} if base else {}
    for r in rows:
        if r.get("experiment") == experiment and r["kind"] == kind and r.get("varied") == key:
            out.setdefault(r[key], None)
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
    outcomes = [r["outcome"] for r in rows if r.get("experiment") == "fig2" and r["batch_norm"] == batch_norm]
    return sum(o == "died" for o in outcomes), len(outcomes)


# ---------------------------------------------------------------------------------------------------
# Deciding.

def _parts(claim: Claim, pairs) -> stats.Decision:
    """A claim of several parts: the declared rule on each (label, data) and `stats.combine` over them,
    each part's detail prefixed with its label."""
    decisions = []
    for label, data in pairs:
        d = claim.decide(*data)
        decisions.append(stats.Decision(d.verdict, d.estimate, d.interval, d.n, f"{label}: {d.detail}",
                                        d.n_needed, d.parts))
    return stats.combine(decisions)


def _fmt(d: stats.Decision, label: str = "", digits: int = 3) -> str:
    iv = f" [{d.interval[0]:+.{digits}f}, {d.interval[1]:+.{digits}f}]" if d.interval else ""
    return f"{label}{d.estimate:+.{digits}f}{iv}" if d.estimate is not None else f"{label}{d.verdict}"


def decide(rows) -> list[tuple[Claim, stats.Decision, str | None]]:
    """Every claim of CLAIMS decided from the per-round rows; a claim whose runs are missing or too few
    (fewer than 2 rounds a group) is inconclusive with its reason, never dropped."""
    rows = list(rows)
    names, kinds = ref.NAMES, list(ref.NAMES)
    t1 = {k: accuracies(rows, experiment="table1", kind=k) for k in kinds}
    out = []

    def add(claim_id, compute, ours=None):
        claim = BY_ID[claim_id]
        try:
            decision = compute(claim)
        except (ValueError, KeyError, IndexError) as e:  # missing rows or fewer than 2 rounds
            decision = stats.Decision("inconclusive", None, None, 0, f"not enough runs to decide: {e}")
            ours = decision.detail
        out.append((claim, decision, ours(decision) if callable(ours) else ours))

    def per_part(labels):
        return lambda d: "; ".join(_fmt(p, f"{l} ") for l, p in zip(labels, d.parts))

    add("model-order", lambda c: _parts(c, [("siamese 10 - siamese 2", (t1["siamese10"], t1["siamese2"])),
                                            ("siamese 2 - pair", (t1["siamese2"], t1["pair"]))]),
        per_part(["siamese 10 - siamese 2", "siamese 2 - pair"]))
    add("table1-values", lambda c: _parts(c, [(names[k], (t1[k] - ref.TABLE1[k][0],)) for k in kinds]),
        lambda d: "; ".join(f"{names[k]} {t1[k].mean():.3f} ({_fmt(p)})" for k, p in zip(kinds, d.parts)))
    add("batch-norm-helps", lambda c: _parts(c, [(names[k], (combo(rows, k, True, False), combo(rows, k, False, False)))
                                                 for k in kinds]), per_part([names[k] for k in kinds]))
    add("skip-little", lambda c: _parts(c, [(names[k], (combo(rows, k, True, True), combo(rows, k, True, False)))
                                            for k in kinds]), per_part([names[k] for k in kinds]))

    def best_lr(c):
        return _parts(c, [(names[k], (_snap(sweep(rows, "fig1b", k, "lr"), c.parameters["claimed"]),))
                          for k in kinds])
    add("best-lr", best_lr, lambda d: "; ".join(
        f"{names[k]} best at {max(s, key=lambda v: s[v].mean()):g} ({_fmt(p, 'gap ')})"
        for k, p in zip(kinds, d.parts) for s in [sweep(rows, 'fig1b', k, 'lr')]))
    aux = sweep(rows, "fig1c", "siamese2", "w_aux")
    add("aux-helps", lambda c: c.decide(aux[min(aux, key=lambda w: abs(w - ref.W_AUX))], aux[0.0]))
    add("aux-weight", lambda c: c.decide(_snap(aux, c.parameters["claimed"])),
        lambda d: f"best at w2 = {max(aux, key=lambda w: aux[w].mean()):.3g} ({_fmt(d, 'gap ')})")

    def sizes(c):
        parts = []
        for layer in ("c1", "c2", "hidden"):
            s = sweep(rows, "fig1d", "pair", layer)
            if len(s) < 2:
                raise ValueError(f"the {layer} sweep has {len(s)} size(s); it needs two")
            lo, hi = min(s), max(s)
            parts.append((f"{layer} {hi} - {lo}", (s[hi], s[lo])))
        return _parts(c, parts)
    add("sizes-little", sizes, lambda d: "; ".join(p.detail.split(":")[0] + " " + _fmt(p) for p in d.parts))
    for claim_id, bn in (("dead-gradients", False), ("bn-keeps-gradients", True)):
        k, n = dead_count(rows, bn)
        add(claim_id, lambda c, k=k, n=n: c.decide(k, n),
            lambda d, k=k, n=n: f"{k} of {n} rounds died by mini-batch {DEAD_WITHIN} (rate {d.estimate:.2f}, "
                                f"95% interval {d.interval[0]:.2f} to {d.interval[1]:.2f})")
    out.append((BY_ID["siamese-gradients"], BY_ID["siamese-gradients"].decide(), None))
    return out


def _snap(scores: dict, claimed) -> dict:
    """Scores keyed by the declared values where a swept value equals one up to rounding (10^-0.5 typed
    as a decimal in a profile), so that `best_setting` finds the claimed settings."""
    near = lambda v: next((c for c in claimed if math.isclose(v, c, rel_tol=1e-9)), v)
    return {near(v): a for v, a in scores.items()}
