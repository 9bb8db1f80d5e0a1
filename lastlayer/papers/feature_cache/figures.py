"""The figures and tables of the feature_cache chapter: each helper takes the experiments' results and returns
a matplotlib figure or a pandas DataFrame formatted for reading (mean ± sd over seeds, `fmt_mean_sd`, our value
beside the paper's)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from lastlayer.numbers import fmt_mean_sd
from lastlayer.papers.feature_cache import reference as ref
from lastlayer.plots import finish, mean_band

COLORS = {"normal": "C0", "caching": "C1", "random": "C2"}
LABELS = {"normal": "normal", "caching": "caching", "random": "random drop (control)"}


# -- Figures 1-3 ----------------------------------------------------------------------------------------
def class_centroids(split) -> torch.Tensor:
    x, y = split.x.cpu(), split.y.cpu()
    return torch.stack([x[y == c].mean(0) for c in range(len(split.classes))])


def centroids(split):
    import matplotlib.pyplot as plt
    cents = class_centroids(split)
    fig, axes = plt.subplots(1, len(cents), figsize=(7.4, 1.6))
    for c, ax in enumerate(axes):
        ax.imshow(cents[c, 0], cmap="gray")
        ax.set_title(split.classes[c][:8])
        ax.axis("off")
    return finish(fig)


def outliers(split, digits=(3, 7), k=5):
    """The k images of each digit farthest (Euclidean) from their class centroid."""
    import matplotlib.pyplot as plt
    cents, x, y = class_centroids(split), split.x.cpu(), split.y.cpu()
    fig, axes = plt.subplots(len(digits), k, figsize=(7, 1.6 * len(digits)))
    for row, digit in zip(axes, digits):
        xc = x[y == digit]
        dist = (xc - cents[digit]).flatten(1).norm(dim=1)
        median = float(dist.median())
        for ax, i in zip(row, dist.argsort(descending=True)[:k]):
            ax.imshow(xc[i, 0], cmap="gray")
            ax.set_title(f"d = {dist[i]:.1f} (median {median:.1f})")
            ax.axis("off")
    return finish(fig)


def tsne_map(sample, seed: int, iterations: int):
    """t-SNE (scikit-learn, after a PCA to 50 dimensions, the usual first step) of raw images."""
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    pixels = PCA(n_components=50, random_state=seed).fit_transform(sample.x.flatten(1).cpu().numpy())
    emb = TSNE(n_components=2, init="pca", random_state=seed, perplexity=min(30, len(sample) // 4),
               max_iter=iterations).fit_transform(pixels)
    labels = sample.y.cpu().numpy()
    fig, ax = plt.subplots(figsize=(6, 5))
    for c in range(len(sample.classes)):
        ax.scatter(*emb[labels == c].T, s=4, label=sample.classes[c], color=f"C{c % 10}")
    ax.legend(markerscale=3)
    ax.set_xticks([]), ax.set_yticks([])
    return finish(fig)


# -- Figure 7 and the time -------------------------------------------------------------------------------
def _per_epoch(sweep, trainer, column):
    ep = sweep.epochs
    return ep[ep.trainer == trainer].pivot(index="epoch", columns="seed", values=column)


def fig7_table(sweep, n_train: int) -> pd.DataFrame:
    acc = {t: _per_epoch(sweep, t, "test_acc") for t in ("normal", "caching")}
    hits = _per_epoch(sweep, "caching", "cache_hits") / n_train
    pad = lambda values: [values[e - 1] if e <= len(values) else np.nan for e in acc["normal"].index]
    table = pd.DataFrame({
        "normal, ours (%)": [fmt_mean_sd(r, scale=100) for _, r in acc["normal"].iterrows()],
        "normal, paper (%)": pad(ref.FIG7_NORMAL),
        "caching, ours (%)": [fmt_mean_sd(r, scale=100) for _, r in acc["caching"].iterrows()],
        "caching, paper (%)": pad(ref.FIG7_CACHING),
        "hits, ours (%)": [fmt_mean_sd(r, scale=100) for _, r in hits.iterrows()],
        "hits, paper (%)": [f"{100 * s:.1f}" if s == s else "" for s in pad(ref.FIG7_HIT_SHARE)]},
        index=acc["normal"].index)
    return table.fillna("")


def fig7_plot(sweep, n_train: int):
    import matplotlib.pyplot as plt
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(7.4, 4))
    trainers = [t for t in ("normal", "caching", "random") if t in set(sweep.epochs.trainer)]
    for t in trainers:
        acc = _per_epoch(sweep, t, "test_acc")
        mean_band(ax1, acc.index.values, 100 * acc.values, label=f"{LABELS[t]} (ours)", color=COLORS[t])
    k = np.arange(1, ref.FIG7_EPOCHS + 1)
    ax1.plot(k, ref.FIG7_NORMAL, "--", color=COLORS["normal"], label="normal (paper)")
    ax1.plot(k, ref.FIG7_CACHING, "--", color=COLORS["caching"], label="caching (paper)")
    ax1.set(xlabel="epoch", ylabel="test accuracy (%)", title="test accuracy per epoch")
    ax1.legend()
    hits = _per_epoch(sweep, "caching", "cache_hits") / n_train
    mean_band(ax2, hits.index.values, 100 * hits.values, label="cache hits (ours)", color=COLORS["caching"])
    ax2.plot(k, [100 * s for s in ref.FIG7_HIT_SHARE], "--", color=COLORS["caching"], label="cache hits (paper)")
    ax2.set(xlabel="epoch", ylabel="% of the training set", ylim=(0, 100), title="images dropped per epoch")
    ax2.legend()
    return finish(fig)


def time_plot(sweep, batch_size: int, target: float):
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    for (t, b, s), h in sweep.histories.items():
        if b == batch_size:
            first = s == min(k[2] for k in sweep.histories if k[0] == t)
            ax.plot(np.cumsum(h["seconds"]), 100 * np.array(h["test_acc"]), marker="o", ms=3, color=COLORS[t],
                    alpha=0.8, label=LABELS[t] if first else None)
    ax.axhline(100 * target, color="gray", ls=":", label="target")
    ax.set(xlabel="training seconds (cumulative)", ylabel="test accuracy (%)")
    ax.legend()
    return finish(fig)


def timing_table(sweep) -> pd.DataFrame:
    f = sweep.final
    rows = {}
    for t in [t for t in ("normal", "caching", "random") if t in set(f.trainer)]:
        d = f[f.trainer == t]
        reached = np.isfinite(d.seconds_to_target.values)
        rows[LABELS[t]] = {"seconds per epoch": fmt_mean_sd(d.seconds_per_epoch, digits=2),
                           "images trained": f"{d.images_trained.mean():,.0f}",
                           "seconds to the target":
                               fmt_mean_sd(d.seconds_to_target[reached]) if reached.any() else "never",
                           "runs reaching the target": f"{reached.sum()} of {len(d)}"}
    return pd.DataFrame(rows).T


# -- Figures 5-6: the threshold ----------------------------------------------------------------------------
THRESHOLD_ARMS = ((False, "without threshold", "C3"), (True, "with threshold", COLORS["caching"]))


def threshold_shares(threshold) -> dict:
    """{arm: the hit share averaged over the epochs after the first (the first fills the cache), mean over
    seeds}, for the arms 'without' and 'with' the threshold; NaN for an arm that was not run."""
    later = threshold[threshold.epoch > 1]
    per_seed = later.groupby(["threshold", "seed"]).hit_share.mean()
    return {name: float(per_seed[t].mean()) if t in per_seed.index.get_level_values(0) else float("nan")
            for t, name in ((False, "without"), (True, "with"))}


def threshold_plot(threshold):
    """The share of the training images that were cache hits per epoch, the cache updated after each step,
    without and with the per-class threshold (mean ± sd over seeds)."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for t, label, color in THRESHOLD_ARMS:
        d = threshold[threshold.threshold == t].pivot(index="epoch", columns="seed", values="hit_share")
        if len(d):
            mean_band(ax, d.index.values, 100 * d.values, label=label, color=color)
    if len(threshold):
        ax.legend()
    else:
        ax.text(0.5, 0.5, "not run (threshold_seeds = [])", ha="center", va="center", transform=ax.transAxes)
    ax.set(xlabel="epoch", ylabel="cache hits (% of the training set)", ylim=(0, 100))
    return finish(fig)


