"""The feature_cache paper's claims, declared before any run, and `decide`, which turns the runs into verdicts.

The runs are flat dicts, one per trained model (`run_rows` builds them from the experiments' results); the
notebook stores them with the report, so every verdict can be recomputed from the results file.
Paired comparisons pair the runs of one seed (same initial weights, same batch order, same test images).
A claim of several parts must hold in every part (an intersection-union test), so no part needs a
Bonferroni correction.
"""
from __future__ import annotations

import numpy as np

from lastlayer import stats
from lastlayer.claims import Claim
from lastlayer.papers.feature_cache import reference as ref

FIG7 = "proxy: a seeded 8,000-image MNIST subset at batch 512 (16 steps per epoch, the paper's 15 at 60,000 / 4096)"
FIG8 = "proxy: a seeded 8,000-image MNIST subset, three batch sizes and three epochs (the paper: eight, and 60,000 images)"
FIG9 = "proxy: base models on a few thousand images, feature-map models on the maps of 1,000 of them, one epoch"
HIT_BAND = (0.25, 0.40)  # "about a third": the paper's 30-35% per epoch, give or take 5 points
MAIN_RUN = "mnist:64"    # Figure 10's run (MNIST; the text's batch for the feature-map experiments)

# Claims whose numbers are wall-clock times (or accuracies read at a wall-clock time): no two runs share them,
# so the smoke references do not compare them.
TIMED = ("cache-beats-random", "cache-saves-time")

