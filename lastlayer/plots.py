"""The book's plot style and small plotting helpers shared by the notebooks: ours beside the paper's, mean ± std
over seeds.

The style is set for the book's column (about 740 CSS pixels): a figure is drawn at 100 pixels per inch, so one
7 inches wide is shown at its natural size and its 10-11 pt text is 14-15 px on screen; it is stored as a retina
PNG (twice the pixels, shown at half size), so it stays sharp. A figure wider than the column (7.4 inches) is
shrunk to fit, and its text with it. Every figure of the book ends in `finish(fig)`, which refuses a figure
whose smallest text would be under 10 px at the size the book shows it, naming that text.
"""
from __future__ import annotations

import numpy as np

COLUMN_INCHES = 7.0  # the default figure width: the book's column at its natural size
COLUMN_PX = 740      # the book's column in CSS pixels; a wider figure is shrunk to it
MIN_TEXT_PX = 10     # the smallest text a reader is asked to read, in CSS pixels as shown
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


def shown_scale(fig, column_px: int = COLUMN_PX) -> float:
    """How much the book shrinks `fig`: 1 when its natural width (inches x dpi CSS pixels; a retina PNG is shown
    at half its pixels) fits the column, less for a wider one."""
    return min(1.0, column_px / (fig.get_figwidth() * fig.dpi))


def text_px(fig, column_px: int = COLUMN_PX) -> list[tuple[float, str]]:
    """(size in CSS px as the book shows it, text) of every visible, non-empty text of the figure: tick labels,
    axis labels, titles, legends, colour bars, annotations; smallest first."""
    import matplotlib.text
    fig.canvas.draw()  # tick labels exist once drawn
    scale = shown_scale(fig, column_px) * fig.dpi / 72
    out = [(t.get_fontsize() * scale, t.get_text()) for t in fig.findobj(matplotlib.text.Text)
           if t.get_visible() and t.get_text().strip() and _on_figure(t)]
    return sorted(out)


def _on_figure(t) -> bool:
    """Whether a text is drawn: a tick label of a hidden tick or an axes turned off is not."""
    ax = getattr(t, "axes", None)
    return ax is None or ax.axison or t in ax.texts or t is ax.title


def finish(fig, column_px: int = COLUMN_PX, minimum: float = MIN_TEXT_PX):
    """`fig`, once checked legible in the book: every text at least `minimum` px at the size it is shown;
    otherwise an error naming the smallest text, its size, and what to change."""
    small = [(px, text) for px, text in text_px(fig, column_px) if px < minimum - 1e-9]
    if small:
        px, text = small[0]
        raise ValueError(f"figure text {text!r} would be {px:.1f} px in the book's {column_px} px column (at least "
                         f"{minimum} px): use the book style's sizes (no fontsize under 10) and a width of at most "
                         f"{column_px / 100:g} inches ({len(small)} text(s) too small)")
    return fig


def legend_below(fig_or_ax, ncols: int = 3, **kwargs):
    """A legend under the plot, outside the axes, so it never covers the data."""
    if hasattr(fig_or_ax, "legend") and hasattr(fig_or_ax, "axes") and not hasattr(fig_or_ax, "plot"):
        return fig_or_ax.legend(loc="outside lower center", ncols=ncols, **kwargs)  # a figure
    return fig_or_ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncols=ncols, **kwargs)


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
