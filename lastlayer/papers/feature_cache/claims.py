"""The feature_cache paper's claims, declared before any run, and `decide`, which turns the runs into verdicts.

The runs are the rows of `rows.py`, one per trained model or attack (`experiments.run` makes them); the
notebook stores them with the report, so every verdict can be recomputed from the results file.
Paired comparisons pair the runs of one seed (same initial weights, same batch order, same test images).
A claim of several parts must hold in every part (an intersection-union test), so no part needs a
Bonferroni correction.
"""
from __future__ import annotations

import numpy as np

from lastlayer.claims import Claim, Missing, Verdicts, decide_parts, ours, require
from lastlayer.numbers import format_interval
from lastlayer.papers.feature_cache import reference as ref
from lastlayer.papers.feature_cache.rows import AttackRow, FeatureMapRow, RawMapsRow, TrainerRow

FIG7 = "proxy: a seeded 8,000-image MNIST subset at batch 512 (16 steps per epoch, the paper's 15 at 60,000 / 4096)"
FIG8 = "proxy: a seeded 8,000-image MNIST subset, three batch sizes and three epochs (the paper: eight, and 60,000 images)"
FIG9 = "proxy: base models on a few thousand images, feature-map models on the maps of 1,000 of them, one epoch"
HIT_BAND = (0.25, 0.40)  # "about a third": the paper's 30-35% per epoch, give or take 5 points
MAIN_RUN = "mnist:64"    # Figure 10's run (MNIST; the text's batch for the feature-map experiments)

# Claims whose numbers are wall-clock times (or accuracies read at a wall-clock time): no two runs share them,
# so the smoke references do not compare them.
TIMED = ("cache-beats-random", "cache-saves-time")