CLAIMS = [
    Claim(id="hits-third", statement="The caching trainer drops about a third of the training images every epoch.",
          paper="18,133-21,247 of 60,000 images per epoch (30-35%) at batch 4096 (Figure 7)",
          estimand="per seed, the share of training images that were cache hits, averaged over the epochs, "
                   "minus 32.5% (the middle of the band 25-40%)",
          rule="equivalence", parameters={"margin": (HIT_BAND[1] - HIT_BAND[0]) / 2},
          why="the band 25-40% is the paper's 30-35% with 5 points either side",
          setting=FIG7,
          criterion="Reproduced if the 95% t-interval of the mean share lies inside 25-40%; not reproduced if it "
                    "lies entirely outside; otherwise inconclusive."),
    Claim(id="cache-accuracy", statement="At a large batch, caching training reaches higher test accuracy per "
                                         "epoch than normal training.",
          paper="94.2% vs 91.8% after 10 epochs at batch 4096, and caching ahead at every epoch (Figure 7)",
          estimand="paired by seed: (a) caching minus normal test accuracy averaged over the epochs; "
                   "(b) the same at the last epoch",
          rule="direction", parameters={"expected": "greater"},
          why="both parts must hold: ahead along the way (the paper's every epoch) and at the end (its 2.4 points)",
          setting=FIG7),
    Claim(id="cache-near-normal", statement="Over batch sizes, caching training reaches about the test accuracy "
                                            "of normal training.",
          paper="caching minus normal test accuracy from -4.4 to +1.5 points over batches 32-4096 (Figure 8)",
          estimand="caching minus normal final test accuracy, paired by batch size and seed, pooled",
          rule="noninferiority", parameters={"margin": 0.05},
          why="margin 5 points: the paper calls its worst deficit, 4.4 points at batch 512, 'somewhere near'",
          setting=FIG8),
    Claim(id="cache-beats-random", statement="The cache chooses which images to drop better than chance: it beats "
                                             "dropping as many images at random.",
          paper="not measured (the paper has no random-drop control)",
          estimand="paired by seed: caching minus random-drop test accuracy (a) at the last epoch, both having "
                   "trained on as many images; (b) at the moment the random-drop run ended (equal time)",
          rule="direction", parameters={"expected": "greater"},
          why="the control a data-pruning method needs; both parts must hold",
          setting="extension"),
    Claim(id="cache-saves-time", statement="Caching saves wall-clock training time to a given test accuracy.",
          paper="not measured (the paper reports accuracy per epoch only; saving time is its aim)",
          estimand="paired by seed: caching minus normal training seconds to the target test accuracy; a run that "
                   "never reaches it counts as its whole training time plus one more of its mean epochs",
          rule="direction", parameters={"expected": "less"},
          why="a missed target is counted by a stated rule, never dropped; that count is a lower bound on the "
              "true time, which favours neither trainer",
          setting="extension"),
    Claim(id="fm-regularises", statement="Training on feature maps regularises: the feature-map model's train - "
                                         "test gap is smaller than the base model's.",
          paper="gap (points): base 0.85 / 0.11 / 1.29, feature-map model -0.10 / -0.18 / -0.52 (MNIST batch 64, "
                "256; Fashion-MNIST) (Figure 9)",
          estimand="per data set and batch, paired by seed: base gap minus feature-map gap (train minus test "
                   "accuracy; the feature-map model's on training and test maps)",
          rule="direction", parameters={"expected": "greater"},
          why="one part per data set and batch of Figure 9; all must hold. An underfit model has a small gap "
              "trivially, so its train accuracy is reported beside the gap",
          setting=FIG9),
    Claim(id="fm-fgsm", statement="The feature-map model is more accurate on FGSM images (eps 0.25) than the "
                                  "base model, under the paper's protocol.",
          paper="23.82% vs 10.76% at eps 0.25 (26.74% vs 28.09% at 0.15), MNIST (Figure 10)",
          estimand="paired by seed, MNIST batch 64: feature-map minus base model accuracy on FGSM images made "
                   "with the base model's gradients",
          rule="direction", parameters={"expected": "greater"},
          why="the text names eps 0.25; for the feature-map model these images are a transferred attack",
          setting=FIG9),
    Claim(id="fm-fgsm-vs-transfer", statement="The feature-map model's FGSM advantage is more than the weakness of "
                                              "a transferred attack.",
          paper="not measured (the paper attacks only through the base model)",
          estimand="paired by seed, MNIST batch 64, eps 0.25: feature-map model minus a second base model (another "
                   "seed, trained normally) on the same FGSM images, made with the first base model's gradients",
          rule="direction", parameters={"expected": "greater"},
          why="if a normal model that never saw a map does as well on the transferred images, the protocol, "
              "not the maps, explains the advantage",
          setting="extension"),
    Claim(id="fm-pgd", statement="The feature-map model resists a white-box attack better than the base model.",
          paper="not measured (FGSM through the base model only)",
          estimand="paired by seed, MNIST batch 64, eps 0.25: feature-map minus base model accuracy, each attacked "
                   "by PGD through its own gradients",
          rule="direction", parameters={"expected": "greater"},
          why="the stronger, white-box test of the robustness the paper claims", setting="extension"),
    Claim(id="raw-maps-nan", statement="Training on feature maps taken before the activation gives undefined "
                                       "(NaN) losses.",
          paper="NaN losses on maps straight after the convolution, fixed by taking them after the activation (7.2)",
          estimand="the share of feature-map models, over data sets, batches and seeds, whose training on maps "
                   "taken before the activation stopped on a non-finite loss",
          rule="rate", parameters={"threshold": 0.5, "side": "above"},
          why="the paper says the model learned nothing, so most runs should fail", setting=FIG9),
]
BY_ID = {c.id: c for c in CLAIMS}


