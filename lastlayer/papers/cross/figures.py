"""The figures and tables of the chapter, one call each in the notebook, and the numbers its text quotes.

Figures and tables read the same rows the claims are decided from (`TailRow`, `SkipRow`), and the skipping
trainers' histories for their curves.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import matplotlib.pyplot as plt

from lastlayer.numbers import fmt_mean_sd
from lastlayer.plots import finish, legend_below

from lastlayer.init import METHODS

from .claims import FIXED_ARMS, init_runs, jump_runs, relative_times, skip_runs, tail_runs
from .initialisers import NETWORK_LABELS, best_rates
from .long_tail import HEAD_LABELS
from .skipping import TRAINERS

TRAINER_LABELS = {"normal": "normal", "caching": "feature-map cache", "random": "random drop, same share",
                  "selective": "selective backprop, same share"}


def arm_label(arm: str) -> str:
    head, _, s = arm.partition(" ")
    return HEAD_LABELS.get(head, head) + (f", {s}" if s else "")


# --- study 1 ------------------------------------------------------------------------------------------------

def plot_recall_by_rank(rows):
    """Mean test recall of each class against its rank in the long tail (1: the largest), one line per head,
    one panel per data set and embedding size."""
    runs = tail_runs(rows)
    keys = sorted(runs, key=lambda k: (k[0], k[1]))
    cols = min(len(keys), 2)
    fig, axes = plt.subplots((len(keys) + cols - 1) // cols, cols, figsize=(7.4, 3.2 * ((len(keys) + 1) // 2)),
                             squeeze=False, sharey=True)
    styles = {}
    for ax, key in zip(axes.flat, keys):
        for i, (arm, by_seed) in enumerate(sorted(runs[key].items())):
            curve = np.nanmean([r.recall_by_rank for r in by_seed.values()], axis=0)
            style = styles.setdefault(arm, dict(color=plt.cm.tab10(len(styles) % 10),
                                                ls="-" if arm in FIXED_ARMS else "--"))
            ax.plot(np.arange(1, len(curve) + 1), 100 * curve, marker=".", lw=1.2, label=arm_label(arm), **style)
        ax.set(title=f"{key[0]}, {key[1]}-D embedding", xlabel="class rank (1: most training images)",
               xticks=range(1, 11))
        ax.axhline(10, color="k", lw=0.6, ls=":")
    for ax in axes[:, 0]:
        ax.set_ylabel("test recall (%)")
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    legend_below(fig, ncols=2, handles=handles, labels=labels)
    return finish(fig)


def tail_table(rows) -> pd.DataFrame:
    """Per data set, embedding size and head: balanced and worst-class accuracy and classes lost, mean ± sd."""
    out = []
    for (dataset, dim), arms in sorted(tail_runs(rows).items()):
        for arm, by_seed in sorted(arms.items(), key=lambda a: -np.mean([r.balanced_acc for r in a[1].values()])):
            rs = list(by_seed.values())
            out.append({"data set": dataset, "embedding": f"{dim}-D", "head": arm_label(arm), "runs": len(rs),
                        "balanced accuracy": fmt_mean_sd([r.balanced_acc for r in rs], scale=100, unit="%"),
                        "worst class": fmt_mean_sd([r.worst_class_acc for r in rs], scale=100, unit="%"),
                        "classes lost": fmt_mean_sd([r.lost for r in rs])})
    return pd.DataFrame(out)


# --- study 2 ------------------------------------------------------------------------------------------------

def plot_jumps(rows):
    """Per network with pooling: the mean |log2 jump| of the forward and of the backward variance across its
    pooled layers at initialisation, one bar per initialiser (0: the variance is kept)."""
    jumps = jump_runs(rows)
    fig, axes = plt.subplots(1, max(len(jumps), 1), figsize=(7.4, 3.2), squeeze=False, sharey=True)
    for ax, (net, rs) in zip(axes[0], sorted(jumps.items())):
        methods = [m for m in METHODS if any(r.method == m for r in rs)]
        for j, (key, label) in enumerate((("fwd_jump", "forward"), ("bwd_jump", "backward"))):
            means = [np.mean([abs(getattr(r, key)) for r in rs if r.method == m]) for m in methods]
            ax.bar(np.arange(len(methods)) + 0.4 * j - 0.2, means, width=0.4, label=label)
        ax.set_xticks(range(len(methods)), [m.replace("_", "\n") for m in methods], fontsize=8)
        ax.set_title(NETWORK_LABELS.get(net, net), fontsize=9)
    axes[0, 0].set_ylabel("mean |log2 jump| across pooling")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    legend_below(fig, ncols=2, handles=handles, labels=labels)
    return finish(fig)


def init_table(rows) -> pd.DataFrame:
    """Per network and initialiser: the Adam learning rate chosen on the selection seeds and the peak validation
    accuracy at it on the evaluation seeds, mean ± sd, with the diverged runs counted."""
    chosen = best_rates([r for r in rows if getattr(r, "experiment", None) == "initialisers"])
    out = []
    for net, rs in sorted(init_runs(rows).items()):
        for m in [m for m in METHODS if any(r.method == m for r in rs)]:
            mine = [r for r in rs if r.method == m]
            out.append({"network": NETWORK_LABELS.get(net, net), "pooled layers": mine[0].pooled, "initialiser": m,
                        "learning rate": f"{chosen.get((net, m), mine[0].lr):g}", "runs": len(mine),
                        "peak accuracy": fmt_mean_sd([r.peak_acc for r in mine], scale=100, unit="%"),
                        "diverged": sum(r.diverged for r in mine)})
    return pd.DataFrame(out)


# --- study 3 ------------------------------------------------------------------------------------------------

def plot_skipping(rows, histories):
    """Mean test accuracy against mean training seconds, epoch by epoch, one line per trainer, one panel per data
    set, with the target accuracy."""
    runs = skip_runs(rows)
    fig, axes = plt.subplots(1, len(runs), figsize=(7.4, 3.4), squeeze=False)
    for ax, (dataset, trainers) in zip(axes[0], sorted(runs.items())):
        for trainer in [t for t in TRAINERS if t in trainers]:
            hs = [histories[dataset, trainer, s] for s in sorted(trainers[trainer])]
            t = np.mean([np.cumsum(h["seconds"]) for h in hs], axis=0)
            acc = np.mean([h["test_acc"] for h in hs], axis=0)
            ax.plot(t, 100 * acc, marker=".", label=TRAINER_LABELS[trainer])
        target = next(iter(next(iter(trainers.values())).values())).target
        ax.axhline(100 * target, color="k", lw=0.6, ls=":")
        ax.set(title=dataset, xlabel="training seconds", ylabel="test accuracy (%)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    legend_below(fig, ncols=2, handles=handles, labels=labels)
    return finish(fig)


def skip_table(rows) -> pd.DataFrame:
    """Per data set and trainer: images trained, training seconds, final accuracy, time to the target relative to
    normal training, and the accuracy at equal time; mean ± sd over seeds."""
    out = []
    for dataset, trainers in sorted(skip_runs(rows).items()):
        rel = relative_times(trainers)
        for trainer in [t for t in TRAINERS if t in trainers]:
            rs = list(trainers[trainer].values())
            out.append({"data set": dataset, "trainer": TRAINER_LABELS[trainer], "runs": len(rs),
                        "images trained": f"{np.mean([r.images_trained for r in rs]):.0f}",
                        "training seconds": fmt_mean_sd([r.seconds for r in rs]),
                        "final accuracy": fmt_mean_sd([r.test_acc for r in rs], scale=100, unit="%"),
                        "reached the target": f"{sum(np.isfinite(r.seconds_to_target) for r in rs)} of {len(rs)}",
                        "time to target / normal": fmt_mean_sd(rel[trainer]) if len(rel.get(trainer, ())) else "-",
                        "accuracy at equal time": fmt_mean_sd([r.acc_at_equal_time for r in rs], scale=100, unit="%")})
    return pd.DataFrame(out)


# --- the numbers the text quotes ------------------------------------------------------------------------------

def numbers(rows, claims) -> dict:
    """The verdicts and numbers the chapter's 'What we found' glues in, from the rows and the decided claims."""
    out = {f"verdict-{c['id']}": c["verdict"] for c in claims}
    tail = tail_runs(rows)
    for (dataset, dim), arms in tail.items():
        means = {arm: np.mean([r.balanced_acc for r in rs.values()]) for arm, rs in arms.items()}
        lost = {arm: np.mean([r.lost for r in rs.values()]) for arm, rs in arms.items()}
        best = max(means, key=means.get)
        out[f"tail-best-{dataset}-{dim}"] = arm_label(best)
        out[f"tail-best-acc-{dataset}-{dim}"] = 100 * means[best]
        out[f"tail-fewest-lost-{dataset}-{dim}"] = arm_label(min(lost, key=lost.get))
    out["tail-seeds"] = max((len(rs) for arms in tail.values() for rs in arms.values()), default=0)
    for dataset, trainers in skip_runs(rows).items():
        rel = {t: float(np.mean(v)) for t, v in relative_times(trainers).items() if len(v)}
        if rel:
            fastest = min(rel, key=rel.get)
            out[f"skip-fastest-{dataset}"] = TRAINER_LABELS[fastest]
            out[f"skip-fastest-rel-{dataset}"] = 100 * rel[fastest]
        if "caching" in trainers and "normal" in trainers:
            per_epoch = {t: np.mean([r.seconds / r.epochs for r in trainers[t].values()]) for t in trainers}
            out[f"skip-cache-epoch-{dataset}"] = per_epoch["caching"] / per_epoch["normal"]
    for net, rs in init_runs(rows).items():
        means = {m: np.mean([r.peak_acc for r in rs if r.method == m]) for m in {r.method for r in rs}}
        out[f"asv-best-{net}"] = max(means, key=means.get)
    out["asv-seeds"] = max((len({r.seed for r in rs}) for rs in init_runs(rows).values()), default=0)
    out["skip-seeds"] = max((len(rs) for ts in skip_runs(rows).values() for rs in ts.values()), default=0)
    return out