CLAIMS = [
    Claim(id="hits-third", unit="points", statement="The caching trainer drops about a third of the training images every epoch.",
          paper="18,133-21,247 of 60,000 images per epoch (30-35%) at batch 4096 (Figure 7)",
          estimand="per seed, the share of training images that were cache hits, averaged over the epochs, "
                   "minus 32.5% (the middle of the band 25-40%)",
          rule="equivalence", parameters={"margin": (HIT_BAND[1] - HIT_BAND[0]) / 2},
          why="the band 25-40% is the paper's 30-35% with 5 points either side",
          setting=FIG7,
          revised="the hand-written criterion is gone: the rule's own sentence (the interval of the share minus "
                  "32.5% inside -7.5 to +7.5 points) says the same; the arithmetic is unchanged"),
    Claim(id="cache-accuracy", unit="points", statement="At a large batch, caching training reaches higher test accuracy per "
                                         "epoch than normal training.",
          paper="94.2% vs 91.8% after 10 epochs at batch 4096, and caching ahead at every epoch (Figure 7)",
          estimand="paired by seed: (a) caching minus normal test accuracy averaged over the epochs; "
                   "(b) the same at the last epoch",
          rule="direction", parameters={"expected": "greater"},
          why="both parts must hold: ahead along the way (the paper's every epoch) and at the end (its 2.4 points)",
          setting=FIG7, parts="measure (mean over epochs, last epoch)",
          revised="declares its two parts (parts=), so that the criterion says each must hold; the arithmetic is "
                  "unchanged"),
    Claim(id="cache-near-normal", unit="points", statement="Over batch sizes, caching training reaches about the test accuracy "
                                            "of normal training.",
          paper="caching minus normal test accuracy from -4.4 to +1.5 points over batches 32-4096 (Figure 8)",
          estimand="caching minus normal final test accuracy, paired by batch size and seed, pooled",
          rule="noninferiority", parameters={"margin": 0.05},
          why="margin 5 points: the paper calls its worst deficit, 4.4 points at batch 512, 'somewhere near'",
          setting=FIG8),
    Claim(id="cache-beats-random", unit="points", statement="The cache chooses which images to drop better than chance: it beats "
                                             "dropping as many images at random.",
          paper="not measured (the paper has no random-drop control)",
          estimand="paired by seed: caching minus random-drop test accuracy (a) at the last epoch, both having "
                   "trained on as many images; (b) at the moment the random-drop run ended (equal time)",
          rule="direction", parameters={"expected": "greater"},
          why="the control a data-pruning method needs; both parts must hold",
          setting="extension", parts="measure (last epoch, equal time)",
          revised="declares its two parts (parts=), so that the criterion says each must hold; the arithmetic is "
                  "unchanged"),
    Claim(id="cache-saves-time", statement="Caching saves wall-clock training time to a given test accuracy.",
          paper="not measured (the paper reports accuracy per epoch only; saving time is its aim)",
          estimand="paired by seed: caching minus normal training seconds to the target test accuracy; a run that "
                   "never reaches it counts as its whole training time plus one more of its mean epochs",
          rule="direction", parameters={"expected": "less"},
          why="a missed target is counted by a stated rule, never dropped; that count is a lower bound on the "
              "true time, which favours neither trainer",
          setting="extension"),
    Claim(id="fm-regularises", unit="points", statement="Training on feature maps regularises: the feature-map model's train - "
                                         "test gap is smaller than the base model's.",
          paper="gap (points): base 0.85 / 0.11 / 1.29, feature-map model -0.10 / -0.18 / -0.52 (MNIST batch 64, "
                "256; Fashion-MNIST) (Figure 9)",
          estimand="per data set and batch, paired by seed: base gap minus feature-map gap (train minus test "
                   "accuracy; the feature-map model's on training and test maps)",
          rule="direction", parameters={"expected": "greater"},
          why="one part per data set and batch of Figure 9; all must hold. An underfit model has a small gap "
              "trivially, so its train accuracy is reported beside the gap",
          setting=FIG9, parts="data set and batch (a run of Figure 9)",
          revised="declares its parts, one per data set and batch (parts=), so that the criterion says each must "
                  "hold; the arithmetic is unchanged"),
    Claim(id="fm-fgsm", unit="points", statement="The feature-map model is more accurate on FGSM images (eps 0.25) than the "
                                  "base model, under the paper's protocol.",
          paper="23.82% vs 10.76% at eps 0.25 (26.74% vs 28.09% at 0.15), MNIST (Figure 10)",
          estimand="paired by seed, MNIST batch 64: feature-map minus base model accuracy on FGSM images made "
                   "with the base model's gradients",
          rule="direction", parameters={"expected": "greater"},
          why="the text names eps 0.25; for the feature-map model these images are a transferred attack",
          setting=FIG9),
    Claim(id="fm-fgsm-vs-transfer", unit="points", statement="The feature-map model's FGSM advantage is more than the weakness of "
                                              "a transferred attack.",
          paper="not measured (the paper attacks only through the base model)",
          estimand="paired by seed, MNIST batch 64, eps 0.25: feature-map model minus a second base model (another "
                   "seed, trained normally) on the same FGSM images, made with the first base model's gradients",
          rule="direction", parameters={"expected": "greater"},
          why="if a normal model that never saw a map does as well on the transferred images, the protocol, "
              "not the maps, explains the advantage",
          setting="extension"),
    Claim(id="fm-pgd", unit="points", statement="The feature-map model resists a white-box attack better than the base model.",
          paper="not measured (FGSM through the base model only)",
          estimand="paired by seed, MNIST batch 64, eps 0.25: feature-map minus base model accuracy, each attacked "
                   "by PGD through its own gradients",
          rule="direction", parameters={"expected": "greater"},
          why="the stronger, white-box test of the robustness the paper claims", setting="extension"),
    Claim(id="raw-maps-nan", unit="%", statement="Training on feature maps taken before the activation gives undefined "
                                       "(NaN) losses.",
          paper="NaN losses on maps straight after the convolution, fixed by taking them after the activation (7.2)",
          estimand="the share of feature-map models, over data sets, batches and seeds, whose training on maps "
                   "taken before the activation stopped on a non-finite loss",
          rule="rate", parameters={"threshold": 0.5, "side": "above"},
          why="the paper says the model learned nothing, so most runs should fail", setting=FIG9),
]


# -- decide: one small function per claim or group, all reading the rows of `rows.py` -----------------------
def _and(cid: str, what: str, words):
    """An 'ours' text: `words` (a function of the decision) and then the estimate and interval that decided,
    named by `what`, in the claim's unit."""
    unit = next(c.unit for c in CLAIMS if c.id == cid)
    return lambda d: f"{words(d)}; {what}: {ours(d, unit)}"


