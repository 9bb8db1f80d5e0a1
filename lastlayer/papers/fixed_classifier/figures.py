"""Tables and figures of the fixed_classifier notebook, from the trained runs (`RunResult`) or their rows
(`Row`, `CorruptionRow`).

Tables give 'mean ± sd' over the evaluation seeds; figures use the models kept for the first seed.
"""
from __future__ import annotations

from dataclasses import asdict

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from lastlayer import metrics
from lastlayer.plots import finish, legend_below
from lastlayer.numbers import fmt_mean_sd
from lastlayer.papers.fixed_classifier import reference as ref
from lastlayer.papers.fixed_classifier.experiments import corruption_rows, model_rows

DATASET_NAMES = {"fashion_mnist": "Fashion-MNIST", "mnist": "MNIST", "stl10": "STL-10", "cifar10": "CIFAR-10",
                 "cifar100": "CIFAR-100"}


def _frame(rows, role="eval") -> pd.DataFrame:
    """The models' `Row`s of `role` (None: every role) as a data frame."""
    return pd.DataFrame([asdict(r) for r in model_rows(rows, role)])


MODEL_KEY = ["dataset", "variant", "lr", "seed"]


def _with_corruptions(rows) -> tuple[pd.DataFrame, list[str]]:
    """The evaluation models tested under every corruption (signed ones left out), with a column of accuracy
    per corruption setting ('jpeg@20'), and those settings in the order they were run."""
    df, bad = _frame(rows), pd.DataFrame([asdict(r) for r in corruption_rows(rows)])
    if not len(bad) or not len(df):
        return df.iloc[:0], []
    bad["setting"] = [f"{c}@{s:g}" for c, s in zip(bad.corruption, bad.severity)]
    keys = list(dict.fromkeys(bad.setting))
    for k in keys:
        df = df.merge(bad[bad.setting == k][MODEL_KEY + ["acc"]].rename(columns={"acc": k}), on=MODEL_KEY, how="left")
    return df[df[keys].notna().all(axis=1) & ~df.signed], keys


def _table(df, columns: dict, by=("dataset", "variant"), digits=3, scale=1.0) -> pd.DataFrame:
    """'mean ± sd' of each column (renamed by `columns`) per group, groups in the order they first appear."""
    t = df.groupby(list(by), sort=False)[list(columns)].agg(lambda v: fmt_mean_sd(v, scale=scale, digits=digits))
    t["runs"] = df.groupby(list(by), sort=False).size()
    return t.rename(columns=columns)


def accuracy_table(rows, head: str, scale: float | None = None, role="eval") -> pd.DataFrame:
    """Tables 1 and 2: best and final test accuracy (%) of one head's learned and fixed models."""
    df = _frame(rows, role)
    df = df[(df["head"] == head) & ~df.signed]
    if scale is not None:
        df = df[df.scale == scale]
    df = df.assign(variant=[f"{v} (lr {lr:g})" for v, lr in zip(df.variant, df.lr)])
    return _table(df, {"best_acc": "best acc (%)", "final_acc": "final acc (%)"}, digits=1, scale=100)


def selection_table(rows, chosen: dict) -> pd.DataFrame:
    """The selection runs: accuracy (%) of every setting tried, with the setting each choice took."""
    df = _frame(rows, "select")
    df = df.assign(variant=[f"{v} (lr {lr:g})" if h == "dot" else v for v, lr, h in zip(df.variant, df.lr, df["head"])])
    t = _table(df, {"best_acc": "best acc (%)"}, digits=1, scale=100)
    t["chosen"] = ["yes" if _is_chosen(r, chosen.get(d, {})) else "" for (d, _), r in
                   zip(t.index, df.drop_duplicates(["dataset", "variant"]).to_dict("records"))]
    return t


def _is_chosen(row, choice) -> bool:
    if row["head"] == "dot":
        return row["lr"] == choice.get("lr learned dot")
    return row["scale"] == choice.get("S fixed" if row["fixed"] else "S learned")


def best_s_table(rows, chosen: dict) -> pd.DataFrame:
    """Table 3: learned and fixed cosine models at the S chosen on the selection seeds (accuracy %)."""
    df, out = _frame(rows), []
    for d, choice in chosen.items():
        for fixed, key in ((False, "S learned"), (True, "S fixed")):
            if key in choice:
                sel = df[(df.dataset == d) & (df["head"] == "cosine") & (df.fixed == fixed) & (df.scale == choice[key])
                         & ~df.signed]
                out.append({"dataset": d, "model": f"{'fixed' if fixed else 'learned'} cosine", "chosen S": f"{choice[key]:g}",
                            "best acc (%)": fmt_mean_sd(sel.best_acc, scale=100, digits=1), "runs": len(sel)})
    return pd.DataFrame(out).set_index(["dataset", "model"]) if out else pd.DataFrame()


