"""The experiments of Anand, Bhupathiraju and Chandrala (2022): one call each, every training run cached.

- `compare_trainers`: normal, caching and random-drop training of the base model (the paper's Figures 7, 8).
- `feature_map_runs`: a base model, the model trained on its feature maps, a second base model as the
  control, all tested on clean, FGSM and PGD images (Figures 9, 10).
- `choose_lr`: the learning rate whose normal training best follows Figure 7's slow start.
The caching trainer and the random-drop control are the callbacks of `cache.py`.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from lastlayer.data import Split, load
from lastlayer.models.basenet import BaseNet
from lastlayer.papers.feature_cache.cache import FeatureCache, RandomDrop, layer_output
from lastlayer.training.cache import cached_run
from lastlayer.training.trainer import (NonFiniteLossError, TrainConfig, TrainResult, apply_batched, evaluate, fit,
                                        resolve_device, seed_everything)

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


def make_base(data: Split, seed: int, **model_kwargs) -> BaseNet:
    """A freshly initialised base model sized for `data`, its weights drawn from `seed`."""
    seed_everything(seed)
    kwargs = dict(in_channels=data.x.shape[1], num_classes=num_classes(data), image_size=data.x.shape[-1])
    kwargs.update(model_kwargs)
    return BaseNet(**kwargs)


def train_base(train: Split, test: Split | None, config: TrainConfig, *, trainer: str = "normal",
               layer: str = "conv1", compare: str = ">=", update: str = "after", shares=None,
               model: nn.Module | None = None, **model_kwargs) -> TrainResult:
    """Train the base model (new, seeded by config.seed, unless `model` is given) normally, with caching, or
    with the random-drop control dropping `shares` (one per epoch, or one for all) of every batch."""
    if trainer not in TRAINERS:
        raise ValueError(f"trainer must be one of {TRAINERS}, not {trainer!r}")
    model = model if model is not None else make_base(train, config.seed, **model_kwargs)
    callbacks = []
    if trainer == "caching":
        callbacks.append(FeatureCache(num_classes(train), layer, compare, update))
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


@dataclass
class SweepResult:
    """The runs of `compare_trainers`."""
    epochs: Any      # pandas DataFrame, one row per (trainer, batch_size, seed, epoch)
    final: Any       # pandas DataFrame, one row per run: final accuracies and timings
    histories: dict  # (trainer, batch_size, seed) -> the run's history


def compare_trainers(train: Split, test: Split, *, batch_sizes, seeds, epochs: int, lr: float,
                     optimizer: str = "sgd", momentum: float = 0.0, layer: str = "conv1", compare: str = ">=",
                     update: str = "after", device: str = "auto", target: float = 0.9,
                     random_control: bool = False) -> SweepResult:
    """Normal and caching training of the base model for every batch size and seed; with `random_control`,
    also the random-drop control, which drops at random the share of every batch that the caching run of
    the same seed dropped in that epoch (so both train on as many images).

    The trainers of a (batch size, seed) pair start from the same weights and see the same batch order.
    `final` holds per run the accuracy of the last epoch's model on the whole training set and the test set,
    the mean training seconds per epoch, the training seconds to reach `target` test accuracy, and, for the
    caching and random runs, the test accuracy at the time the random run ended (equal time).
    """
    import pandas as pd
    dev = resolve_device(device)
    train, test = train.to(dev), test.to(dev)
    cache_kwargs = dict(layer=layer, compare=compare, update=update)
    trainers = TRAINERS if random_control else TRAINERS[:2]
    rows, finals, histories = [], [], {}
    for batch_size in batch_sizes:
        for seed in seeds:
            cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, momentum=momentum,
                              seed=seed, device=device)
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
                             seconds_to_target=time_to_accuracy(h, target))
                if end_random is not None:
                    final["acc_at_random_end"] = accuracy_at_time(h, end_random, 1 / num_classes(train))
                finals.append(final)
    return SweepResult(pd.DataFrame(rows), pd.DataFrame(finals), histories)


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


# -- training on feature maps -------------------------------------------------------------------------
@torch.no_grad()
def feature_maps(model: nn.Module, x: torch.Tensor, *, layer: str = "conv1", after_activation: bool = True,
                 maps: str | int = "all", size: int | None = None, batch_size: int = 2048) -> torch.Tensor:
    """The maps of `model`'s `layer` for images x, as one-channel images (M, 1, size, size).

    after_activation: pass the maps through the model's activation (`model.act`, else ReLU): the paper's fix
        for the NaN losses it met when training on raw conv outputs, which are mostly negative.
    maps: 'all' makes every map of every image an example (M = N x channels, grouped by image);
        'mean' averages the maps of an image; an int keeps that map only.
    size: resize (bilinear) to size x size, so that the same architecture can take the maps as input.
    """
    if not (maps in ("all", "mean") or isinstance(maps, int)):
        raise ValueError(f"maps must be 'all', 'mean' or a channel index, not {maps!r}")
    act = getattr(model, "act", nn.ReLU())

    def one_batch(xb):
        m = layer_output(model, layer, xb)
        if after_activation:
            m = act(m)
        if maps == "mean":
            m = m.mean(1, keepdim=True)
        elif isinstance(maps, int):
            if not 0 <= maps < m.shape[1]:
                raise ValueError(f"layer {layer!r} has {m.shape[1]} maps; map {maps} does not exist")
            m = m[:, maps:maps + 1]
        else:
            m = m.reshape(-1, 1, *m.shape[2:])
        if size is not None and m.shape[-1] != size:
            m = F.interpolate(m, size=(size, size), mode="bilinear", align_corners=False)
        return m

    return apply_batched(one_batch, x, batch_size)


def feature_map_split(model: nn.Module, split: Split, *, scale: float | None = None, **kwargs) -> tuple[Split, float]:
    """A new dataset of `split`'s feature maps (see `feature_maps`), labels repeated per map, divided by
    `scale` (default: the largest absolute value, so values fall in [-1, 1], or [0, 1] after the
    activation). Returns (split, scale): scale the test split with the training split's scale."""
    m = feature_maps(model, split.x, **kwargs)
    if scale is None:
        scale = float(m.abs().max()) or 1.0
    repeat = len(m) // len(split)
    return Split(m / scale, split.y.repeat_interleave(repeat), split.classes), scale


