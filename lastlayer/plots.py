"""Small plotting helpers shared by the notebooks: ours beside the paper's, mean ± std over seeds."""
from __future__ import annotations

import numpy as np


def bars_vs_paper(ax, labels, ours, paper=None, *, ylabel="test accuracy", title=""):
    """Bars of our mean ± std (lists of per-seed values) with the paper's mean ± std beside them."""
    x = np.arange(len(labels))
    width = 0.38 if paper is not None else 0.7
    means = [np.nanmean(v) for v in ours]
    stds = [np.nanstd(v, ddof=1) if np.sum(~np.isnan(v)) > 1 else 0.0 for v in map(np.asarray, ours)]
    ax.bar(x - (width / 2 if paper is not None else 0), means, width, yerr=stds, capsize=4, label="ours")
    if paper is not None:
        ax.bar(x + width / 2, [m for m, _ in paper], width, yerr=[s for _, s in paper], capsize=4,
               label="paper", alpha=0.7)
    ax.set_xticks(x, labels)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    return ax


def mean_band(ax, x, values, label=None, *, log_x=False, **kwargs):
    """A line of the mean over seeds (rows of `values`, NaN ignored) with a ±1 std band."""
    v = np.asarray(values, dtype=float)
    mean = np.nanmean(v, axis=-1)
    std = np.nanstd(v, axis=-1, ddof=1) if v.shape[-1] > 1 else np.zeros_like(mean)
    line, = ax.plot(x, mean, marker="o", label=label, **kwargs)
    ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    if log_x:
        ax.set_xscale("log")
    return ax