def geometry_table(rows) -> pd.DataFrame:
    """Table 4 and the geometry behind Figures 3-5, for every cosine model (plus the bound of a
    non-negative embedding): image-to-class cosine, its reachable maximum, nearest class-vector cosine,
    compactness, separability."""
    df = _frame(rows)
    df = df[df["head"] == "cosine"].sort_values(["dataset", "signed", "fixed", "scale"], kind="stable")
    return _table(df, {"image_class_cosine": "image-class cos", "cosine_bound": "reachable max",
                       "class_vector_nn_cosine": "nearest class cos", "compactness": "compactness",
                       "separability": "separability"})


def dot_geometry_table(rows) -> pd.DataFrame:
    df = _frame(rows)
    return _table(df[df["head"] == "dot"], {"image_class_cosine": "image-class cos", "cosine_bound": "reachable max",
                                            "compactness": "compactness", "separability": "separability"})


def spearman_table(rows) -> pd.DataFrame:
    """Figures 2 and 4 (right): Spearman rho of confusions against class-vector cosine, ours beside the paper's."""
    df = _frame(rows)
    df = df[(df["head"] == "dot") | ((df.scale == 1.0) & ~df.signed)]
    t = _table(df, {"spearman": "Spearman rho", "lookalike_contrast": "look-alike contrast"}, digits=2)
    paper = lambda v: ref.SPEARMAN_LEARNED_DOT if "dot" in v else ref.SPEARMAN_LEARNED_COSINE_S1
    t["paper (STL/C10/C100/TI)"] = ["/".join(f"{x:.2f}" for x in paper(v).values()) if v.startswith("learned") else "-"
                                    for _, v in t.index]
    return t


def robustness_table(rows, chosen: dict) -> pd.DataFrame:
    """Table 6: clean accuracy and the accuracy drop under every corruption (points), one column per model and a
    row per corruption and severity (the paper's layout is transposed: four models fit a column, nine
    corruptions do not)."""
    df, keys = _with_corruptions(rows)
    if not len(df):
        return pd.DataFrame()
    models = _robust_models(df, chosen)
    out = {}
    for name, d in models.items():
        out[name] = {"clean accuracy (%)": fmt_mean_sd(d.best_acc, scale=100, digits=1),
                     **{f"drop: {_corruption(k)}": fmt_mean_sd(d.best_acc - d[k], scale=100, digits=1)
                        for k in keys}}
    table = pd.DataFrame(out)
    table.index.name = "mean ± sd over seeds (points)"
    return table


def _corruption(key: str) -> str:
    """'impulse_noise@0.05' as 'impulse noise, severity 0.05'."""
    kind, severity = key.split("@")
    return f"{kind.replace('_', ' ')}, severity {severity}"


def _robust_models(df, chosen):
    d0 = df.dataset.iloc[0]
    c = chosen.get(d0, {})
    pick = lambda head, fixed, s=None: df[(df.dataset == d0) & (df["head"] == head) & (df.fixed == fixed)
                                          & ((df.scale == s) if s is not None else True)]
    out = {"learned dot": pick("dot", False), "fixed dot": pick("dot", True)}
    if "S learned" in c:
        out[f"learned cosine S={c['S learned']:g}"] = pick("cosine", False, c["S learned"])
        out[f"fixed cosine S={c['S fixed']:g}"] = pick("cosine", True, c["S fixed"])
    return out


def kept(results, dataset: str) -> dict:
    """{variant name: run} of the runs whose trained model was kept (the first evaluation seed)."""
    return {r.variant.name: r for r in results if r.dataset == dataset and r.model is not None and r.role == "eval"}


def cosine_matrices(results, dataset: str, classes: list[str], big_s: float = 20.0):
    """Figures 2 and 4 (left, middle): cosine between class vectors of learned and fixed dot-product models
    and of learned cosine models at S = 1 and `big_s`."""
    k = kept(results, dataset)
    panels = [n for n in ("learned dot", "fixed dot", "learned cosine S=1", f"learned cosine S={big_s:g}") if n in k]
    # two panels a row: four in one row left each matrix too small for its class names and their titles overlapped
    cols = min(2, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.6, 2.7 * rows + 1.0), squeeze=False)
    ticks = classes if len(classes) <= 20 else []
    for i, (ax, name) in enumerate(zip(axes.flat, panels)):
        im = ax.imshow(k[name].class_cosine, vmin=-1, vmax=1, cmap="RdBu_r")
        ax.set_title(name, fontsize=10)
        ax.set_xticks(range(len(ticks)), ticks if i >= len(panels) - cols else [], rotation=90)
        ax.set_yticks(range(len(ticks)), ticks if i % cols == 0 else [])
        ax.grid(False)
    for ax in list(axes.flat)[len(panels):]:
        ax.remove()
    fig.colorbar(im, ax=[a for a in axes.flat if a in fig.axes], shrink=0.8, label="cosine")
    return finish(fig)