def _fm_model(base, train, test, fm_config, *, layer, after_activation, maps, init, map_images):
    """The model of the base model's architecture trained on its maps, and the train and test map splits."""
    size = train.x.shape[-1]
    source = train if map_images is None else train.subset(torch.arange(min(map_images, len(train))))
    kw = dict(layer=layer, after_activation=after_activation, maps=maps, size=size)
    fm_train, scale = feature_map_split(base, source, **kw)
    fm_test, _ = feature_map_split(base, test, scale=scale, **kw)
    model = copy.deepcopy(base) if init == "base" else make_base(train, fm_config.seed + 1)
    return fit(model, fm_train, None, fm_config).model, fm_train, fm_test


def feature_map_experiment(train: Split, test: Split, base_config: TrainConfig, fm_config: TrainConfig, *,
                           layer: str = "conv1", after_activation: bool = True, maps: str | int = "all",
                           init: str = "base", epsilons=(0.15, 0.25), map_images: int | None = None,
                           pgd_steps: int = 10, pgd_epsilons=(0.25,), control: bool = True,
                           raw_check: bool = False) -> dict:
    """Train a base model on images, then a model of the same architecture on the base model's feature
    maps (initialised from the base model's weights, `init='base'`, as the paper's conclusion says, or
    afresh, `init='scratch'`); `map_images` limits the maps to those of the first images of `train`
    (each gives one example per map). Returns a flat dict of accuracies (fractions):

    base_train, base_test; fm_train, fm_test_maps (the maps of the training and test images), fm_test_images;
    per eps: fgsm_base, fgsm_fm (FGSM images made with the base model's gradients: the paper's protocol);
    per eps of `pgd_epsilons`: pgd_base, pgd_fm (each attacked by PGD through its own gradients: the
    white-box test; PGD costs `pgd_steps` FGSM-sized passes, so it runs where the claims need it); and with
    `control`, base2_* for a second base model trained normally from another seed (`fgsm_base2` is the
    control of the paper's protocol: the same transferred images on a model that never saw a map).
    `raw_check` also trains on maps taken before the activation and records whether the loss stayed finite.
    """
    from lastlayer.robustness.attacks import adversarial_accuracy
    if init not in ("base", "scratch"):
        raise ValueError(f"init must be 'base' or 'scratch', not {init!r}")
    dev = resolve_device(base_config.device)
    train, test = train.to(dev), test.to(dev)
    base = train_base(train, test, base_config).model
    fm_kw = dict(layer=layer, maps=maps, init=init, map_images=map_images)
    fm, fm_train, fm_test = _fm_model(base, train, test, fm_config, after_activation=after_activation, **fm_kw)
    out = {"base_train": evaluate(base, train)[1], "base_test": evaluate(base, test)[1],
           "fm_train": evaluate(fm, fm_train)[1], "fm_test_maps": evaluate(fm, fm_test)[1],
           "fm_test_images": evaluate(fm, test)[1]}
    models = {"base": base, "fm": fm}
    if control:
        seed2 = base_config.seed + 1000
        base2 = train_base(train, test, TrainConfig(**{**base_config.__dict__, "seed": seed2})).model
        models["base2"] = base2
        out["base2_test"] = evaluate(base2, test)[1]
    for eps in epsilons:
        for name, model in models.items():
            out[f"fgsm_{name}_{eps:g}"] = adversarial_accuracy(model, test, eps, source=base)
            if name == "base2" or eps not in pgd_epsilons:
                continue
            gen = torch.Generator().manual_seed(base_config.seed)
            out[f"pgd_{name}_{eps:g}"] = adversarial_accuracy(model, test, eps, attack="pgd", steps=pgd_steps,
                                                              generator=gen)
    if raw_check:
        try:
            _fm_model(base, train, test, fm_config, after_activation=False, **fm_kw)
            out["raw_maps_nan"] = 0
        except NonFiniteLossError:
            out["raw_maps_nan"] = 1
    return out


