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
- "Is better" counts only from MIN_EFFECT = 0.025 accuracy on (every `direction` and `best_setting` claim):
  half of Table I's smallest gap between two models (siamese 10 minus siamese 2, 0.98 - 0.93 = 0.05), the
  smallest difference the report presents as one. An interval that lies entirely below it says the effect, if
  any, is smaller than what the report calls a difference: 'not reproduced', reached at a finite n.
  The report's figures lost their values with the PDF, so Table I's gaps are its only numbers to derive it from.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from lastlayer import stats
from lastlayer.claims import Claim, Missing, Verdicts, decide_parts, with_plans
from lastlayer.numbers import format_interval
from lastlayer.papers.digit_pairs import reference as ref

DIVERGED_ACC = 0.5   # the accuracy a diverged round counts with
DEAD_WITHIN = 5      # the 'died' / 'died late' label of Figure 2's table (experiments.figure2); no claim uses it
DEAD_BY = 3          # the report's timing, 'drop to 0 after two minibatches': dead from mini-batch 3 on, or earlier
MARGIN = 0.03        # "changes little" / "about the paper's value", in accuracy
MIN_EFFECT = 0.025   # the smallest advantage that counts, in accuracy: half of Table I's smallest gap (0.05)
ALPHA3 = stats.bonferroni(0.05, 3)
ALPHA2 = stats.bonferroni(0.05, 2)
REVISED_PARTS = ("Declared `parts`: the claim was always decided part by part (each part at the declared alpha) and "
                 "combined with stats.combine, which the criterion now says; the arithmetic is unchanged.")
REVISED_CRITERION = ("The hand-written criterion is replaced by the rule's own sentence and `parts` is declared; the "
                     "declared alpha is kept, so the arithmetic is unchanged.")
REVISED_MIN_EFFECT = ("Declared min_effect = 0.025 (set after the pilot run, when the rules gained it): half of Table "
                      "I's smallest gap between two models (0.05). Before, only an interval at or below 0 was 'not "
                      "reproduced', so a tie could stay inconclusive at any n; now an interval entirely below 0.025 "
                      "is 'not reproduced'. Alpha and the estimand are unchanged.")
MIN_EFFECT_WHY = (" min_effect 0.025, half of Table I's smallest gap between models (0.05): an advantage smaller than "
                  "half the smallest difference the report presents does not count as the report's effect.")