# -- Figure 8 ----------------------------------------------------------------------------------------------
def fig8_table(sweep) -> pd.DataFrame:
    f, paper = sweep.final, pd.DataFrame(ref.FIG8).set_index("batch_size")
    rows = []
    for b in sorted(set(f.batch_size)):
        row = {"batch": b}
        for t in ("normal", "caching"):
            row[f"{t} test, ours (%)"] = fmt_mean_sd(f[(f.batch_size == b) & (f.trainer == t)].test_acc, scale=100)
            row[f"{t} test, paper (%)"] = paper[f"{t} test"].get(b, "")
        rows.append(row)
    return pd.DataFrame(rows).set_index("batch")


def fig8_plot(sweep, epochs: int):
    import matplotlib.pyplot as plt
    f, paper = sweep.final, pd.DataFrame(ref.FIG8).set_index("batch_size")
    fig, axes = plt.subplots(1, 2, figsize=(7.4, 4), sharey=True)
    for ax, col in zip(axes, ("train_acc", "test_acc")):
        for t in ("normal", "caching"):
            piv = f[f.trainer == t].pivot(index="batch_size", columns="seed", values=col)
            mean_band(ax, piv.index.values, 100 * piv.values, label=f"{t} (ours, {epochs} epochs)", log_x=True,
                      color=COLORS[t])
            ax.plot(paper.index, paper[f"{t} {col.split('_')[0]}"], "--", marker="x", color=COLORS[t],
                    label=f"{t} (paper)")
        ax.set(xlabel="batch size", title=f"{col.split('_')[0]} accuracy")
        ax.set_xticks(paper.index, paper.index)
        ax.minorticks_off()
    axes[0].set_ylabel("accuracy (%)")
    axes[0].legend()
    return finish(fig)


