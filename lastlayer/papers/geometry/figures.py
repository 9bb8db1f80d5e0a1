"""The figures and tables of the geometry chapter: one call per figure or table in the notebook.

Figures take the `GeometryRun`s (`Runs.runs`: they need the vectors and the embeddings); tables take the rows
(`Runs.rows`, `experiments.Row`), the same rows the claims are decided from.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
from matplotlib.patches import Wedge

from lastlayer.plots import finish
from lastlayer.numbers import fmt_mean_sd

from . import experiments as g
from . import reference as ref
from .claims import by_arm, triple_ranges, values

COLORS = plt.cm.tab10


def _by_arm(runs) -> dict[str, list]:
    out: dict[str, list] = {}
    for r in runs:
        out.setdefault(r.arm, []).append(r)
    return out


# --- Figure 2: the training set ----------------------------------------------------------------------

def count_table(classes, balanced, counts, order, p) -> pd.DataFrame:
    """Images per class before and after the long tail, by rank."""
    fractions = g.long_tail_fractions(len(classes), p)
    return pd.DataFrame({"rank c": range(1, len(order) + 1), "class": [classes[k] for k in order],
                         "g_c": [f"{f:.5f}" for f in fractions],
                         "balanced": [int(balanced[k]) for k in order],
                         "long-tailed": [int(counts[k]) for k in order]}).set_index("rank c")


def plot_counts(classes, balanced, counts):
    fig, axes = plt.subplots(1, 2, figsize=(7.4, 3.2))
    for ax, n, title in [(axes[0], balanced, "(a) balanced"), (axes[1], counts, "(b) long-tailed")]:
        ax.bar(classes, n, color=[COLORS(k) for k in range(len(classes))])
        ax.set(title=title, xlabel="class", ylabel="training images")
    axes[1].set_yscale("log")
    return finish(fig)


# --- Figure 3: embeddings and areas ------------------------------------------------------------------

def median_run(runs, arm):
    """The run of `arm` with the median test accuracy (the lower middle one for an even count): shown
    because it is typical, not hand-picked."""
    rs = sorted((r for r in runs if r.arm == arm), key=lambda r: (r.test_acc, r.seed))
    return rs[(len(rs) - 1) // 2]


def draw_embedding(ax, run, classes, title, max_points=3000):
    """Test embeddings coloured by true class, with the class vectors as arrows scaled into the cloud."""
    idx = np.random.default_rng(0).permutation(len(run.test_labels))[:max_points]
    e, y = run.test_embedding[idx], run.test_labels[idx]
    for k in range(len(classes)):
        ax.scatter(*e[y == k].T, s=3, alpha=0.4, color=COLORS(k), label=classes[k])
    scale = np.percentile(np.linalg.norm(e, axis=1), 90) / np.linalg.norm(run.weight, axis=1).max()
    for k, w in enumerate(run.weight):
        ax.annotate("", xy=w * scale, xytext=(0, 0), arrowprops=dict(arrowstyle="->", color=COLORS(k), lw=2))
    ax.update_datalim(np.vstack([[0, 0], run.weight * scale]))  # keep the origin and the arrows in view
    ax.autoscale_view()
    ax.set(title=title, xlabel="embedding 1", ylabel="embedding 2")
    ax.set_aspect("equal", adjustable="datalim")


def draw_areas(ax, weight, classes, title):
    """The exact wedge each class wins, with the class vectors scaled to the unit disc."""
    for k, start, end in g.class_wedges(weight):
        ax.add_patch(Wedge((0, 0), 1.0, np.degrees(start), np.degrees(end), color=COLORS(k), alpha=0.35))
    w = weight / np.linalg.norm(weight, axis=1).max()
    for k, v in enumerate(w):
        ax.annotate("", xy=v, xytext=(0, 0), arrowprops=dict(arrowstyle="->", color=COLORS(k), lw=2))
        ax.text(*(v * 1.12 if np.linalg.norm(v) > 0.3 else v + 0.05), classes[k], color=COLORS(k),
                ha="center", va="center", fontweight="bold")
    ax.set(xlim=(-1.25, 1.25), ylim=(-1.25, 1.25), title=title, xticks=[], yticks=[])
    ax.set_aspect("equal")


def plot_areas(runs, classes, arms=("random", "guided", "spaced")):
    """One row per arm: the median run's test embedding and its classifier areas."""
    arms = [a for a in arms if any(r.arm == a for r in runs)]
    fig, axes = plt.subplots(len(arms), 2, figsize=(7.4, 4.2 * len(arms)), squeeze=False)
    for i, arm in enumerate(arms):
        run = median_run(runs, arm)
        missing = ", ".join(classes[c] for c in run.no_area) or "none"
        a, b = "abcdefgh"[2 * i:2 * i + 2]
        draw_embedding(axes[i, 0], run, classes, f"({a}) {g.ARM_LABELS[arm]} (seed {run.seed})")
        draw_areas(axes[i, 1], run.weight, classes, f"({b}) areas; without area: {missing}")
    axes[0, 0].legend(markerscale=4, ncol=2, loc="best")
    return finish(fig)