CLAIMS = [
    Claim(id="model-order", statement="Siamese 10 is more accurate than siamese 2, which is more accurate than the pair model.",
          paper="0.98 ± 0.006 > 0.93 ± 0.004 > 0.83 ± 0.012 (Table I, 10 rounds)",
          estimand="two differences of mean test accuracy over rounds (Welch): siamese 10 minus siamese 2, "
                   "siamese 2 minus pair; each model at its Table I setting",
          rule="direction", parameters={"expected": "greater", "min_effect": MIN_EFFECT, "alpha": ALPHA2},
          why="The ranking is the report's central result; two gaps that must both hold, so each is tested at "
              "0.05 / 2 (Bonferroni). min_effect 0.025 is half of the smaller of the report's two gaps (0.98 - "
              "0.93 = 0.05; the other is 0.10): one declared value serves both parts, the smaller one, so that "
              "neither gap is called 'not reproduced' for missing more than half of what the report found.",
          setting="paper setup", parts="gap between neighbouring models", revised=REVISED_MIN_EFFECT),
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
          rule="direction", parameters={"expected": "greater", "min_effect": MIN_EFFECT, "alpha": ALPHA3},
          why="Three models, each tested at 0.05 / 3. Figure 1a averages over channels and learning rates; we "
              "compare at each model's Table I setting, the one the report recommends. Figure 1a's values are "
              "lost, so the gain that counts is taken from Table I:" + MIN_EFFECT_WHY,
          setting="proxy: at each model's Table I learning rate and sizes, not averaged over channels and learning rates",
          parts="model", revised=REVISED_MIN_EFFECT),
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
          rule="best_setting", parameters={"claimed": list(ref.BEST_LRS), "higher_is_better": True,
                                            "min_effect": MIN_EFFECT, "alpha": ALPHA3},
          why="The report's grid of rates (0.001 to 1); three models, each at 0.05 / 3. Diverged rounds count 0.5. "
              "Figure 1b's values are lost, so the margin by which the best claimed rate must beat the best other "
              "is taken from Table I:" + MIN_EFFECT_WHY + " A tie between a claimed rate and another is thus 'not "
              "reproduced' once its interval is narrower than 0.025.",
          setting="proxy: batch norm on, skips off, Table I sizes, not averaged over all parameter combinations",
          parts="model",
          revised=REVISED_MIN_EFFECT + " In the pilot run siamese 10's best rate (1) ties the claimed 0.25 "
                  "(gap -0.001, n = 3): with min_effect such a tie becomes 'not reproduced' at a finite n, as "
                  "intended (at the pilot's n = 3 its interval still reaches just above 0.025)."),
    Claim(id="aux-helps", statement="The auxiliary digit loss improves siamese 2.",
          paper="siamese 2 with weights (1, 10^-0.5) beats the same model without auxiliary loss (Figure 1c)",
          estimand="mean test accuracy of siamese 2 with w2 = 10^-0.5 minus with w2 = 0 (Welch)",
          rule="direction", parameters={"expected": "greater", "min_effect": MIN_EFFECT, "alpha": 0.05},
          why="One comparison at the report's level of 0.05; w2 = 0 is the left end of Figure 1c's sweep. "
              "Figure 1c's values are lost, so the gain that counts is taken from Table I:" + MIN_EFFECT_WHY,
          setting="paper setup", revised=REVISED_MIN_EFFECT),
    Claim(id="aux-weight", statement="A moderate auxiliary-loss weight, 0.1 or 10^-0.5, is best for siamese 2.",
          paper="best mean at (1, 0.1), most consistent at (1, 10^-0.5); larger weights hurt the final classification (Figure 1c)",
          estimand="best mean test accuracy among w2 in {0.1, 10^-0.5} minus the best among the other weights "
                   "of the sweep (Welch)",
          rule="best_setting", parameters={"claimed": list(ref.BEST_W_AUX), "higher_is_better": True,
                                            "min_effect": MIN_EFFECT, "alpha": 0.05},
          why="The report names two weights as best; one claim at 0.05. Diverged rounds count 0.5. Figure 1c's "
              "values are lost, so the margin by which the best claimed weight must beat the best other is taken "
              "from Table I:" + MIN_EFFECT_WHY,
          setting="paper setup", revised=REVISED_MIN_EFFECT),
    Claim(id="sizes-little", statement="The layer sizes do not affect the accuracy.",
          paper="'the dimensions of the layers do not affect the performance' (Figure 1d)",
          estimand="per layer (c1, c2, hidden), mean test accuracy of the pair model at the largest minus the "
                   "smallest size of the sweep (Welch)",
          rule="equivalence", parameters={"margin": MARGIN, "alpha": ALPHA3},
          why="The extremes of each sweep, where an effect would be largest; margin 0.03 as for skips; three "
              "layers, each at 0.05 / 3.",
          setting="proxy: the pair model only, at its Table I learning rate",
          parts="layer", revised=REVISED_PARTS),
    Claim(id="dead-gradients", statement="Without batch norm the gradients of the layers drop to 0.",
          paper="without batch norm 'the gradients at any layer drop to 0 after two minibatches' (Figure 2)",
          estimand="share of rounds of the pair model without batch norm (Table I setting, learning rate 1) whose "
                   "body layers (all but the head) all have a gradient of exactly 0 from some mini-batch of the "
                   "record (its first grad_batches mini-batches) to its end, whenever that mini-batch is",
          rule="rate", parameters={"threshold": 0.5, "side": "above", "alpha": 0.05},
          why="The report shows one run; we ask whether it is what most rounds do (rate above one half). "
              "'Exactly 0', per layer: dead ReLUs give exact zeros, and the head is left out because its bias "
              "keeps a gradient when the body is dead. Diverged rounds count as not dead. When the gradients die "
              "is the separate claim dead-within-two.",
          setting="paper setup",
          revised="Split after the pilot run: the claim asked for a body dead from mini-batch 5 or earlier, a cutoff "
                  "that was set after deaths at mini-batches 9 to 20 had been seen and that is not the report's "
                  "('after two minibatches'). It now asks only whether the gradients die at all within the "
                  "record; the report's timing is the new claim dead-within-two. Threshold and alpha unchanged."),
    Claim(id="dead-within-two", statement="Without batch norm the gradients die within two mini-batches.",
          paper="without batch norm 'the gradients at any layer drop to 0 after two minibatches' (Figure 2)",
          estimand="among the rounds of the pair model without batch norm (Table I setting, learning rate 1) whose "
                   "body died (as in dead-gradients), the share whose body is dead from mini-batch 3 or earlier",
          rule="rate", parameters={"threshold": 0.5, "side": "above", "alpha": 0.05},
          why="The report's own timing: 'drop to 0 after two minibatches' is a gradient of exactly 0 from the "
              "third mini-batch on (or earlier). Asked of the rounds that die, so that it says when, apart from "
              "whether (dead-gradients); as there, most rounds (rate above one half) must do it.",
          setting="paper setup",
          revised="Added after the pilot run, split from dead-gradients: the report's timing (dead from mini-batch "
                  "3) replaces the earlier cutoff of mini-batch 5, which had been set after the deaths were seen."),
    Claim(id="bn-keeps-gradients", statement="With batch norm the gradients do not die.",
          paper="'normalization preserved the gradients and the ongoing of the learning during all the minibatches' (Figure 2)",
          estimand="share of rounds of the pair model with batch norm (Table I setting) whose body layers die as in "
                   "dead-gradients (exactly 0 from some mini-batch of the record to its end)",
          rule="rate", parameters={"threshold": 0.5, "side": "below", "alpha": 0.05},
          why="The mirror of dead-gradients: most rounds with batch norm keep their gradients 'during all the "
              "minibatches', so a death at any mini-batch of the record counts against it.",
          setting="paper setup",
          revised="Set after the pilot run with the split of dead-gradients: a round counts as dead when its body "
                  "dies at any mini-batch of the record, not only by mini-batch 5, as in dead-gradients. "
                  "Threshold and alpha unchanged."),
    Claim(id="siamese-gradients", statement="As for the pair model, without batch norm the gradients of the "
                                            "siamese networks drop to 0.",
          paper="'the effect was the same also for the siamese network' (Section III; no figure)",
          estimand="per siamese model (siamese 2, siamese 10) without batch norm, at its Table I setting (learning "
                   "rate 0.25): the share of rounds whose body layers (every layer but the 20 -> 2 head) die as in "
                   "dead-gradients",
          rule="rate", parameters={"threshold": 0.5, "side": "above", "alpha": ALPHA2},
          why="The report does not say which siamese network or rate, so both siamese models are asked, at their "
              "Table I rate, each by the rule of dead-gradients (most rounds die); two parts that must both hold, "
              "each at 0.05 / 2.",
          setting="paper setup", parts="model",
          revised="Was 'not testable' (not run); after the pilot run it is run (Figure 2's rounds for both siamese "
                  "models, with their own pilot on fresh seeds) and decided by the rule of dead-gradients, per "
                  "model. Split from it: siamese-bn-keeps-gradients, the half of 'the same effect' with batch norm."),
    Claim(id="siamese-bn-keeps-gradients", statement="As for the pair model, with batch norm the gradients of the "
                                                     "siamese networks do not die.",
          paper="'the effect was the same also for the siamese network' (Section III; no figure)",
          estimand="per siamese model with batch norm, at its Table I setting: the share of rounds whose body dies "
                   "at any mini-batch of the record, as in bn-keeps-gradients",
          rule="rate", parameters={"threshold": 0.5, "side": "below", "alpha": ALPHA2},
          why="The other half of 'the same effect': the rule of bn-keeps-gradients, per siamese model, two parts at "
              "0.05 / 2.",
          setting="paper setup", parts="model",
          revised="Added after the pilot run with siamese-gradients, when the siamese rounds were first run."),
]
# stage 1 of the two-stage verdicts: each claim's pilot and planned n (written by `python -m lastlayer plan digit_pairs --write`)
CLAIMS = with_plans(CLAIMS, Path(__file__).with_name("planned.json"))


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