# -- the runs the rules consume -------------------------------------------------------------------------
def run_rows(fig7_final, fig8_final, fm, epsilons, fig7_epochs=None) -> list[dict]:
    """One flat dict per trained model: Figure 7's and 8's trainers, Figure 9/10's base, feature-map and
    control models (accuracies as fractions)."""
    rows = []
    for name, final in (("fig7", fig7_final), ("fig8", fig8_final)):
        for r in final.to_dict("records"):
            rows.append({"experiment": name, **r})
    if fig7_epochs is not None:  # per-run means over the epochs, for the Figure 7 rules
        means = fig7_epochs.groupby(["trainer", "seed"]).agg(mean_test_acc=("test_acc", "mean"),
                                                            hits=("cache_hits", "mean"), epochs=("epoch", "max"))
        for r in rows:
            if r["experiment"] == "fig7":
                m = means.loc[(r["trainer"], r["seed"])]
                r.update(mean_test_acc=float(m.mean_test_acc), mean_hits=float(m.hits), epochs=int(m.epochs))
    for r in fm.to_dict("records"):
        common = {"experiment": "fig9", "run": r["run"], "seed": r["seed"]}
        attacks = lambda m: {f"{a}_{e:g}": r[f"{a}_{m}_{e:g}"] for a in ("fgsm", "pgd") for e in epsilons
                             if f"{a}_{m}_{e:g}" in r}
        rows.append({**common, "model": "base", "train_acc": r["base_train"], "test_acc": r["base_test"],
                     **attacks("base")})
        rows.append({**common, "model": "fm", "train_acc": r["fm_train"], "test_acc": r["fm_test_maps"],
                     "test_acc_images": r["fm_test_images"], **attacks("fm")})
        if "base2_test" in r:
            rows.append({**common, "model": "base2", "test_acc": r["base2_test"], **attacks("base2")})
        if "raw_maps_nan" in r and r["raw_maps_nan"] == r["raw_maps_nan"]:
            rows.append({**common, "model": "fm_raw", "diverged": int(r["raw_maps_nan"])})
    return rows


def _pick(runs, key, **where) -> np.ndarray:
    """The values of `key` of the runs matching `where`, sorted by seed (so that pairs line up)."""
    sel = [r for r in runs if key in r and all(r.get(k) == v for k, v in where.items())]
    return np.array([r[key] for r in sorted(sel, key=lambda r: r["seed"])], dtype=float)


def _time_to_target(runs, trainer) -> np.ndarray:
    """Seconds to the target, a miss counted as the whole training time plus one mean epoch."""
    t, total, epochs = (_pick(runs, k, experiment="fig7", trainer=trainer)
                        for k in ("seconds_to_target", "seconds", "epochs"))
    return np.where(np.isfinite(t), t, total + total / epochs)


