"""The feature-map caching trainer of Anand, Bhupathiraju and Chandrala (2022), and feature-map datasets.

Caching: before each training step, every image of the batch goes through the model up to one conv layer
(the first, in the paper). Its feature vector interleaves, for every map F_i (P x Q) of that layer,
mu_i = sum|F_i| / PQ and sigma_i = sqrt(sum(|F_i| - mu_i)^2) / PQ (Park & Kim 2019). Each class keeps one
cached vector and one threshold, both running means over the images cached so far. An image is a *hit*
when the cosine to the most similar cached vector passes that class's threshold and that class is its
true label; hits are dropped from the batch, misses are trained on and then cached.

The paper prints the hit test as "cosine <= threshold"; a hit is more plausibly "cosine >= threshold"
(the image is at least as close to its class as the cached images were). `compare` chooses.

Everything runs through the plain trainer's `fit` as a `Callback` (`filter_batch` drops the hits), so the
only extra cost is the partial forward pass up to the chosen layer.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from lastlayer.data import Split
from lastlayer.models.basenet import BaseNet
from lastlayer.training.trainer import (Callback, TrainConfig, TrainResult, apply_batched, evaluate, fit, resolve_device,
                      seed_everything)

COMPARES = (">=", "<=")
UPDATES = ("after", "before")


def feature_vector(maps: torch.Tensor) -> torch.Tensor:
    """(N, C, P, Q) feature maps -> (N, 2C) vectors (mu_0, sigma_0, mu_1, sigma_1, ...).

    sigma is the paper's (and Park & Kim's): the root of the summed squares divided by PQ, not by sqrt(PQ).
    """
    if maps.dim() != 4:
        raise ValueError(f"feature maps must be (N, C, P, Q), got shape {tuple(maps.shape)}")
    a = maps.abs()
    pq = a.shape[-2] * a.shape[-1]
    mu = a.sum((-2, -1)) / pq
    sigma = ((a - mu[..., None, None]) ** 2).sum((-2, -1)).sqrt() / pq
    return torch.stack([mu, sigma], dim=-1).flatten(1)


class _Stop(Exception):
    """Raised by a forward hook to end the forward pass once the wanted layer has run."""


def get_layer(model: nn.Module, layer: str) -> nn.Module:
    modules = dict(model.named_modules())
    if layer not in modules or layer == "":
        names = [n for n, m in modules.items() if isinstance(m, nn.Conv2d)]
        raise ValueError(f"model {type(model).__name__} has no layer {layer!r}; its conv layers: {', '.join(names)}")
    return modules[layer]


@torch.no_grad()
def layer_output(model: nn.Module, layer: str, x: torch.Tensor) -> torch.Tensor:
    """The output of `model`'s submodule `layer` for input x, in eval mode, computing nothing after it.

    The forward pass is stopped by an exception from a forward hook, so the layers after `layer` cost nothing.
    """
    module = get_layer(model, layer)
    out: list[torch.Tensor] = []

    def hook(_module, _inputs, output):
        out.append(output)
        raise _Stop

    handle = module.register_forward_hook(hook)
    was_training = model.training
    model.eval()
    try:
        model(x)
    except _Stop:
        pass
    finally:
        handle.remove()
        model.train(was_training)
    if not out:
        raise RuntimeError(f"layer {layer!r} was not called by {type(model).__name__}.forward")
    return out[0]


class FeatureCache(Callback):
    """The caching trainer as a `Callback` on `fit`: drops cache hits from every batch.

    layer: the conv layer whose maps give the feature vectors ('conv1' in the paper).
    compare: '>=' (a hit is at least as similar as the class's threshold) or '<=' (the paper's print).
    update: 'after' caches the vectors of the trained images computed after the optimiser step (the
        paper); 'before' reuses the vectors computed for the hit test, which costs nothing extra.

    Per epoch, `history` gets 'cache_hits' and 'images_trained'.
    """

    def __init__(self, num_classes: int, layer: str = "conv1", compare: str = ">=", update: str = "after"):
        if compare not in COMPARES:
            raise ValueError(f"compare must be one of {COMPARES}, not {compare!r}")
        if update not in UPDATES:
            raise ValueError(f"update must be one of {UPDATES}, not {update!r}")
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, not {num_classes}")
        self.num_classes, self.layer, self.compare, self.update_mode = num_classes, layer, compare, update
        self.reset()

    def reset(self) -> None:
        self.vectors: torch.Tensor | None = None     # (K, D) cached vector per class
        self.thresholds: torch.Tensor | None = None  # (K,) running mean cosine per class
        self.counts: torch.Tensor | None = None      # (K,) images cached per class
        self._pending: tuple[torch.Tensor, torch.Tensor] | None = None
        self._hits = self._trained = 0

    # -- the two rules --------------------------------------------------------------------------------
    def hits(self, v: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Boolean mask of the hits among vectors v (N, D) with labels y (N,)."""
        if self.vectors is None or not bool((self.counts > 0).any()):
            return torch.zeros(len(v), dtype=torch.bool, device=v.device)
        cos = F.normalize(v, dim=1) @ F.normalize(self.vectors, dim=1).T
        cos = cos.masked_fill(self.counts[None] == 0, -math.inf)  # classes not cached yet never win
        best_cos, best = cos.max(1)
        threshold = self.thresholds[best]
        passes = best_cos >= threshold if self.compare == ">=" else best_cos <= threshold
        return passes & (best == y)

    def update(self, v: torch.Tensor, y: torch.Tensor) -> None:
        """Cache vectors v (b, D) of labels y: per class c with b_c new images,
        V_c <- (n_c V_c + sum of the new vectors) / (n_c + b_c), then the threshold likewise with the cosines
        of the new vectors to the updated V_c, and n_c <- n_c + b_c."""
        if len(v) == 0:
            return
        if self.vectors is None:
            k = self.num_classes
            self.vectors = torch.zeros(k, v.shape[1], device=v.device, dtype=v.dtype)
            self.thresholds = torch.zeros(k, device=v.device, dtype=v.dtype)
            self.counts = torch.zeros(k, device=v.device, dtype=v.dtype)
        if int(y.max()) >= self.num_classes or int(y.min()) < 0:
            raise ValueError(f"labels must lie in [0, {self.num_classes}), got {int(y.min())}..{int(y.max())}")
        n = self.counts
        b = torch.bincount(y, minlength=self.num_classes).to(v.dtype)
        total = (n + b).clamp(min=1)[:, None]
        self.vectors = (n[:, None] * self.vectors + torch.zeros_like(self.vectors).index_add_(0, y, v)) / total
        cos = F.cosine_similarity(v, self.vectors[y], dim=1)
        self.thresholds = (n * self.thresholds + torch.zeros_like(n).index_add_(0, y, cos)) / total[:, 0]
        self.counts = n + b

    # -- the callback ---------------------------------------------------------------------------------
    def vectors_of(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return feature_vector(layer_output(model, self.layer, x))

    def on_train_start(self, model, optimizer) -> None:
        self.reset()

    def filter_batch(self, model, x, y, epoch):
        if self._pending is not None:  # the previous batch, now that its step is done
            px, py = self._pending
            self.update(self.vectors_of(model, px), py)
            self._pending = None
        v = self.vectors_of(model, x)
        keep = ~self.hits(v, y)
        x, y = x[keep], y[keep]
        n_kept = int(keep.sum())
        self._hits += len(keep) - n_kept
        self._trained += n_kept
        if self.update_mode == "before":
            self.update(v[keep], y)
        elif n_kept:
            self._pending = (x, y)
        return x, y

    def on_epoch_end(self, model, epoch, history) -> None:
        history.setdefault("cache_hits", []).append(self._hits)
        history.setdefault("images_trained", []).append(self._trained)
        self._hits = self._trained = 0


# -- experiments --------------------------------------------------------------------------------------
def make_base(data: Split, seed: int, **model_kwargs) -> BaseNet:
    """A freshly initialised base model sized for `data`, its weights drawn from `seed`."""
    seed_everything(seed)
    kwargs = dict(in_channels=data.x.shape[1], num_classes=len(data.classes) or int(data.y.max()) + 1,
                  image_size=data.x.shape[-1])
    kwargs.update(model_kwargs)
    return BaseNet(**kwargs)


def train_base(train: Split, test: Split, config: TrainConfig, *, caching: bool = False, layer: str = "conv1",
               compare: str = ">=", update: str = "after", model: nn.Module | None = None,
               **model_kwargs) -> TrainResult:
    """Train the base model (new, seeded by config.seed, unless `model` is given) with or without caching."""
    model = model if model is not None else make_base(train, config.seed, **model_kwargs)
    callbacks = []
    if caching:
        callbacks.append(FeatureCache(len(train.classes) or int(train.y.max()) + 1, layer, compare, update))
    return fit(model, train, test, config, callbacks=callbacks)


def time_to_accuracy(history: dict, target: float) -> float:
    """Training seconds (evaluation excluded) until the test accuracy first reaches `target`; NaN if never."""
    elapsed = np.cumsum(history["seconds"])
    for acc, t in zip(history["test_acc"], elapsed):
        if acc >= target:
            return float(t)
    return float("nan")


@dataclass
class SweepResult:
    """The runs of `compare_trainers`."""
    epochs: Any      # pandas DataFrame, one row per (trainer, batch_size, seed, epoch)
    final: Any       # pandas DataFrame, one row per run: final accuracies and timings
    histories: dict  # (trainer, batch_size, seed) -> the run's history


def compare_trainers(train: Split, test: Split, *, batch_sizes, seeds, epochs: int, lr: float,
                     optimizer: str = "sgd", momentum: float = 0.0, layer: str = "conv1", compare: str = ">=",
                     update: str = "after", device: str = "auto", target: float = 0.9) -> SweepResult:
    """Normal and caching training of the base model for every batch size and seed.

    Both trainers of a (batch size, seed) pair start from the same weights and see the same batch order.
    `final` holds the accuracy of the last epoch's model on the whole training set and the test set, the
    mean training seconds per epoch, and the training seconds to reach `target` test accuracy.
    """
    import pandas as pd
    dev = resolve_device(device)
    train, test = train.to(dev), test.to(dev)
    rows, finals, histories = [], [], {}
    for batch_size in batch_sizes:
        for seed in seeds:
            for caching in (False, True):
                cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer,
                                  momentum=momentum, seed=seed, device=device)
                result = train_base(train, test, cfg, caching=caching, layer=layer, compare=compare, update=update)
                h = result.history
                trainer = "caching" if caching else "normal"
                histories[trainer, batch_size, seed] = h
                for e in range(epochs):
                    rows.append(dict(trainer=trainer, batch_size=batch_size, seed=seed, epoch=e + 1,
                                     test_acc=h["test_acc"][e], seconds=h["seconds"][e],
                                     images_trained=h.get("images_trained", h["examples"])[e],
                                     cache_hits=h.get("cache_hits", [0] * epochs)[e]))
                _, train_acc = evaluate(result.model, train)
                finals.append(dict(trainer=trainer, batch_size=batch_size, seed=seed, train_acc=train_acc,
                                   test_acc=h["test_acc"][-1], seconds_per_epoch=float(np.mean(h["seconds"])),
                                   seconds_to_target=time_to_accuracy(h, target)))
    return SweepResult(pd.DataFrame(rows), pd.DataFrame(finals), histories)


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


