"""Figures and tables of the digit-pairs chapter, drawn from the per-round rows the claims are decided on.

Diverged rounds are shown as they count in the claims (accuracy 0.5, `claims.DIVERGED_ACC`) and counted
in the tables.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from lastlayer.numbers import fmt_mean_sd
from lastlayer.papers.digit_pairs import reference as ref
from lastlayer.papers.digit_pairs.claims import NAMES, _grad_rows, accuracies, combo, matches, sweep
from lastlayer.papers.digit_pairs.gradients import OUTCOMES
from lastlayer.plots import bars_vs_paper, finish, legend_below, mean_band

KINDS = list(ref.NAMES)
COMBOS = ((True, False), (True, True), (False, False), (False, True))


def mean_sd(values) -> str:
    """'0.931 ± 0.004': accuracies as the tables write them (mean and sample std, 3 decimals)."""
    return fmt_mean_sd(values, digits=3)


def _diverged(rows, **where) -> int:
    return sum(bool(r.diverged) for r in rows if r.experiment != "fig2" and matches(r, where))


def table1(rows) -> pd.DataFrame:
    """Table I: our test and training accuracy beside the paper's, with the setting of each model."""
    out = {}
    for k in KINDS:
        sub = [r for r in rows if r.experiment == "table1" and r.kind == k]
        if not sub:
            continue
        s = sub[0]
        out[ref.NAMES[k]] = {
            "(c1, c2, h, BN, skip, lr)": f"({s.c1}, {s.c2}, {s.hidden}, {s.batch_norm}, {s.skip}, {s.lr:g})",
            "paper": f"{ref.TABLE1[k][0]:.2f} ± {ref.TABLE1[k][1]:.3f}",
            "ours: test": mean_sd(accuracies(sub)),
            "ours: train": mean_sd([r.train_acc for r in sub]),  # NaN (diverged) left out
            "rounds (diverged)": f"{len(sub)} ({_diverged(sub)})"}
    return pd.DataFrame(out).T


def table1_bars(rows):
    fig, ax = plt.subplots(figsize=(6, 3.5))
    bars_vs_paper(ax, [ref.NAMES[k] for k in KINDS], [accuracies(rows, experiment="table1", kind=k) for k in KINDS],
                  [ref.TABLE1[k] for k in KINDS], title="Table I: test accuracy, ours and the paper's")
    ax.set_ylim(0.5, 1.0)
    return finish(fig)


def curves(table: dict):
    """Test accuracy per epoch of the Table I models (`Runs.table`), mean ± std over rounds."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for k, result in table.items():
        h = np.array([h["test_acc"] for h in result.histories if h.get("test_acc")]).T
        if h.size:
            mean_band(ax, np.arange(1, len(h) + 1), h, ref.NAMES[k])
    ax.set(xlabel="epoch", ylabel="test accuracy", title="Table I models: test accuracy over training")
    ax.legend()
    return finish(fig)


def figure1a(rows):
    """Bars per model and (batch norm, skip) combination, mean ± std over rounds."""
    fig, ax = plt.subplots(figsize=(7.4, 3.5))
    width = 0.2
    for i, (bn, skip) in enumerate(COMBOS):
        acc = [combo(rows, k, bn, skip) for k in KINDS]
        if not any(len(a) for a in acc):
            continue
        ax.bar(np.arange(3) + (i - 1.5) * width, [a.mean() if len(a) else np.nan for a in acc], width,
               yerr=[a.std(ddof=1) if len(a) > 1 else 0 for a in acc], capsize=3, label=f"BN={bn}, skip={skip}")
    ax.set_xticks(np.arange(3), [ref.NAMES[k] for k in KINDS])
    ax.set(ylabel="test accuracy", title="Batch norm and skip connections (each model at its Table I rate)")
    ax.set_ylim(0.4, 1.0)
    legend_below(ax, ncols=4)  # under the axes: it never covers a bar
    return finish(fig)


def figure1a_table(rows) -> pd.DataFrame:
    out = {}
    for bn, skip in COMBOS:
        accs = {ref.NAMES[k]: combo(rows, k, bn, skip) for k in KINDS}
        if any(len(a) for a in accs.values()):
            out[f"BN={bn}, skip={skip}"] = {m: f"{mean_sd(a)} (n={len(a)})" for m, a in accs.items()}
    return pd.DataFrame(out).T


def figure1b(rows):
    """Test accuracy against the learning rate, one line per model (Table I sizes, batch norm, no skips)."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for k in KINDS:
        s = sweep(rows, "fig1b", k, "lr")
        if s:
            ax.errorbar(list(s), [a.mean() for a in s.values()], capsize=3, marker="o", label=ref.NAMES[k],
                        yerr=[a.std(ddof=1) if len(a) > 1 else 0 for a in s.values()])
    ax.axvspan(min(ref.BEST_LRS), max(ref.BEST_LRS), color="grey", alpha=0.15, label="paper's best range")
    ax.set_xscale("log")
    ax.set(xlabel="learning rate", ylabel="test accuracy", title="Learning rate")
    ax.legend()
    return finish(fig)


