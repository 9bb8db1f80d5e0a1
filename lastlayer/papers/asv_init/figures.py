"""Figures and reading tables of the asv_init notebook, from the tables of `experiments.run`'s `Runs`.

Tables are formatted for reading (strings 'mean ± sd', percentages, our value beside the paper's); figures are
returned, not shown, so the notebook cell decides (a figure at the end of a cell is displayed once).
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from lastlayer.plots import finish
from lastlayer.numbers import fmt_mean_sd

from .claims import LABELS
from .reference import F34_STD_COLUMNS, F34_STDS, METHODS, TABLE1, TABLE2, TABLE3


def std_check(table: pd.DataFrame) -> pd.DataFrame:
    """Our F34 stds (`lastlayer.init.std_table`) beside the formulas' check table, at the rows where the
    methods differ; columns 'ours / table' per method."""
    rows = [1, 2, 3, 8, 9, 16, 17, 28, 29, 33, 34]
    out = pd.DataFrame({"layer": table.loc[rows, "layer"], "pool": table.loc[rows, "pool"]})
    for j, m in enumerate(F34_STD_COLUMNS):
        out[LABELS[m]] = [f"{table.loc[l, m]:.4f} / {F34_STDS[l][j]:.4f}" for l in rows]
    return out


def std_check_max_diff(table: pd.DataFrame) -> float:
    return max(abs(table.loc[l, m] - F34_STDS[l][j]) for l in F34_STDS for j, m in enumerate(F34_STD_COLUMNS))


def plot_picture(curves: pd.DataFrame, pooled_layers, title: str):
    """Per-layer log2 forward and backward variance (mean over draws) for each method; dotted lines after
    the pooled layers."""
    fig, axes = plt.subplots(1, 2, figsize=(7.4, 4), sharex=True)
    for ax, key, ylabel in zip(axes, ["forward", "backward"],
                               [r"$\log_2 \mathrm{Var}(u_l)$", r"$\log_2 \mathrm{Var}(\partial E/\partial z_{l-1})$"]):
        for method in METHODS:
            m = curves[curves.method == method].groupby("l")[key].mean()
            ax.plot(m.index, m.values, marker=".", label=LABELS[method])
        for p in pooled_layers:
            ax.axvline(p + 0.5, color="grey", ls=":", lw=1)
        ax.set_xlabel("layer l")
        ax.set_ylabel(ylabel)
        ax.set_title(key)
    axes[0].legend()
    fig.suptitle(title)
    return finish(fig)


def jump_table(pooled: pd.DataFrame) -> pd.DataFrame:
    """log2 jump across each pooled layer per method: 'measured mean ± sd (predicted)'."""
    rows = {}
    for (layer, pool), g in pooled.groupby(["layer", "pool"]):
        for direction, col, pred in (("forward", "fwd_jump", "fwd_pred"), ("backward", "bwd_jump", "bwd_pred")):
            rows[(direction, f"{layer} ({pool})")] = {
                LABELS[m]: f"{fmt_mean_sd(h[col], digits=2, sign=True)} ({h[pred].iloc[0]:+.2f})"
                for m in METHODS if len(h := g[g.method == m])}
    out = pd.DataFrame(rows).T
    out.index.names = ["direction", "after layer"]
    return out


def theory_table(pooled: pd.DataFrame) -> pd.DataFrame:
    """τ and γ at each pooled layer: the paper's formula, the count over the actual windows, and measured in
    the network (mean ± sd over the draws of one method; τ and γ do not depend on the layer scales)."""
    g = pooled[pooled.method == pooled.method.iloc[0]]
    rows = []
    for (layer, pool), h in g.groupby(["layer", "pool"]):
        rows.append({"after layer": f"{layer} ({pool})", "τ formula": f"{h.tau_formula.iloc[0]:.4g}",
                     "τ measured": fmt_mean_sd(h.tau, digits=4), "γ formula": f"{h.gamma_formula.iloc[0]:.4g}",
                     "γ over the windows": f"{h.gamma_windows.iloc[0]:.4g}",
                     "γ measured": fmt_mean_sd(h.gamma, digits=4 if pool.startswith("max") else 6)})
    return pd.DataFrame(rows).set_index("after layer")


def picture_numbers(pooled) -> dict[str, float]:
    """The numbers the notebook's text quotes from the variance picture's pooled table (`Runs.f34_pooled`): γ at
    the first max pool (measured, over the windows, the paper's) with ASV backward's jump there, and τ at the last
    average pool."""
    first = lambda pool, method: pooled[pooled.pool.str.startswith(pool) & (pooled.method == method)]
    mx, avg = first("max", "asv_backward"), first("avg", "asv_forward")
    mx, avg = mx[mx.layer == mx.layer.min()], avg[avg.layer == avg.layer.max()]
    return {"gamma-stem": mx.gamma.mean(), "gamma-windows": mx.gamma_windows.iloc[0],
            "gamma-paper": mx.gamma_formula.iloc[0], "gamma-ratio": mx.gamma.mean() / mx.gamma_formula.iloc[0],
            "jump-stem": mx.bwd_jump.mean(), "jump-stem-windows": mx.bwd_pred_windows.iloc[0],
            "tau-global": avg.tau.mean(), "tau-formula": avg.tau_formula.iloc[0],
            "tau-log2": float(np.log2(avg.tau / avg.tau_formula).mean())}


def gamma_table(check: pd.DataFrame) -> pd.DataFrame:
    """`experiments.gamma_check` for reading: window, Monte Carlo γ ± standard error, the two formulas."""
    return pd.DataFrame({
        "window": [f"{k}x{k}, stride {s}, pad {p}" for k, s, p in zip(check.kernel, check.stride, check.padding)],
        "γ Monte Carlo": [f"{m:.4f} ± {se:.4f}" for m, se in zip(check.measured, check.se)],
        "γ paper (1-2^-T)/T": check.paper.map("{:.4f}".format),
        "γ over the windows": check.windows.map("{:.4f}".format)}).set_index("window")


def _best_lr(runs: pd.DataFrame) -> pd.DataFrame:
    """Per seed, method and dataset the row of the best learning rate (the paper's 'best of its grid')."""
    return runs.loc[runs.groupby(["dataset", "method", "seed"]).peak_acc.idxmax()]


def table1(runs: pd.DataFrame, paper: dict = TABLE1) -> pd.DataFrame:
    """Peak accuracy % at each seed's best learning rate, mean ± sd, beside the paper's Table 1 (or `paper`)."""
    out = {}
    for d, g in (_best_lr(runs).groupby("dataset", sort=False) if len(runs) else ()):
        out[f"ours: {d}"] = {LABELS[m]: fmt_mean_sd(h.peak_acc, scale=100, digits=1)
                             for m in METHODS if len(h := g[g.method == m])}
    for d, row in paper.items():
        out[f"paper: {d}"] = {LABELS[m]: f"{row[m]:.2f}" for m in METHODS}
    return pd.DataFrame(out).T


def table2(runs: pd.DataFrame) -> pd.DataFrame:
    """Table 2's grid as Table 1's: ours at each seed's best Adam rate beside the paper's F50 on Car; only the
    paper's row when the run has no table2 rows."""
    return table1(runs, TABLE2)


def plot_table1(runs: pd.DataFrame, title: str):
    """Peak accuracy against Adam's learning rate per method (mean ± sd over seeds), one panel per dataset; None
    for no runs (Table 2 with `table2_seeds` 0)."""
    if not len(runs):
        return None
    names = list(dict.fromkeys(runs.dataset))
    fig, axes = plt.subplots(1, len(names), figsize=(min(7.4, 5 * len(names)), 4), squeeze=False)
    for ax, name in zip(axes[0], names):
        for m in METHODS:
            g = runs[(runs.dataset == name) & (runs.method == m)].groupby("lr").peak_acc
            ax.errorbar(g.mean().index, g.mean() * 100, yerr=g.std(ddof=1).fillna(0) * 100, marker="o", capsize=3,
                        label=LABELS[m])
        ax.set_xscale("log")
        ax.set_xlabel("Adam learning rate")
        ax.set_ylabel("peak validation accuracy (%)")
        ax.set_title(name)
    axes[0][0].legend()
    fig.suptitle(title)
    return finish(fig)


def table3(runs: pd.DataFrame) -> pd.DataFrame:
    """Per optimizer (with its learning rate) and method: 'ours mean ± sd / paper' in %."""
    rows = {}
    for opt, g in runs.groupby("optimizer", sort=False):
        paper = TABLE3.get(opt, {})
        rows[f"{opt} (lr {g.lr.iloc[0]:g})"] = {
            LABELS[m]: fmt_mean_sd(h.peak_acc, scale=100, digits=1) + (f" / {paper[m]:.2f}" if m in paper else "")
            for m in METHODS if len(h := g[g.method == m])}
    return pd.DataFrame(rows).T


def plot_table3(runs: pd.DataFrame, title: str):
    """Bars of peak accuracy per optimizer and method (mean ± sd over seeds)."""
    opts = list(dict.fromkeys(runs.optimizer))
    fig, ax = plt.subplots(figsize=(7.4, 4))
    width = 0.16
    for i, m in enumerate(METHODS):
        g = runs[runs.method == m].groupby("optimizer").peak_acc
        mean, sd = g.mean().reindex(opts) * 100, g.std(ddof=1).reindex(opts).fillna(0) * 100
        ax.bar(np.arange(len(opts)) + (i - 2) * width, mean, width, yerr=sd, capsize=2, label=LABELS[m])
    lrs = runs.groupby("optimizer").lr.first()
    ax.set_xticks(np.arange(len(opts)), [f"{o} ({lrs[o]:g})" for o in opts])
    ax.set_ylabel("peak validation accuracy (%)")
    ax.set_title(title)
    ax.legend(ncols=5, loc="lower center", bbox_to_anchor=(0.5, 1.08))
    return finish(fig)