def feature_map_experiment(train: Split, test: Split, base_config: TrainConfig, fm_config: TrainConfig, *,
                           layer: str = "conv1", after_activation: bool = True, maps: str | int = "all",
                           init: str = "base", epsilons=(0.15, 0.25), map_images: int | None = None) -> dict:
    """Train a base model on images, then a model of the same architecture on the base model's feature
    maps (initialised from the base model's weights, `init='base'`, as the paper's conclusion says, or
    afresh, `init='scratch'`); `map_images` limits the maps to those of the first images of `train`
    (each gives one example per map). Accuracies of both on train and test, and on FGSM images: the paper's
    protocol attacks with the base model's gradients (`fgsm_*`), and we add the feature-map model
    attacked through its own gradients (`fgsm_own_*`).
    """
    from lastlayer.robustness.attacks import adversarial_accuracy
    if init not in ("base", "scratch"):
        raise ValueError(f"init must be 'base' or 'scratch', not {init!r}")
    dev = resolve_device(base_config.device)
    train, test = train.to(dev), test.to(dev)
    base = train_base(train, test, base_config).model
    size = train.x.shape[-1]
    map_source = train if map_images is None else train.subset(torch.arange(min(map_images, len(train))))
    fm_train, scale = feature_map_split(base, map_source, layer=layer, after_activation=after_activation, maps=maps,
                                        size=size)
    fm_test, _ = feature_map_split(base, test, scale=scale, layer=layer, after_activation=after_activation,
                                   maps=maps, size=size)
    fm_model = copy.deepcopy(base) if init == "base" else make_base(train, fm_config.seed + 1)
    fm_model = fit(fm_model, fm_train, None, fm_config).model
    out = {"base_train": evaluate(base, train)[1], "base_test": evaluate(base, test)[1],
           "fm_train": evaluate(fm_model, fm_train)[1], "fm_test_maps": evaluate(fm_model, fm_test)[1],
           "fm_test_images": evaluate(fm_model, test)[1]}
    for eps in epsilons:
        out[f"fgsm_base_{eps:g}"] = adversarial_accuracy(base, test, eps)
        out[f"fgsm_fm_{eps:g}"] = adversarial_accuracy(fm_model, test, eps, source=base)
        out[f"fgsm_own_fm_{eps:g}"] = adversarial_accuracy(fm_model, test, eps)
    return out