def figure1b_table(rows) -> pd.DataFrame:
    """Mean ± std per model and learning rate, with the diverged rounds in brackets where there were any."""
    out = {}
    for k in KINDS:
        for lr, a in sweep(rows, "fig1b", k, "lr").items():
            d = sum(_diverged(rows, experiment=e, kind=k, lr=lr) for e in ("table1", "fig1b"))
            out.setdefault(ref.NAMES[k], {})[lr] = mean_sd(a) + (f" ({d} diverged)" if d else "")
    df = pd.DataFrame(out).T
    df = df[sorted(df.columns)].fillna("–")
    df.columns = [f"lr {lr:g}" for lr in df.columns]
    return df


def figure1c(rows):
    s = sweep(rows, "fig1c", "siamese2", "w_aux")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if s:
        ws = np.array(list(s))
        x = np.where(ws > 0, ws, (ws[ws > 0].min() if (ws > 0).any() else 1.0) / 3)  # w2 = 0 at the left edge
        for xi, a in zip(x, s.values()):
            ax.plot(np.full(len(a), xi), a, ".", color="grey", alpha=0.5)
        ax.errorbar(x, [a.mean() for a in s.values()], yerr=[a.std(ddof=1) if len(a) > 1 else 0 for a in s.values()],
                    marker="o", capsize=3, label="siamese 2 (dots: rounds)")
        ax.set_xscale("log")
        ax.set_xticks(x, ["0" if w == 0 else f"{w:.2g}" for w in ws])
        ax.minorticks_off()
        ax.legend()
    ax.set(xlabel="auxiliary-loss weight w2 (w1 = 1)", ylabel="test accuracy", title="Auxiliary-loss weight")
    return finish(fig)


def figure1c_table(rows) -> pd.DataFrame:
    s = sweep(rows, "fig1c", "siamese2", "w_aux")
    return pd.DataFrame({"w2": [f"{w:.3g}" for w in s], "test accuracy": [mean_sd(a) for a in s.values()],
                         "rounds": [len(a) for a in s.values()]}).set_index("w2")


def figure1d(rows):
    fig, axes = plt.subplots(1, 3, figsize=(7.4, 3.2), sharey=True)
    for ax, layer in zip(axes, ("c1", "c2", "hidden")):
        s = sweep(rows, "fig1d", "pair", layer)
        if s:
            values = list(s)
            ax.errorbar(values, [a.mean() for a in s.values()], marker="o", capsize=3,
                        yerr=[a.std(ddof=1) if len(a) > 1 else 0 for a in s.values()])
            ax.set_xscale("log", base=2)
            ax.set_xticks(values, [str(v) for v in values])
            ax.minorticks_off()
        ax.set(xlabel=layer, title=f"pair model: {layer}")
    axes[0].set_ylabel("test accuracy")
    return finish(fig)


def figure2(grads: dict, round: int = 0):
    """Per-layer gradient norms of one round with (left) and without (right) batch norm; exact zeros are
    drawn at 1e-12 so that a dead layer shows on the log axis."""
    fig, axes = plt.subplots(1, 2, figsize=(7.4, 3.5), sharey=True)
    for ax, bn in zip(axes, (True, False)):
        g = grads[bn]
        for layer, norms in g.norms[round].items():
            ax.plot(np.arange(1, len(norms) + 1), np.maximum(norms, 1e-12), label=layer)
        ax.set_yscale("log")
        ax.set(xlabel="mini-batch", title=f"{'with' if bn else 'without'} batch norm: {g.outcomes[round]}")
    axes[0].set_ylabel(f"gradient norm (round {round + 1})")
    axes[1].legend()
    return finish(fig)


def gradient_table(rows, kinds=("pair",)) -> pd.DataFrame:
    """What the rounds did, with and without batch norm: counts per outcome and the mini-batches of death, one row
    per arm (the pair model's, by default) or per model and arm (the siamese models' rounds)."""
    out = {}
    for kind in kinds:
        for bn in (True, False):
            sub = _grad_rows(rows, bn, kind)
            if not sub:
                continue
            died = [r.died_at for r in sub if r.died_at is not None and r.outcome in ("died", "died late")]
            row = {o: sum(r.outcome == o for r in sub) for o in OUTCOMES}
            row["body dead from mini-batch"] = (f"median {np.median(died):g} (range {min(died)} to {max(died)})"
                                                if died else "–")
            arm = "with batch norm" if bn else "without batch norm"
            out[arm if tuple(kinds) == ("pair",) else f"{NAMES[kind]}, {arm}"] = row
    return pd.DataFrame(out).T

