"""The book's plot style and small plotting helpers shared by the notebooks: ours beside the paper's, mean ± std
over seeds.

The style is set for the book's column (about 700 CSS pixels): a figure 7 inches wide is shown at its natural size,
its 10-11 pt text is 10-11 px or more on screen, and it is stored as a retina PNG (twice the pixels, shown at half
size), so it stays sharp. Keep figures at most 7.5 inches wide; a wider one is shrunk and its text with it.
"""
from __future__ import annotations

import numpy as np

COLUMN_INCHES = 7.0  # the width of a figure that fills the book's column at its natural size
STYLE = {
    "figure.dpi": 100, "savefig.dpi": "figure", "figure.figsize": (COLUMN_INCHES, 3.6),
    "figure.constrained_layout.use": True,
    "font.size": 11, "axes.titlesize": 11, "axes.labelsize": 11, "xtick.labelsize": 10, "ytick.labelsize": 10,
    "legend.fontsize": 10, "legend.title_fontsize": 10, "figure.titlesize": 12, "legend.frameon": False,
    "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
    "lines.linewidth": 1.8, "lines.markersize": 5,
}


def use_book_style() -> None:
    """Set the plot style for every figure of the book, and the inline format to retina PNG."""
    import matplotlib
    import matplotlib.pyplot as plt
    plt.style.use("seaborn-v0_8-colorblind")
    matplotlib.rcParams.update(STYLE)
    try:
        from matplotlib_inline.backend_inline import set_matplotlib_formats
        set_matplotlib_formats("retina")
    except (ImportError, NameError, AttributeError):  # outside IPython: nothing to configure
        pass


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