# -- Figures 9 and 10 -------------------------------------------------------------------------------------
def fig9_table(fm) -> pd.DataFrame:
    _pct = lambda v: fmt_mean_sd(v, scale=100)
    rows = []
    for run, d in fm.groupby("run", sort=False):
        p = ref.FIG9.get(run, (np.nan,) * 4)
        rows.append({"run": run.replace(":", ", batch "),
                     "base train / test, ours (%)": f"{_pct(d.base_train)} / {_pct(d.base_test)}",
                     "base train / test, paper (%)": f"{p[0]} / {p[1]}",
                     "maps train / test, ours (%)": f"{_pct(d.fm_train)} / {_pct(d.fm_test_maps)}",
                     "maps train / test, paper (%)": f"{p[2]} / {p[3]}",
                     "gap base / maps, ours (points)": f"{_pct(d.base_gap)} / {_pct(d.fm_gap)}",
                     "maps model on clean images (%)": _pct(d.fm_test_images)})
    return pd.DataFrame(rows).set_index("run")


def fig9_plot(fm):
    import matplotlib.pyplot as plt
    runs = list(dict.fromkeys(fm.run))
    fig, axes = plt.subplots(1, len(runs), figsize=(min(7.4, 3.4 * len(runs)), 3.6), squeeze=False, sharey=True)
    cols = ("base_train", "base_test", "fm_train", "fm_test_maps")
    xs = np.arange(4)
    for ax, run in zip(axes[0], runs):
        d = fm[fm.run == run]
        ours = [100 * d[c].values for c in cols]
        ax.bar(xs - 0.2, [v.mean() for v in ours], 0.4, yerr=[v.std(ddof=1) if len(v) > 1 else 0 for v in ours],
               capsize=3, label="ours")
        if run in ref.FIG9:
            ax.bar(xs + 0.2, ref.FIG9[run], 0.4, alpha=0.7, label="paper")
        ax.set_xticks(xs, ["base\ntrain", "base\ntest", "maps\ntrain", "maps\ntest"])
        ax.set(ylim=(0, 100), title=run.replace(":", ", batch "))
    axes[0][0].set_ylabel("accuracy (%)")
    axes[0][0].legend()
    return finish(fig)


ATTACKS = [(("fgsm", "base"), "base, FGSM"), (("fgsm", "fm"), "maps, FGSM via base"),
           (("fgsm", "base2"), "2nd base, FGSM via base"), (("pgd", "base"), "base, PGD (own)"),
           (("pgd", "fm"), "maps, PGD (own)")]


def _attacked(attacks, run: str, key, eps: float) -> np.ndarray:
    """The accuracies (fractions, one per seed) of `key` = (attack, model) on `run` at `eps`."""
    attack, model = key
    d = attacks[(attacks.run == run) & (attacks.attack == attack) & (attacks.model == model) & (attacks.eps == eps)]
    return d.sort_values("seed").acc.values


def fig10_table(attacks, run: str, epsilons) -> pd.DataFrame:
    """Accuracy on attacked test images per eps, from the long-format `attacks` of `feature_map_runs`."""
    rows = []
    for eps in epsilons:
        pb, pf = ref.FIG10.get(eps, ("", ""))
        row = {"eps": eps, "base, paper (%)": pb, "maps, paper (%)": pf}
        for key, label in ATTACKS:
            values = _attacked(attacks, run, key, eps)
            row[label] = fmt_mean_sd(values, scale=100) if len(values) else ""
        rows.append(row)
    return pd.DataFrame(rows).set_index("eps")


def fig10_plot(attacks, run: str, epsilons):
    import matplotlib.pyplot as plt
    present = [(k, label) for k, label in ATTACKS if any(len(_attacked(attacks, run, k, e)) for e in epsilons)]
    fig, ax = plt.subplots(figsize=(7.4, 4))
    w = 0.8 / (len(present) + 1)
    xs = np.arange(len(epsilons))
    for i, (k, label) in enumerate(present):
        vals = [100 * v if len(v := _attacked(attacks, run, k, e)) else np.full(1, np.nan) for e in epsilons]
        ax.bar(xs + i * w, [v.mean() for v in vals], w, yerr=[v.std(ddof=1) if len(v) > 1 else 0 for v in vals],
               capsize=3, label=f"{label} (ours)", color=f"C{i}")
    ax.scatter(xs, [ref.FIG10.get(e, (np.nan,) * 2)[0] for e in epsilons], marker="x", color="k", zorder=3,
               label="base (paper)")
    ax.scatter(xs + w, [ref.FIG10.get(e, (np.nan,) * 2)[1] for e in epsilons], marker="*", color="k", zorder=3,
               label="maps (paper)")
    ax.set_xticks(xs + w * (len(present) - 1) / 2, [f"ε = {e:g}" for e in epsilons])
    ax.set_ylabel("accuracy on attacked test images (%)")
    ax.legend(ncol=2)
    return finish(fig)
