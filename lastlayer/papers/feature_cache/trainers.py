"""The trainers of Figures 7 and 8 (Anand, Bhupathiraju and Chandrala 2022), every training run cached.

- `compare_trainers`: normal, caching and random-drop training of the base model (the paper's Figures 7, 8).
- `compare_thresholds`: caching training with and without the per-class threshold (the paper's Figures 5-6).
- `choose_lr`: the learning rate whose normal training best follows Figure 7's slow start (how the chapter's
  `lr` was chosen; see its text).
The caching trainer and the random-drop control are the callbacks of `cache.py`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from lastlayer.data import Split, load
from lastlayer.models import create_model
from lastlayer.papers.feature_cache.cache import FeatureCache, RandomDrop
from lastlayer.papers.feature_cache.params import Params
from lastlayer.training.cache import cached_run
from lastlayer.training.trainer import TrainConfig, TrainResult, evaluate, fit, resolve_device, seed_everything

TRAINERS = ("normal", "caching", "random")


# -- data -----------------------------------------------------------------------------------------------
def subset(split: Split, n: int, seed: int) -> Split:
    """A seeded random subset of n images (all of them if n >= len)."""
    n = min(n, len(split))
    return split.subset(torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))[:n])


def load_subsets(name: str, n_train: int, n_test: int, seed: int, device: str = "cpu") -> tuple[Split, Split]:
    """(train, test): seeded random subsets of a data set's two splits (different seeds for each)."""
    train, test = load(name, device=device)
    return subset(train, n_train, seed), subset(test, n_test, seed + 1)


# -- the base model and one training run ----------------------------------------------------------------
def num_classes(data: Split) -> int:
    return len(data.classes) or int(data.y.max()) + 1


def make_base(data: Split, seed: int) -> nn.Module:
    """A freshly initialised base model sized for `data`, its weights drawn from `seed`."""
    seed_everything(seed)
    return create_model("basenet", num_classes=num_classes(data), in_channels=data.x.shape[1],
                        image_size=data.x.shape[-1])


def train_base(train: Split, test: Split | None, config: TrainConfig, *, trainer: str = "normal",
               layer: str = "conv1", compare: str = ">=", update: str = "after", threshold: bool = True,
               shares=None) -> TrainResult:
    """Train a new base model (seeded by config.seed) normally, with caching (with or without the per-class
    `threshold`), or with the random-drop control dropping `shares` (one per epoch, or one for all) of every
    batch."""
    if trainer not in TRAINERS:
        raise ValueError(f"trainer must be one of {TRAINERS}, not {trainer!r}")
    model = make_base(train, config.seed)
    callbacks = []
    if trainer == "caching":
        callbacks.append(FeatureCache(num_classes(train), layer, compare, update, threshold=threshold))
    elif trainer == "random":
        callbacks.append(RandomDrop(shares, seed=config.seed))
    return fit(model, train, test, config, callbacks=callbacks)


def _trainer_run(train: Split, test: Split, config: TrainConfig, trainer: str, cache_kwargs: dict,
                 shares) -> dict:
    """One run of `compare_trainers`, in the form the run cache stores: its history and final accuracies."""
    result = train_base(train, test, config, trainer=trainer, shares=shares, **cache_kwargs)
    return {"history": result.history, "train_acc": evaluate(result.model, train)[1]}


def time_to_accuracy(history: dict, target: float) -> float:
    """Training seconds (evaluation excluded) until the test accuracy first reaches `target`; NaN if never."""
    elapsed = np.cumsum(history["seconds"])
    for acc, t in zip(history["test_acc"], elapsed):
        if acc >= target:
            return float(t)
    return float("nan")


def accuracy_at_time(history: dict, seconds: float, chance: float) -> float:
    """Test accuracy of the last epoch finished within `seconds` of training; `chance` if none was."""
    done = np.cumsum(history["seconds"]) <= seconds * (1 + 1e-9)
    return float(np.asarray(history["test_acc"])[done][-1]) if done.any() else chance


def _config(params: Params, batch_size: int, seed: int, epochs: int, device: str) -> TrainConfig:
    return TrainConfig(epochs=epochs, batch_size=batch_size, lr=params.lr, optimizer=params.optimizer,
                       momentum=params.momentum, seed=seed, device=device)


@dataclass
class SweepResult:
    """The runs of `compare_trainers`."""
    epochs: Any      # pandas DataFrame, one row per (trainer, batch_size, seed, epoch)
    final: Any       # pandas DataFrame, one row per run: final accuracies and timings
    histories: dict  # (trainer, batch_size, seed) -> the run's history