# --- Figure 4: the class vectors during training -----------------------------------------------------

def plot_vectors(runs, classes, arm="random", trained=("random", "guided", "spaced", "norm")):
    """(a) the path of each vector in the median run of `arm`; (b) the angle every vector turned, every
    run of the trained arms; (c) the norms over training in the run of (a)."""
    run = median_run(runs, arm)
    traj = run.trajectory
    fig, axes = plt.subplots(1, 3, figsize=(7.4, 3.6))
    for k in range(traj.shape[1]):
        c = COLORS(k)
        axes[0].plot(traj[:, k, 0], traj[:, k, 1], "-", color=c, lw=1)
        axes[0].plot(*traj[0, k], "o", color=c, ms=4)
        axes[0].annotate("", xy=traj[-1, k], xytext=(0, 0), arrowprops=dict(arrowstyle="->", color=c, lw=1.5))
        axes[0].text(*traj[-1, k] * 1.08, classes[k], color=c)
        axes[2].plot(range(len(traj)), np.linalg.norm(traj[:, k], axis=1), color=c, label=classes[k])
    axes[0].set(title=f"(a) {arm} run, seed {run.seed}", xlabel="w1", ylabel="w2")
    axes[0].set_aspect("equal", adjustable="datalim")
    groups = _by_arm(runs)
    trained = [a for a in trained if a in groups]
    for i, a in enumerate(trained):
        t = np.concatenate([r.turns for r in groups[a]])
        axes[1].scatter(i + np.random.default_rng(i).uniform(-0.25, 0.25, len(t)), t, s=5, alpha=0.4)
    axes[1].axhline(180 / len(classes), color="k", ls="--", lw=1, label="half the equal spacing")
    axes[1].set(xticks=range(len(trained)), xticklabels=trained, ylabel="degrees", title="(b) angle turned")
    axes[1].legend()
    axes[2].set(title="(c) norms", xlabel="epoch", ylabel="norm")
    axes[2].legend(ncol=2)
    return finish(fig)


def turn_table(rows) -> pd.DataFrame:
    """Per arm: the angle the vectors turned (per-run medians and 90th percentiles, mean ± sd over runs)
    and the share of runs whose vectors end in their initial cyclic order."""
    df = pd.DataFrame(rows)
    df = df[df.arm != "fixed"]  # frozen: nothing turns
    return df.groupby("arm", sort=False).agg(
        runs=("seed", "size"),
        **{"median turn (°)": ("median_turn", fmt_mean_sd),
           "90th percentile turn (°)": ("p90_turn", fmt_mean_sd),
           "order kept": ("order_kept", lambda v: f"{100 * np.mean(v):.0f}% of runs")})


# --- accuracy over training, and the arms side by side -----------------------------------------------

def plot_curves(runs, arms):
    """Train (running) and test accuracy over training, one line per seed, one column per arm."""
    groups = _by_arm(runs)
    arms = [a for a in arms if a in groups]
    fig, axes = plt.subplots(2, len(arms), figsize=(7.4, 5), sharey="row", squeeze=False)
    for j, arm in enumerate(arms):
        for r in groups[arm]:
            ep = np.arange(1, len(r.history["train_acc"]) + 1)
            axes[0, j].plot(ep, r.history["train_acc"], "-", lw=0.8, alpha=0.6)
            axes[1, j].plot(ep, r.history["test_acc"], "-", lw=0.8, alpha=0.6)
        axes[0, j].set_title(arm, fontsize=10)
        axes[1, j].set(xlabel="epoch")
    axes[0, 0].set_ylabel("train accuracy")
    axes[1, 0].set_ylabel("test accuracy")
    return finish(fig)


