"""The ASV paper's experiments as function calls: train one network per (initialisation, optimizer, learning
rate, seed) and report its peak validation accuracy, as the paper's tables do.

`train_with_init` is one run; `init_grid` runs a list of cells and returns a pandas table with one row per
run. A run whose loss becomes non-finite is not an error here: the paper's grids include learning rates too
large for some initialisations, so such a run keeps the peak accuracy it reached before (chance level if it
diverged in its first epoch) and is flagged `diverged`.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import torch
import torch.nn as nn

from lastlayer.data import DATASETS, Split, load
from lastlayer.imagefolder import load_image_folder
from lastlayer.init import DEFAULT_CAP, initialize
from lastlayer.training.trainer import Callback, NonFiniteLossError, TrainConfig, fit, seed_everything


def load_data(name: str, train_size: int | None = None, val_size: int | None = None, *, seed: int = 0,
              image_root=None, image_size: int = 224) -> tuple[Split, Split]:
    """(train, validation) for the ASV experiments, normalised as the official code does: (x - 0.5) / 0.5.

    'mnist' and 'fashion_mnist' come from `lastlayer.data` (their test split serves as validation set);
    any other name is an image folder `<image_root>/<name>/{train,val}` (`lastlayer.imagefolder`).
    `train_size` / `val_size` draw random subsets (None keeps all), with a generator seeded by `seed`.
    """
    if name in DATASETS:
        train, val = load(name)
    else:
        train = load_image_folder(name, "train", root=image_root, size=image_size)
        val = load_image_folder(name, "val", root=image_root, size=image_size)
    g = torch.Generator().manual_seed(seed)
    out = []
    for split, size in ((train, train_size), (val, val_size)):
        if size is not None:
            if not 0 < size <= len(split):
                raise ValueError(f"{name}: asked for {size} examples of a split of {len(split)}")
            split = split.subset(torch.randperm(len(split), generator=g)[:size])
        out.append(Split((split.x - 0.5) / 0.5, split.y, split.classes))
    return out[0], out[1]


@dataclass
class InitRun:
    method: str
    optimizer: str
    lr: float
    seed: int
    peak_acc: float      # best validation accuracy over the epochs (the paper's measure)
    final_acc: float     # validation accuracy after the last completed epoch
    epochs_done: int
    diverged: bool


class _Peak(Callback):
    """Keeps the validation accuracies of the completed epochs, which `fit` loses when it raises."""

    def __init__(self):
        self.acc: list[float] = []

    def on_epoch_end(self, model, epoch, history):
        self.acc.append(history["test_acc"][-1])


def train_with_init(make_model: Callable[[], nn.Module], method: str, train: Split, val: Split,
                    config: TrainConfig, *, cap: float | None = DEFAULT_CAP,
                    callbacks: tuple[Callback, ...] = ()) -> InitRun:
    """Seed with `config.seed`, build the model, initialise it by `method` (ASV from the shape of one
    training example), train it, and return its peak and final validation accuracy."""
    seed_everything(config.seed)
    model = make_model()
    initialize(model, method, tuple(train.x.shape[1:]), cap=cap)
    peak = _Peak()
    diverged = False
    try:
        fit(model, train, val, config, callbacks=[*callbacks, peak])
    except NonFiniteLossError:
        diverged = True
    chance = 1 / max(len(train.classes), 1)
    return InitRun(method, config.optimizer, config.lr, config.seed,
                   peak_acc=max(peak.acc, default=chance), final_acc=peak.acc[-1] if peak.acc else chance,
                   epochs_done=len(peak.acc), diverged=diverged)


def init_grid(make_model: Callable[[], nn.Module], train: Split, val: Split, base: TrainConfig,
              cells: list[tuple[str, str, float]], seeds: list[int], *, cap: float | None = DEFAULT_CAP,
              callbacks: Callable[[], tuple[Callback, ...]] = tuple):
    """Run every (method, optimizer, lr) cell with every seed; a pandas table with one row per run.

    Runs of the same seed share the batch order and the generator state before initialisation, so cells
    differ by the method, optimizer or learning rate only. `callbacks()` makes fresh callbacks per run.
    """
    import pandas as pd
    rows = []
    for method, optimizer, lr in cells:
        for seed in seeds:
            config = replace(base, optimizer=optimizer, lr=float(lr), seed=int(seed))
            rows.append(train_with_init(make_model, method, train, val, config, cap=cap, callbacks=callbacks()))
    return pd.DataFrame([r.__dict__ for r in rows])