def _grad_rows(rows, batch_norm: bool, kind: str = "pair") -> list:
    """Figure 2's rows of one model and arm; the pair model's are experiment 'fig2', the siamese ones'
    'fig2-siamese' (rows saved before the siamese rounds existed carry no kind: they are the pair model's)."""
    experiment = "fig2" if kind == "pair" else "fig2-siamese"
    return [r for r in rows if r.experiment == experiment and r.batch_norm == batch_norm
            and getattr(r, "kind", "pair") == kind]


def _died(row) -> bool:
    """The round's body was dead from some mini-batch of its record to the end (`gradients.death_batch`)."""
    return row.outcome in ("died", "died late") and row.died_at is not None


def dead_count(rows, batch_norm: bool, kind: str = "pair") -> tuple[int, int]:
    """(rounds whose body died at any mini-batch of the record, rounds) of Figure 2's rows."""
    g = _grad_rows(rows, batch_norm, kind)
    return sum(map(_died, g)), len(g)


def early_count(rows, batch_norm: bool, by: int = DEAD_BY) -> tuple[int, int]:
    """(rounds whose body was dead from mini-batch `by` or earlier, rounds whose body died) of Figure 2's rows."""
    dead = [r for r in _grad_rows(rows, batch_norm) if _died(r)]
    return sum(r.died_at <= by for r in dead), len(dead)


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


