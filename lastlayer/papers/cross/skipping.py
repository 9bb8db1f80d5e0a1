"""Study 3: is feature_cache's cache better than cheaper ways to skip work?

feature_cache's base model and its three trainers (normal, caching, and the same share of each batch dropped at
random: its `compare_trainers`, whose runs its own run cache keys), against selective backprop (Jiang et al. 2019,
'Accelerating Deep Learning by Focusing on the Biggest Losers'): a forward pass over the whole batch without
autograd, then a training step on the examples with the largest loss only. Every skipping trainer drops, epoch by
epoch, the share of each batch the cache dropped in its run of the same seed, so all three train on as many images.
The four trainers of a seed run one after the other in this process (the seeds of a data set in turn), so that a
drift of the machine's speed touches each alike; their timings are the trainer's own (`fit`'s seconds per epoch,
evaluation excluded). Jiang et al. choose examples with a probability that grows with the loss's percentile; we
keep the largest losses outright, which is their selection at its sharpest and keeps the share exactly equal.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from lastlayer.data import Split
from lastlayer.papers.feature_cache.trainers import (accuracy_at_time, compare_trainers, load_subsets, make_base,
                                                     num_classes, time_to_accuracy)
from lastlayer.training.cache import cached_run
from lastlayer.training.trainer import Callback, TrainConfig, evaluate, fit, resolve_device

TRAINERS = ("normal", "caching", "random", "selective")
SKIPPING = ("caching", "random", "selective")  # the trainers that drop part of each batch


class SelectiveBackprop(Callback):
    """Keep, in every batch, the examples with the largest loss; drop `shares` of them (one share per epoch, the
    last one for later epochs). Records 'cache_hits' (dropped) and 'images_trained' per epoch, as feature_cache's
    trainers do, so that every trainer's history reads alike."""

    def __init__(self, shares):
        shares = [shares] if isinstance(shares, (int, float)) else list(shares)
        if not shares or not all(0 <= s < 1 for s in shares):
            raise ValueError(f"every share must lie in [0, 1), got {shares!r}")
        self.shares = shares

    def on_train_start(self, model, optimizer) -> None:
        self._dropped = self._trained = 0

    def filter_batch(self, model, x, y, epoch):
        drop = round(self.shares[min(epoch, len(self.shares) - 1)] * len(x))
        if drop:
            with torch.no_grad():  # the selection's forward pass: part of the method's cost, timed with the step
                loss = F.cross_entropy(model(x), y, reduction="none")
            keep = loss.topk(len(x) - drop).indices.sort().values
            x, y = x[keep], y[keep]
        self._dropped += drop
        self._trained += len(x)
        return x, y

    def on_epoch_end(self, model, epoch, history) -> None:
        history.setdefault("cache_hits", []).append(self._dropped)
        history.setdefault("images_trained", []).append(self._trained)
        self._dropped = self._trained = 0


def train_selective(train: Split, test: Split, config: TrainConfig, shares, *, code: str = "") -> dict:
    """One selective-backprop run of feature_cache's base model (weights drawn from config.seed, as its trainers
    draw them), in the form its trainers' runs are stored: the history and the final training accuracy. `code` is
    the fingerprint of the used packages (`uses.fingerprint`): it only enters the run cache's key."""
    model = make_base(train, config.seed)
    result = fit(model, train, test, config, callbacks=[SelectiveBackprop(shares)])
    return {"history": result.history, "train_acc": evaluate(result.model, train)[1]}


@dataclass(frozen=True)
class Settings:
    """What feature_cache's `compare_trainers` reads of its parameters (its optimiser, its cache, the target)."""
    lr: float
    optimizer: str
    momentum: float
    layer: str
    compare: str
    update: str
    target_acc: float
    device: str


@dataclass(frozen=True)
class SkipRow:
    """One trainer's run on one data set with one seed (one row of the results' `runs`)."""
    dataset: str
    trainer: str                  # one of TRAINERS
    seed: int
    epochs: int
    images_trained: int
    seconds: float                # training seconds, evaluation excluded
    test_acc: float               # after the last epoch: every skipping trainer has trained as many images
    target: float                 # the test accuracy whose time is compared
    seconds_to_target: float      # training seconds until the test accuracy first reached it; NaN if never
    equal_time: float             # the shortest training time of the skipping trainers of this seed
    acc_at_equal_time: float      # test accuracy of the last epoch finished within equal_time
    experiment: str = "skipping"


def skipping_study(datasets, targets, seeds, settings: Settings, *, n_train: int, n_test: int, batch_size: int,
                   epochs: int, data_seed: int = 0, code: str = "") -> tuple[list[SkipRow], dict]:
    """Every trainer of TRAINERS on every data set and seed, in turns (see the module's text). Returns the rows and
    {(dataset, trainer, seed): history} for the figures."""
    device = str(resolve_device(settings.device))
    rows, histories = [], {}
    for name, target in zip(datasets, targets):
        train, test = load_subsets(name, n_train, n_test, data_seed, device)
        chance = 1 / num_classes(train)
        these = Settings(**{**settings.__dict__, "target_acc": float(target), "device": device})
        for seed in seeds:
            sweep = compare_trainers(train, test, these, batch_sizes=[batch_size], seeds=[seed], epochs=epochs,
                                     random_control=True)
            runs = {t: sweep.histories[t, batch_size, seed] for t in ("normal", "caching", "random")}
            shares = [hit / len(train) for hit in runs["caching"]["cache_hits"]]
            config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=settings.lr, optimizer=settings.optimizer,
                                 momentum=settings.momentum, seed=seed, device=device)
            runs["selective"] = cached_run(train_selective, train, test, config, shares, code=code)["history"]
            equal = min(float(np.sum(runs[t]["seconds"])) for t in SKIPPING)
            for trainer, h in runs.items():
                histories[name, trainer, seed] = h
                rows.append(SkipRow(name, trainer, seed, epochs=len(h["seconds"]),
                                    images_trained=int(np.sum(h["examples"])), seconds=float(np.sum(h["seconds"])),
                                    test_acc=float(h["test_acc"][-1]), target=float(target),
                                    seconds_to_target=time_to_accuracy(h, target), equal_time=equal,
                                    acc_at_equal_time=accuracy_at_time(h, equal, chance)))
    return rows, histories


__all__ = ["SKIPPING", "TRAINERS", "SelectiveBackprop", "Settings", "SkipRow", "skipping_study", "train_selective"]