def compare_trainers(train: Split, test: Split, params: Params, *, batch_sizes, seeds, epochs: int,
                     random_control: bool = False) -> SweepResult:
    """Normal and caching training of the base model for every batch size and seed (the optimiser, the cache's
    `layer`, `compare`, `update`, the `target_acc` and the `device` are those of `params`); with
    `random_control`, also the random-drop control, which drops at random the share of every batch that the
    caching run of the same seed dropped in that epoch (so both train on as many images).

    The trainers of a (batch size, seed) pair start from the same weights and see the same batch order.
    `final` holds per run the accuracy of the last epoch's model on the whole training set and the test set,
    the mean training seconds per epoch, the training seconds to reach `target_acc` test accuracy, and, for the
    caching and random runs, the test accuracy at the time the random run ended (equal time).
    """
    import pandas as pd
    device = str(resolve_device(params.device))
    train, test = train.to(device), test.to(device)
    cache_kwargs = dict(layer=params.layer, compare=params.compare, update=params.update)
    trainers = TRAINERS if random_control else TRAINERS[:2]
    rows, finals, histories = [], [], {}
    for batch_size in batch_sizes:
        for seed in seeds:
            cfg = _config(params, batch_size, seed, epochs, device)
            runs = {}
            for trainer in trainers:
                shares = None
                if trainer == "random":  # the caching run's share of hits, epoch by epoch
                    shares = [hit / len(train) for hit in runs["caching"]["history"]["cache_hits"]]
                runs[trainer] = cached_run(_trainer_run, train, test, cfg, trainer, cache_kwargs, shares)
            end_random = sum(runs["random"]["history"]["seconds"]) if random_control else None
            for trainer, run in runs.items():
                h = run["history"]
                histories[trainer, batch_size, seed] = h
                for e in range(epochs):
                    rows.append(dict(trainer=trainer, batch_size=batch_size, seed=seed, epoch=e + 1,
                                     test_acc=h["test_acc"][e], seconds=h["seconds"][e],
                                     images_trained=h.get("images_trained", h["examples"])[e],
                                     cache_hits=h.get("cache_hits", [0] * epochs)[e]))
                final = dict(trainer=trainer, batch_size=batch_size, seed=seed, train_acc=run["train_acc"],
                             test_acc=h["test_acc"][-1], seconds_per_epoch=float(np.mean(h["seconds"])),
                             seconds=float(np.sum(h["seconds"])), images_trained=int(np.sum(h["examples"])),
                             seconds_to_target=time_to_accuracy(h, params.target_acc))
                if end_random is not None:
                    final["acc_at_random_end"] = accuracy_at_time(h, end_random, 1 / num_classes(train))
                finals.append(final)
    return SweepResult(pd.DataFrame(rows), pd.DataFrame(finals), histories)


def compare_thresholds(train: Split, test: Split, params: Params, *, seeds, batch_size: int, epochs: int):
    """Caching training with the cache updated after each step (the paper's end-of-loop update), with the
    per-class threshold and without it, for every seed; the optimiser, `layer`, `compare` and `device` are
    those of `params`. Returns a pandas DataFrame, one row per (threshold, seed, epoch): the share of the
    training images that were cache hits, and the test accuracy.

    The run with the threshold is the call `compare_trainers` makes for its caching run of the same batch, seed
    and epochs (with `update` 'after'), so where one of its runs has these settings the run cache gives it back
    instead of training it again; only the run without the threshold passes the `threshold` keyword, so that
    call keeps its key."""
    import pandas as pd
    device = str(resolve_device(params.device))
    train, test = train.to(device), test.to(device)
    with_threshold = dict(layer=params.layer, compare=params.compare, update="after")
    arms = {True: with_threshold, False: {**with_threshold, "threshold": False}}
    rows = []
    for seed in seeds:
        cfg = _config(params, batch_size, seed, epochs, device)
        for threshold, cache_kwargs in arms.items():
            h = cached_run(_trainer_run, train, test, cfg, "caching", cache_kwargs, None)["history"]
            rows += [dict(threshold=threshold, seed=seed, epoch=e + 1, hit_share=h["cache_hits"][e] / len(train),
                          test_acc=h["test_acc"][e]) for e in range(epochs)]
    return pd.DataFrame(rows, columns=["threshold", "seed", "epoch", "hit_share", "test_acc"])


def choose_lr(train: Split, test: Split, reference, *, lrs, batch_size: int, seeds, optimizer: str = "sgd",
              momentum: float = 0.0, device: str = "auto"):
    """The learning rate whose normal training follows `reference` (test accuracy per epoch, in [0, 1])
    most closely: least root-mean-square distance, averaged over `seeds`. Returns (lr, {lr: rms})."""
    reference = np.asarray(reference, dtype=float)
    rms = {}
    for lr in lrs:
        cfg = TrainConfig(epochs=len(reference), batch_size=batch_size, lr=lr, optimizer=optimizer,
                          momentum=momentum, device=device)
        curves = [cached_run(_trainer_run, train, test, TrainConfig(**{**cfg.__dict__, "seed": s}), "normal", {},
                             None)["history"]["test_acc"] for s in seeds]
        rms[lr] = float(np.sqrt(((np.asarray(curves) - reference) ** 2).mean()))
    return min(rms, key=rms.get), rms