def _arm(bn: bool) -> str:
    return "with batch norm" if bn else "without batch norm"


def _rate_text(d: stats.Decision) -> str:
    return f"rate {format_interval(d.estimate, d.interval, d.n, digits=2)}"


def _figure2(v: Verdicts, rows) -> None:
    for claim_id, bn in (("dead-gradients", False), ("bn-keeps-gradients", True)):
        arm, (k, n) = _arm(bn), dead_count(rows, bn)
        batches = max((r.batches for r in _grad_rows(rows, bn)), default=0)

        def measure(c, k=k, n=n, arm=arm):
            if n == 0:
                raise Missing(f"no Figure 2 rounds {arm}")
            return c.decide(k, n)
        v.add(claim_id, measure, lambda d, k=k, n=n, arm=arm, batches=batches: (
            f"{arm}: {k} of {n} rounds died within the {batches} recorded mini-batches ({_rate_text(d)})"))

    arm, (k, n) = _arm(False), early_count(rows, False)
    when = sorted(r.died_at for r in _grad_rows(rows, False) if _died(r))

    def within_two(c):
        if not _grad_rows(rows, False):
            raise Missing(f"no Figure 2 rounds {arm}")
        if n == 0:
            raise Missing(f"no Figure 2 round {arm} died, so when they die cannot be measured")
        return c.decide(k, n)
    v.add("dead-within-two", within_two, lambda d: (
        f"{arm}: {k} of the {n} rounds that died were dead by mini-batch {DEAD_BY} (dead from mini-batch "
        f"{when[0]}{'' if when[0] == when[-1] else f' to {when[-1]}'}; {_rate_text(d)})"))


def _figure2_siamese(v: Verdicts, rows) -> None:
    for claim_id, bn in (("siamese-gradients", False), ("siamese-bn-keeps-gradients", True)):
        counts = {k: dead_count(rows, bn, k) for k in ("siamese2", "siamese10")}

        def measure(c, bn=bn, counts=counts):
            parts = [(NAMES[k], (d, n)) for k, (d, n) in counts.items() if n]
            if not parts:
                raise Missing(f"no siamese Figure 2 rounds {_arm(bn)} (siamese_grad_rounds = 0)")
            return decide_parts(c, parts)

        def ours(d, bn=bn, counts=counts):
            parts = d.parts or (d,)
            return f"{_arm(bn)}: " + "; ".join(
                f"{NAMES[k]}: {dead} of {n} rounds died ({_rate_text(p)})"
                for (k, (dead, n)), p in zip(((k, c) for k, c in counts.items() if c[1]), parts))
        v.add(claim_id, measure, ours)


def decide(rows, params) -> list[tuple[Claim, stats.Decision, str | None]]:
    """Every claim of CLAIMS, in declaration order, decided from the rows of `experiments.run`; a claim whose
    rounds are missing or too few is 'not testable' with the reason (`claims.Missing`), never dropped.
    `params` (`experiments.Params`) is not needed: the rows carry their settings."""
    rows = list(rows)
    v = Verdicts(CLAIMS)
    for decide_group in (_table1, _figure1a, _figure1b, _figure1c, _figure1d, _figure2, _figure2_siamese):
        decide_group(v, rows)
    return v.done()