def confusion_scatter(results, dataset: str):
    """Figures 2 and 4 (right): confusions i -> j against cos(w_i, w_j), learned models and a fixed one."""
    k = kept(results, dataset)
    names = [n for n in ("learned dot", "learned cosine S=1", "fixed dot") if n in k]
    fig, axes = plt.subplots(1, len(names), figsize=(min(7.4, 3.2 * len(names)), 3.0), sharey=True, squeeze=False)
    for ax, name in zip(axes[0], names):
        pc = metrics.confusion_cosine_correlation(k[name].confusion, k[name].class_cosine)
        ax.scatter(pc.cosine, pc.confusions, s=12, alpha=0.7)
        ax.set_title(f"{name}\nSpearman {pc.rho:.2f}", fontsize=10)
        ax.set_xlabel("cos(w_i, w_j)")
    axes[0][0].set_ylabel("test images of i predicted as j")
    return finish(fig)


def feature_views(results, dataset: str, test, classes: list[str], points: int = 1500, seed: int = 0):
    """Figures 3 and 5: test embeddings on their first two principal components (unit length for cosine
    models), learned and fixed dot-product and cosine S = 1 models."""
    k = kept(results, dataset)
    names = [n for n in ("learned dot", "fixed dot", "learned cosine S=1", "fixed cosine S=1") if n in k]
    idx = torch.randperm(len(test), generator=torch.Generator().manual_seed(seed))[:points]
    y = test.y[idx].cpu().numpy()
    fig, axes = plt.subplots(1, len(names), figsize=(min(7.4, 2.3 * len(names) + 1.2), 2.6), squeeze=False)
    for ax, name in zip(axes[0], names):
        with torch.no_grad():
            f = k[name].model.eval().features(test.x[idx].cpu())
        xy = metrics.project_2d(f, "pca", seed=seed, normalize="cosine" in name)
        for c in range(len(classes)):
            ax.scatter(*xy[y == c].T, s=3, alpha=0.6, label=classes[c], color=plt.cm.tab10(c % 10))
        ax.set_title(name, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0][-1].legend(markerscale=3, loc="center left", bbox_to_anchor=(1, 0.5))
    return finish(fig)