def _pick(rows, kind, key, **where) -> np.ndarray:
    """The values of `key` of the rows of type `kind` matching `where`, sorted by seed (so that pairs line up)."""
    sel = [r for r in rows if isinstance(r, kind) and getattr(r, key) is not None
           and all(getattr(r, k) == v for k, v in where.items())]
    return np.array([getattr(r, key) for r in sorted(sel, key=lambda r: r.seed)], dtype=float)


def _fig7(rows, key, trainer) -> np.ndarray:
    return _pick(rows, TrainerRow, key, experiment="fig7", trainer=trainer)


def _time_to_target(rows, trainer) -> np.ndarray:
    """Seconds to the target, a miss counted as the whole training time plus one mean epoch."""
    t, total, epochs = (_fig7(rows, k, trainer) for k in ("seconds_to_target", "seconds", "epochs"))
    return np.where(np.isfinite(t), t, total + total / epochs)


def _caching(v: Verdicts, rows, params) -> None:
    """Figure 7's claims: the share of hits, the accuracy, the random-drop control and the time."""
    share = _fig7(rows, "mean_hits", "caching") / params.n_train
    v.add("hits-third", lambda c: c.decide(share - sum(HIT_BAND) / 2),
          _and("hits-third", f"share minus {100 * sum(HIT_BAND) / 2:g}%",
               lambda d: f"{100 * share.mean():.1f}% of the training images per epoch (seeds: "
                         f"{', '.join(f'{100 * s:.0f}%' for s in share)})"))

    mean_c, mean_n = _fig7(rows, "mean_test_acc", "caching"), _fig7(rows, "mean_test_acc", "normal")
    fin_c, fin_n = _fig7(rows, "test_acc", "caching"), _fig7(rows, "test_acc", "normal")
    def accuracy(c):
        require(fin_c, fin_n, n=1, what="Figure 7 runs of each trainer")
        return decide_parts(c, [("mean over epochs", (mean_c - mean_n,)), ("last epoch", (fin_c - fin_n,))])

    v.add("cache-accuracy", accuracy,
          _and("cache-accuracy", "caching minus normal",
               lambda d: f"last epoch caching {100 * fin_c.mean():.1f}%, normal {100 * fin_n.mean():.1f}% "
                         f"({len(fin_c)} seeds)"))

    rand = _fig7(rows, "test_acc", "random")
    at_end_c, at_end_r = _fig7(rows, "acc_at_random_end", "caching"), _fig7(rows, "acc_at_random_end", "random")

    def beats_random(c):
        if not len(rand):
            raise Missing("the random-drop control was not run (random_control = False)")
        require(fin_c, n=1, what="caching runs of Figure 7")
        return decide_parts(c, [("last epoch", (fin_c - rand,)), ("equal time", (at_end_c - at_end_r,))])

    v.add("cache-beats-random", beats_random,
          _and("cache-beats-random", "caching minus random drop",
               lambda d: f"last epoch caching {100 * fin_c.mean():.1f}%, random drop {100 * rand.mean():.1f}%; "
                         f"when the random run ended, caching {100 * at_end_c.mean():.1f}% vs "
                         f"{100 * at_end_r.mean():.1f}%"))

    t_c, t_n = _time_to_target(rows, "caching"), _time_to_target(rows, "normal")
    miss = {t: int(np.isnan(_fig7(rows, "seconds_to_target", t)).sum()) for t in ("caching", "normal")}
    v.add("cache-saves-time", lambda c: c.decide(t_c - t_n),
          lambda d: f"caching {t_c.mean():.1f} s, normal {t_n.mean():.1f} s to the target (runs missing it: "
                    f"caching {miss['caching']}, normal {miss['normal']} of {len(t_c)}); caching minus normal: "
                    + format_interval(d.estimate, d.interval, d.n, digits=1, unit=" s", sign=True))


def _near_normal(v: Verdicts, rows) -> None:
    """Figure 8: caching against normal training over batch sizes, paired by batch size and seed."""
    f8 = [r for r in rows if isinstance(r, TrainerRow) and r.experiment == "fig8"]
    c8 = {(r.batch_size, r.seed): r.test_acc for r in f8 if r.trainer == "caching"}
    n8 = {(r.batch_size, r.seed): r.test_acc for r in f8 if r.trainer == "normal"}
    pairs = sorted(set(c8) & set(n8))
    d8 = np.array([c8[k] - n8[k] for k in pairs])
    v.add("cache-near-normal", lambda c: c.decide([c8[k] for k in pairs], [n8[k] for k in pairs], paired=True),
          lambda d: f"caching minus normal final test accuracy, over {len(d8)} batch-size and seed pairs: "
                    f"{ours(d, 'points', sign=True)}; single pairs from {100 * d8.min():+.1f} to "
                    f"{100 * d8.max():+.1f} points")