def findings(rows, claims) -> str:
    """'What we found', in plain words, from the numbers and verdicts (markdown)."""
    n = numbers(rows, claims)
    v = lambda cid: n.get(f"verdict-{cid}", "not run")
    lines = []
    tail = sorted(k for k in n if k.startswith("tail-best-") and not k.startswith("tail-best-acc-"))
    if tail:
        best = "; ".join(f"{k[len('tail-best-'):].replace('-', ', ', 1)}-D: {n[k]} "
                         f"({n['tail-best-acc-' + k[len('tail-best-'):]]:.1f}%)" for k in tail)
        lines.append(f"- **Which last layer for a long tail** ({n['tail-seeds']} seeds per head). The best balanced "
                     f"accuracy: {best}. Fixing the class vectors at random does not hurt (`tail-fixing-no-harm`): "
                     f"*{v('tail-fixing-no-harm')}*. A fixed head is best in balanced accuracy "
                     f"(`tail-fixed-best-accuracy`): *{v('tail-fixed-best-accuracy')}*; in worst-class accuracy "
                     f"(`tail-fixed-best-worst-class`): *{v('tail-fixed-best-worst-class')}*. geometry's guided order "
                     f"loses the fewest classes in 2-D (`tail-guided-fewest-lost`): *{v('tail-guided-fewest-lost')}*.")
    best = "; ".join(f"{NETWORK_LABELS.get(k[len('asv-best-'):], k)}: {n[k]}" for k in sorted(n) if k.startswith("asv-best-"))
    if best:
        lines.append(f"- **Does ASV help the other papers' networks** ({n['asv-seeds']} seeds per initialiser at its "
                     f"best rate). The best initialiser after a short schedule: {best}. ASV backward is best on the "
                     f"networks with pooling (`asv-backward-best-other-networks`): "
                     f"*{v('asv-backward-best-other-networks')}*; Kaiming lets the variance jump more than ASV across "
                     f"their pooling layers (`asv-keeps-variance-other-networks`): "
                     f"*{v('asv-keeps-variance-other-networks')}*.")
    skip = sorted(k for k in n if k.startswith("skip-fastest-") and not k.startswith("skip-fastest-rel-"))
    if skip:
        fastest = "; ".join(f"{k[len('skip-fastest-'):]}: {n[k]} ({n['skip-fastest-rel-' + k[len('skip-fastest-'):]]:.0f}% "
                            f"of normal training's time)" for k in skip)
        epoch = "; ".join(f"{k[len('skip-cache-epoch-'):]}: {n[k]:.2f}x" for k in sorted(n)
                          if k.startswith("skip-cache-epoch-"))
        lines.append(f"- **The cache against cheaper ways to skip work** ({n['skip-seeds']} seeds). Fastest to the "
                     f"target: {fastest}. An epoch of the cache costs, against one of normal training, {epoch}. The "
                     f"cache is fastest (`skip-cache-fastest`): *{v('skip-cache-fastest')}*; it beats random dropping "
                     f"at equal images (`skip-cache-beats-random`): *{v('skip-cache-beats-random')}*; it beats "
                     f"selective backprop at equal time (`skip-cache-beats-selective-time`): "
                     f"*{v('skip-cache-beats-selective-time')}*.")
    return "\n".join(lines) + "\n"