def plot_convergence(runs, arms):
    """Mean train and test accuracy over training, per arm."""
    groups = _by_arm(runs)
    fig, axes = plt.subplots(1, 2, figsize=(7.4, 3.6))
    for arm in [a for a in arms if a in groups]:
        for ax, key in zip(axes, ("train_acc", "test_acc")):
            curve = np.mean([r.history[key] for r in groups[arm]], axis=0)
            ax.plot(np.arange(1, len(curve) + 1), curve, ".-", ms=4, label=g.ARM_LABELS[arm])
    axes[0].set(title="mean train accuracy (running)", xlabel="epoch")
    axes[1].set(title="mean test accuracy", xlabel="epoch")
    axes[1].legend()
    return finish(fig)


def summary_table(rows, arms) -> pd.DataFrame:
    """Per arm: accuracies (mean ± sd), the range of 3 runs, classes without area, epochs to converge;
    the paper's numbers beneath."""
    runs = by_arm(rows)
    out = {}
    for arm in [a for a in arms if a in runs]:
        test, lost = values(runs, arm, "test_acc"), values(runs, arm, "no_area")
        ranges = triple_ranges(test)
        out[g.ARM_LABELS[arm]] = {
            "runs": str(len(test)), "train accuracy": fmt_mean_sd(values(runs, arm, "train_acc"), scale=100, unit="%"),
            "test accuracy": fmt_mean_sd(test, scale=100, unit="%"),
            "test range of 3 runs": fmt_mean_sd(ranges, scale=100, unit=" points") if len(ranges) else "-",
            "classes without area": f"{lost.mean():.2f} per run, {int((lost > 0).sum())} runs",
            "epochs to 95%": fmt_mean_sd(values(runs, arm, "epochs_to_95"))}
    lo, hi = ref.RANDOM_TEST_ACC
    out["paper: random init"] = {
        "runs": str(ref.RUNS), "train accuracy": f"{100 * ref.RANDOM_TRAIN_ACC[0]:.0f}-{100 * ref.RANDOM_TRAIN_ACC[1]:.0f}%",
        "test accuracy": f"{100 * lo:.0f}-{100 * hi:.0f}%", "test range of 3 runs": f"{100 * ref.RANDOM_TEST_RANGE:.0f} points",
        "classes without area": "4 (the run shown)", "epochs to 95%": "-"}
    out["paper: guided init"] = {
        "runs": str(ref.RUNS), "train accuracy": "-", "test accuracy": f"random + {100 * ref.GUIDED_TEST_GAIN:.0f} points",
        "test range of 3 runs": f"{100 * ref.GUIDED_TEST_RANGE:.0f} points", "classes without area": "0 (the run shown)",
        "epochs to 95%": "-"}
    return pd.DataFrame(out).T


def no_area_table(rows, classes, counts, arms) -> pd.DataFrame:
    """How many runs of each arm ended with each class without area, beside the class's training images."""
    runs = by_arm(rows)
    table = pd.DataFrame({"training images": [int(c) for c in counts]}, index=pd.Index(classes, name="class"))
    for arm in [a for a in arms if a in runs]:
        lost = [r.no_area_classes.split() for r in runs[arm].values()]
        table[arm] = [f"{sum(str(k) in l for l in lost)} / {len(lost)}" for k in range(len(classes))]
    return table


def numbers(rows, claims) -> dict:
    """The numbers and verdicts the chapter's text quotes (to glue), from the rows and the claims."""
    runs = by_arm(rows)
    out = {f"verdict-{c['id']}": c["verdict"] for c in claims}
    for arm in runs:
        out[f"{arm}-test"] = 100 * values(runs, arm, "test_acc").mean()
        out[f"{arm}-range3"] = 100 * triple_ranges(values(runs, arm, "test_acc")).mean() \
            if len(runs[arm]) >= 3 else float("nan")
        out[f"{arm}-lost"] = values(runs, arm, "no_area").mean()
    out["n-seeds"] = max(len(v) for v in runs.values())
    return out