def decide(runs: list[dict], *, n_train: int, eps: float = ref.FIG10_EPS, main_run: str = MAIN_RUN):
    """[(claim, decision, ours)] for every claim, from the runs of `run_rows` alone."""
    out = []

    def add(cid, decision, ours=None):
        out.append((BY_ID[cid], decision, ours))

    fig7 = lambda key, trainer: _pick(runs, key, experiment="fig7", trainer=trainer)
    share = fig7("mean_hits", "caching") / n_train
    c = BY_ID["hits-third"]
    add("hits-third", c.decide(share - sum(HIT_BAND) / 2),
        f"{100 * share.mean():.1f}% of the training images per epoch (seeds: "
        f"{', '.join(f'{100 * s:.0f}%' for s in share)})")

    c = BY_ID["cache-accuracy"]
    mean_c, mean_n = fig7("mean_test_acc", "caching"), fig7("mean_test_acc", "normal")
    fin_c, fin_n = fig7("test_acc", "caching"), fig7("test_acc", "normal")
    add("cache-accuracy", stats.combine([c.decide(mean_c - mean_n), c.decide(fin_c - fin_n)]),
        f"over the epochs {100 * (mean_c - mean_n).mean():+.1f} points; last epoch caching {100 * fin_c.mean():.1f}%, "
        f"normal {100 * fin_n.mean():.1f}% ({len(fin_c)} seeds)")

    f8 = [r for r in runs if r["experiment"] == "fig8"]
    key = lambda r: (r["batch_size"], r["seed"])
    c8 = {key(r): r["test_acc"] for r in f8 if r["trainer"] == "caching"}
    n8 = {key(r): r["test_acc"] for r in f8 if r["trainer"] == "normal"}
    pairs = sorted(set(c8) & set(n8))
    d8 = np.array([c8[k] - n8[k] for k in pairs])
    add("cache-near-normal", BY_ID["cache-near-normal"].decide([c8[k] for k in pairs], [n8[k] for k in pairs],
                                                               paired=True),
        f"caching minus normal {100 * d8.mean():+.1f} points on average, from {100 * d8.min():+.1f} to "
        f"{100 * d8.max():+.1f} ({len(d8)} batch-size and seed pairs)")

    c = BY_ID["cache-beats-random"]
    rand = fig7("test_acc", "random")
    if len(rand):
        at_end_c, at_end_r = fig7("acc_at_random_end", "caching"), fig7("acc_at_random_end", "random")
        add("cache-beats-random", stats.combine([c.decide(fin_c - rand), c.decide(at_end_c - at_end_r)]),
            f"last epoch caching {100 * fin_c.mean():.1f}%, random drop {100 * rand.mean():.1f}%; when the random "
            f"run ended, caching {100 * at_end_c.mean():.1f}% vs {100 * at_end_r.mean():.1f}%")
    else:
        add("cache-beats-random", stats.not_testable("the random-drop control was not run (random_control = False)"))

    t_c, t_n = _time_to_target(runs, "caching"), _time_to_target(runs, "normal")
    miss = {t: int(np.isnan(fig7("seconds_to_target", t)).sum()) for t in ("caching", "normal")}
    add("cache-saves-time", BY_ID["cache-saves-time"].decide(t_c - t_n),
        f"caching {t_c.mean():.1f} s, normal {t_n.mean():.1f} s to the target (runs missing it: caching "
        f"{miss['caching']}, normal {miss['normal']} of {len(t_c)})")

    c = BY_ID["fm-regularises"]
    fm = lambda key, run, model: _pick(runs, key, experiment="fig9", run=run, model=model)
    fm_runs = sorted({r["run"] for r in runs if r["experiment"] == "fig9"})
    parts, words = [], []
    for run in fm_runs:
        gap_b = fm("train_acc", run, "base") - fm("test_acc", run, "base")
        gap_f = fm("train_acc", run, "fm") - fm("test_acc", run, "fm")
        parts.append(c.decide(gap_b - gap_f))
        words.append(f"{run}: base {100 * gap_b.mean():.1f}, maps {100 * gap_f.mean():.1f} points at "
                     f"{100 * fm('train_acc', run, 'fm').mean():.0f}% train accuracy (base "
                     f"{100 * fm('train_acc', run, 'base').mean():.0f}%)")
    add("fm-regularises", stats.combine(parts), "gap " + "; ".join(words))

    a = f"fgsm_{eps:g}"
    base, fmm, base2 = (fm(a, main_run, m) for m in ("base", "fm", "base2"))
    if not len(fmm):
        why = f"no attack at eps {eps:g} on {main_run} (see the parameters epsilons and pgd_epsilons)"
        for cid in ("fm-fgsm", "fm-fgsm-vs-transfer", "fm-pgd"):
            add(cid, stats.not_testable(why))
        return _raw(out, runs)
    add("fm-fgsm", BY_ID["fm-fgsm"].decide(fmm - base),
        f"feature-map model {100 * fmm.mean():.1f}%, base model {100 * base.mean():.1f}%")
    if len(base2):
        add("fm-fgsm-vs-transfer", BY_ID["fm-fgsm-vs-transfer"].decide(fmm - base2),
            f"feature-map model {100 * fmm.mean():.1f}%, second base model {100 * base2.mean():.1f}% on the same images")
    else:
        add("fm-fgsm-vs-transfer", stats.not_testable("the control base model was not trained (control = False)"))
    p = f"pgd_{eps:g}"
    pb, pf = fm(p, main_run, "base"), fm(p, main_run, "fm")
    if len(pf):
        add("fm-pgd", BY_ID["fm-pgd"].decide(pf - pb),
            f"feature-map model {100 * pf.mean():.1f}%, base model {100 * pb.mean():.1f}% under PGD")
    else:
        add("fm-pgd", stats.not_testable(f"no PGD attack at eps {eps:g} (see the parameter pgd_epsilons)"))
    return _raw(out, runs)


def _raw(out, runs):
    add = lambda cid, decision, ours=None: out.append((BY_ID[cid], decision, ours))
    raw = [r["diverged"] for r in runs if r.get("model") == "fm_raw"]
    if raw:
        add("raw-maps-nan", BY_ID["raw-maps-nan"].decide(int(sum(raw)), len(raw)),
            f"{int(sum(raw))} of {len(raw)} runs stopped on a non-finite loss")
    else:
        add("raw-maps-nan", stats.not_testable("no run trained on maps before the activation (nan_check = False)"))
    return out