def feature_map_runs(runs, seeds, *, n_train: int, n_test: int, subset_seed: int, base_epochs: int,
                     fm_epochs: int, lr: float, optimizer: str = "sgd", momentum: float = 0.0,
                     device: str = "auto", epsilons=(0.15, 0.25), control: bool = True, attack_runs=None, **kwargs):
    """`feature_map_experiment` for every 'dataset:batch' run and seed; a pandas DataFrame, one row each,
    with the train - test gaps (in accuracy) of both models added. The attacks, and the control base model
    they need, run only for the runs in `attack_runs` (default: all)."""
    import pandas as pd
    rows = []
    for run in runs:
        name, bs = run.split(":")
        train, test = load_subsets(name, n_train, n_test, subset_seed, device=str(resolve_device(device)))
        for s in seeds:
            cfg = dict(batch_size=int(bs), lr=lr, optimizer=optimizer, momentum=momentum, seed=s, device=device)
            attacked = attack_runs is None or run in attack_runs
            out = cached_run(feature_map_experiment, train, test, TrainConfig(epochs=base_epochs, **cfg),
                             TrainConfig(epochs=fm_epochs, **cfg), epsilons=tuple(epsilons) if attacked else (),
                             control=control and attacked, **kwargs)
            rows.append(dict(run=run, seed=s, **out))
    fm = pd.DataFrame(rows)
    fm["base_gap"] = fm.base_train - fm.base_test
    fm["fm_gap"] = fm.fm_train - fm.fm_test_maps
    return fm