def _regularises(v: Verdicts, rows) -> None:
    """Figure 9: the train - test gap of the base model against the feature-map model's, one part per run."""
    fm = lambda key, run, model: _pick(rows, FeatureMapRow, key, run=run, model=model)
    parts, words = [], []
    for run in sorted({r.run for r in rows if isinstance(r, FeatureMapRow)}):
        gap_b = fm("train_acc", run, "base") - fm("test_acc", run, "base")
        gap_f = fm("train_acc", run, "fm") - fm("test_acc", run, "fm")
        parts.append((run, (gap_b - gap_f,)))
        words.append(f"{run}: base {100 * gap_b.mean():.1f}, maps {100 * gap_f.mean():.1f} points at "
                     f"{100 * fm('train_acc', run, 'fm').mean():.0f}% train accuracy (base "
                     f"{100 * fm('train_acc', run, 'base').mean():.0f}%)")
    v.add("fm-regularises", lambda c: decide_parts(c, parts),
          _and("fm-regularises", "base gap minus feature-map gap", lambda d: "gap " + "; ".join(words)))


def _attacks(v: Verdicts, rows, main_run: str, eps: float = ref.FIG10_EPS) -> None:
    """Figure 10 and its controls, on `main_run` at `eps`: FGSM through the base model, the same images on a
    second base model, and PGD through each model's own gradients."""
    def acc(attack, model, why):
        a = _pick(rows, AttackRow, "acc", run=main_run, model=model, attack=attack, eps=eps)
        if not len(a):
            raise Missing(why)
        return a

    no_fgsm = f"no attack at eps {eps:g} on {main_run} (see the parameters epsilons and pgd_epsilons)"
    fgsm = lambda model, why=no_fgsm: acc("fgsm", model, why)
    v.add("fm-fgsm", lambda c: c.decide(fgsm("fm") - fgsm("base")),
          _and("fm-fgsm", "feature-map minus base",
               lambda d: f"FGSM accuracy: feature-map model {100 * fgsm('fm').mean():.1f}%, base model "
                         f"{100 * fgsm('base').mean():.1f}%"))
    no_control = "the control base model was not trained (control = False)"
    v.add("fm-fgsm-vs-transfer", lambda c: c.decide(fgsm("fm") - fgsm("base2", no_control)),
          _and("fm-fgsm-vs-transfer", "feature-map minus second base",
               lambda d: f"FGSM accuracy: feature-map model {100 * fgsm('fm').mean():.1f}%, second base model "
                         f"{100 * fgsm('base2').mean():.1f}% on the same images"))
    pgd = lambda model: acc("pgd", model, f"no PGD attack at eps {eps:g} on {main_run} (see the parameter "
                                          f"pgd_epsilons)")
    v.add("fm-pgd", lambda c: c.decide(pgd("fm") - pgd("base")),
          _and("fm-pgd", "feature-map minus base",
               lambda d: f"PGD accuracy: feature-map model {100 * pgd('fm').mean():.1f}%, base model "
                         f"{100 * pgd('base').mean():.1f}%"))


def _raw_maps(v: Verdicts, rows) -> None:
    raw = [r.diverged for r in rows if isinstance(r, RawMapsRow)]

    def measure(c):
        if not raw:
            raise Missing("no run trained on maps before the activation (nan_check = False)")
        return c.decide(int(sum(raw)), len(raw))

    v.add("raw-maps-nan", measure, _and("raw-maps-nan", "rate",
                                        lambda d: f"{int(sum(raw))} of {len(raw)} runs stopped on a non-finite loss"))


def decide(rows, params) -> list:
    """[(claim, decision, ours)] for every claim, in declaration order, from the rows of `experiments.run` and
    the parameters (`n_train`; Figure 10's run is the first of `fm_runs`)."""
    v = Verdicts(CLAIMS)
    _caching(v, rows, params)
    _near_normal(v, rows)
    _regularises(v, rows)
    _attacks(v, rows, main_run=params.fm_runs[0])
    _raw_maps(v, rows)
    return v.done()