def corruption_drops(rows, chosen: dict):
    """Table 6 as a figure: accuracy drop (points) under each corruption and severity, mean ± sd over seeds."""
    df, keys = _with_corruptions(rows)
    kinds = list(dict.fromkeys(k.split("@")[0] for k in keys))
    fig, axes = plt.subplots(1, len(kinds), figsize=(min(7.4, 3.2 * len(kinds)), 3.0), sharey=True, squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        ks = [k for k in keys if k.startswith(kind + "@")]
        for name, d in _robust_models(df, chosen).items():
            drops = np.array([100 * (d.best_acc - d[k]).to_numpy() for k in ks])
            ax.errorbar([k.split("@")[1] for k in ks], drops.mean(1), yerr=drops.std(1, ddof=1) if drops.shape[1] > 1 else None,
                        marker="o", capsize=3, label=name, linestyle="--" if name.startswith("fixed") else "-")
        ax.set_title(kind.replace("_", " "), fontsize=10)
        ax.set_xlabel("severity")
    axes[0][0].set_ylabel("accuracy drop (points)")
    axes[0][-1].legend()
    return finish(fig)


SWEEP_LINES = [("dot", False, "learned dot"), ("dot", True, "fixed dot"), ("cosine", False, "learned cosine S=1"),
               ("cosine", True, "fixed cosine S=1")]


def lr_sweep(rows):
    """Tables 7-9 as a figure: best test accuracy (%) against the learning rate of the sweep, one panel per
    dataset, one line per head and fixed or learned class vectors, mean ± sd over the sweep's seeds."""
    df = _frame(rows, "lr_sweep")
    datasets = list(dict.fromkeys(df.dataset)) if len(df) else []
    fig, axes = plt.subplots(1, max(1, len(datasets)), figsize=(min(7.4, 3.4 * max(1, len(datasets)) + 0.4), 3.4),
                             sharey=True, squeeze=False)
    if not datasets:  # the sweep was skipped (lr_sweep_seeds = 0): say so where the figure would be
        ax = axes[0][0]
        ax.text(0.5, 0.5, "no learning-rate sweep in this run", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return finish(fig)
    rates = sorted(df.lr.unique())
    for ax, d in zip(axes[0], datasets):
        for head, fixed, name in SWEEP_LINES:
            g = df[(df.dataset == d) & (df["head"] == head) & (df.fixed == fixed)].groupby("lr").best_acc
            mean, sd = 100 * g.mean(), 100 * g.std(ddof=1)
            ax.errorbar(mean.index, mean, yerr=sd.fillna(0) if (g.size() > 1).all() else None, marker="o", capsize=3,
                        label=name, color="C0" if head == "dot" else "C1", linestyle="--" if fixed else "-")
        ax.set_xscale("log")
        ax.set_xticks(rates, [f"{a:g}" for a in rates])
        ax.minorticks_off()
        ax.set_title(DATASET_NAMES.get(d, d), fontsize=10)
        ax.set_xlabel("learning rate")
    axes[0][0].set_ylabel("best test accuracy (%)")
    legend_below(fig, ncols=4, handles=axes[0][0].get_legend_handles_labels()[0])  # one entry per line, not per panel
    return finish(fig)


def verdict_counts(results) -> dict:
    """{verdict: count} over the decided claims, for the narrative."""
    out = {}
    for _, d, _ in results:
        out[d.verdict] = out.get(d.verdict, 0) + 1
    return out


def bound_summary(rows, dataset: str) -> dict:
    """Fixed cosine S = 1 models on `dataset`: the mean reachable cosine, the mean image-to-class cosine
    and its mean share of the bound (NaN without such runs)."""
    df = _frame(rows)
    d = df[(df.dataset == dataset) & (df["head"] == "cosine") & df.fixed & (df.scale == 1.0) & ~df.signed]
    if not len(d):
        return {"bound": float("nan"), "cosine": float("nan"), "share": float("nan")}
    return {"bound": float(d.cosine_bound.mean()), "cosine": float(d.image_class_cosine.mean()),
            "share": float((d.image_class_cosine / d.cosine_bound).mean())}


def _mean(df, **where) -> float:
    for k, v in where.items():
        df = df[df[k] == v]
    return float(df.best_acc.mean()) if len(df) else float("nan")


def bounds(rows) -> dict:
    """`bound_summary` of every dataset of the evaluation runs, in their order."""
    return {d: bound_summary(rows, d) for d in dict.fromkeys(r.dataset for r in model_rows(rows))}


def summary_metrics(runs) -> dict:
    """The report's metrics: mean best accuracy per dataset and model, the settings chosen, the bounds."""
    df, models = _frame(runs.rows), model_rows(runs.rows, None)
    acc = {d: {v: _mean(g, variant=v) for v in g.variant.unique()} for d, g in df.groupby("dataset", sort=False)}
    return {"accuracy": acc, "chosen": runs.chosen, "fixed_cosine_s1": bounds(runs.rows),
            "seeds": int(df.seed.nunique()) if len(df) else 0, "diverged_runs": int(sum(r.diverged for r in models)),
            "runs": len(models)}


def glue_values(decided, runs) -> dict:
    """The numbers and verdicts the notebook's narrative quotes, by name (`decided`: `claims.decide`)."""
    df = _frame(runs.rows)
    first = df.dataset.iloc[0]
    f = df[df.dataset == first]
    out = {f"v_{c.id.replace('-', '_')}": d.verdict for c, d, _ in decided}
    counts = verdict_counts(decided)
    out.update({f"n_{v.replace(' ', '_')}": counts.get(v, 0) for v in
                ("reproduced", "partly", "not reproduced", "inconclusive", "not testable")})
    c = runs.chosen.get(first, {})
    b = bound_summary(runs.rows, first)
    signed = f[f.signed]
    out.update(n_claims=len(decided), n_seeds=int(df.seed.nunique()),
               n_selection=len({r.seed for r in model_rows(runs.rows, "select")}),
               n_sweep=len({r.seed for r in model_rows(runs.rows, "lr_sweep")}),
               first_dataset=DATASET_NAMES.get(first, first), lr_learned_dot=f"{c.get('lr learned dot', float('nan')):g}",
               s_learned=f"{c['S learned']:g}" if "S learned" in c else "n/a",
               s_fixed=f"{c['S fixed']:g}" if "S fixed" in c else "n/a",
               bound_first=b["bound"], share_first=b["share"],
               signed_cos=float(signed.image_class_cosine.mean()) if len(signed) else float("nan"),
               dot_gain_first=100 * (_mean(f, head="dot", fixed=True) - _mean(f, head="dot", fixed=False)),
               cos_gain_first=100 * (_mean(f[~f.signed], head="cosine", fixed=True, scale=1.0)
                                     - _mean(f, head="cosine", fixed=False, scale=1.0)))
    return out
