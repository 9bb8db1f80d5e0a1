"""The feature_cache chapter in one call: `run(Params(...))` trains everything its figures and claims need.

- Figure 7: normal, caching and random-drop training at a large batch (`cache_batch`, `seeds`, `epochs`);
- Figures 5-6: caching training with and without the per-class threshold, at Figure 7's batch and epochs
  (`threshold_seeds`; an empty list skips it);
- Figure 8: normal and caching training over batch sizes (`sweep_batch_sizes`, `sweep_seeds`, `sweep_epochs`);
- Figures 9 and 10: training on feature maps, and the attacks (`fm_runs`, `fm_seeds`, ...).
Every training run is cached (`lastlayer.training.cache`), so a rerun loads instead of training.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lastlayer.data import Split, load
from lastlayer.papers.feature_cache.feature_maps import feature_map_runs
from lastlayer.papers.feature_cache.params import Params
from lastlayer.papers.feature_cache.rows import AttackRow, FeatureMapRow, RawMapsRow, ThresholdRow, TrainerRow
from lastlayer.papers.feature_cache.trainers import SweepResult, compare_thresholds, compare_trainers, subset
from lastlayer.training.trainer import resolve_device


@dataclass
class Runs:
    """What `run` measured: the rows the claims read, and what the figures and tables show."""
    rows: list               # TrainerRow, ThresholdRow, FeatureMapRow, AttackRow, RawMapsRow
    fig7: SweepResult        # the large-batch trainers (Figure 7 and the timing)
    threshold: Any           # pandas DataFrame, one row per (threshold, seed, epoch): the hit share (Figures 5-6)
    fig8: SweepResult        # the batch-size sweep (Figure 8)
    fm: Any                  # pandas DataFrame, one row per (fm run, seed): accuracies and gaps (Figure 9)
    attacks: Any             # pandas DataFrame, one row per (fm run, seed, model, attack, eps) (Figure 10)
    images: Split            # the whole training split of `dataset` (Figures 1 and 2)
    tsne_sample: Split       # the images of the t-SNE map (Figure 3)
    n_train: int             # images in the caching experiments' training subset


def run(params: Params) -> Runs:
    """Every experiment of the chapter, in the order the notebook used to run them."""
    p = params
    device = str(resolve_device(p.device))
    full_train, full_test = load(p.dataset, device=device)
    train, test = subset(full_train, p.n_train, p.seed), subset(full_test, p.n_test, p.seed + 1)
    fig7 = compare_trainers(train, test, p, batch_sizes=[p.cache_batch], seeds=p.seeds, epochs=p.epochs,
                            random_control=p.random_control)
    threshold = compare_thresholds(train, test, p, seeds=p.threshold_seeds, batch_size=p.cache_batch,
                                   epochs=p.epochs)
    fig8 = compare_trainers(train, test, p, batch_sizes=p.sweep_batch_sizes, seeds=p.sweep_seeds,
                            epochs=p.sweep_epochs)
    fm, attacks = feature_map_runs(p)
    rows = (trainer_rows("fig7", fig7) + threshold_rows(threshold, p.cache_batch) + trainer_rows("fig8", fig8)
            + feature_map_rows(fm, attacks))
    return Runs(rows=rows, fig7=fig7, threshold=threshold, fig8=fig8, fm=fm, attacks=attacks, images=full_train,
                tsne_sample=subset(full_train, p.tsne_n, p.seed + 2), n_train=len(train))


# -- the rows the claims read -------------------------------------------------------------------------------
def _opt(x) -> float | None:
    """A float, or None for pandas' NaN of a measurement that was not taken."""
    return None if x is None or x != x else float(x)


def trainer_rows(experiment: str, sweep: SweepResult) -> list[TrainerRow]:
    """One row per run of `compare_trainers`, with its means over the epochs."""
    means = sweep.epochs.groupby(["trainer", "batch_size", "seed"]).agg(
        mean_test_acc=("test_acc", "mean"), hits=("cache_hits", "mean"), epochs=("epoch", "max"))
    rows = []
    for r in sweep.final.to_dict("records"):
        m = means.loc[(r["trainer"], r["batch_size"], r["seed"])]
        rows.append(TrainerRow(
            experiment=experiment, trainer=r["trainer"], batch_size=int(r["batch_size"]), seed=int(r["seed"]),
            epochs=int(m.epochs), train_acc=float(r["train_acc"]), test_acc=float(r["test_acc"]),
            mean_test_acc=float(m.mean_test_acc), mean_hits=float(m.hits),
            seconds_per_epoch=float(r["seconds_per_epoch"]), seconds=float(r["seconds"]),
            images_trained=int(r["images_trained"]), seconds_to_target=float(r["seconds_to_target"]),
            acc_at_random_end=_opt(r.get("acc_at_random_end"))))
    return rows


def threshold_rows(threshold, batch_size: int) -> list[ThresholdRow]:
    """One row per run of `compare_thresholds`, its hit shares in epoch order."""
    return [ThresholdRow("threshold", threshold=bool(t), batch_size=batch_size, seed=int(s), epochs=len(d),
                         hit_shares=[float(h) for h in d.sort_values("epoch").hit_share],
                         test_acc=float(d.sort_values("epoch").test_acc.iloc[-1]))
            for (t, s), d in threshold.groupby(["threshold", "seed"], sort=False)]


def feature_map_rows(fm, attacks) -> list:
    """The models of Figure 9 (base, fm, and base2 where the control was trained), the attacks of Figure 10, and
    the models trained on maps before the activation."""
    rows = []
    for r in fm.to_dict("records"):
        common = dict(run=r["run"], seed=int(r["seed"]))
        rows.append(FeatureMapRow("fig9", **common, model="base", train_acc=float(r["base_train"]),
                                  test_acc=float(r["base_test"]), test_acc_images=None))
        rows.append(FeatureMapRow("fig9", **common, model="fm", train_acc=float(r["fm_train"]),
                                  test_acc=float(r["fm_test_maps"]), test_acc_images=float(r["fm_test_images"])))
        if _opt(r.get("base2_test")) is not None:
            rows.append(FeatureMapRow("fig9", **common, model="base2", train_acc=None,
                                      test_acc=float(r["base2_test"]), test_acc_images=None))
        if _opt(r.get("raw_maps_nan")) is not None:
            rows.append(RawMapsRow("raw_maps", **common, diverged=bool(r["raw_maps_nan"])))
    rows += [AttackRow("fig10", run=a["run"], seed=int(a["seed"]), model=a["model"], attack=a["attack"],
                       eps=float(a["eps"]), acc=float(a["acc"])) for a in attacks.to_dict("records")]
    return rows
