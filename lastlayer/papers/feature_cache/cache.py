"""The feature-map caching trainer of Anand, Bhupathiraju and Chandrala (2022), and its random-drop control.

Caching: before each training step, every image of the batch goes through the model up to one conv layer
(the first, in the paper). Its feature vector interleaves, for every map F_i (P x Q) of that layer,
mu_i = sum|F_i| / PQ and sigma_i = sqrt(sum(|F_i| - mu_i)^2) / PQ (Park & Kim 2019). Each class keeps one
cached vector and one threshold, both running means over the images cached so far. An image is a *hit*
when the cosine to the most similar cached vector passes that class's threshold and that class is its
true label; hits are dropped from the batch, misses are trained on and then cached.

The paper prints the hit test as "cosine <= threshold"; a hit is more plausibly "cosine >= threshold"
(the image is at least as close to its class as the cached images were). `compare` chooses. Without the
threshold (`threshold=False`), a hit is any image whose most similar cached class is its true label: the
cache the paper says gives "mostly all" hits when updated at the end of the loop (its Figures 5-6).

Both run through the plain trainer's `fit` as `Callback`s (`filter_batch` drops images). The caching trainer
is kept lean, so that timing it times the method: when the layer takes the images themselves (the first conv
layer), the layer runs once on the whole batch, with autograd on; the training forward pass then reuses the
rows of the images it keeps instead of running the layer again. The paper's update rule ('after') needs the
trained images' vectors under the weights after the step: the one extra pass of the layer it costs is run on
those images only, without autograd. The hit test is one matrix product; nothing loops over images in Python.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from lastlayer.training.trainer import Callback

COMPARES = (">=", "<=")
UPDATES = ("after", "before")


def feature_vector(maps: torch.Tensor) -> torch.Tensor:
    """(N, C, P, Q) feature maps -> (N, 2C) vectors (mu_0, sigma_0, mu_1, sigma_1, ...).

    sigma is the paper's (and Park & Kim's): the root of the summed squares divided by PQ, not by sqrt(PQ).
    Two passes over flattened maps (mean, then the norm of the deviations): several times faster on a CPU
    than torch.var_mean over two dimensions, and as exact.
    """
    if maps.dim() != 4:
        raise ValueError(f"feature maps must be (N, C, P, Q), got shape {tuple(maps.shape)}")
    a = maps.flatten(2).abs()
    mu = a.mean(-1)
    sigma = torch.linalg.vector_norm(a - mu[..., None], dim=-1) / a.shape[-1]
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


def takes_images(model: nn.Module, layer: str, x: torch.Tensor) -> bool:
    """Whether `layer` is applied to the model's input itself (so that `layer(x)` is its output)."""
    module, seen = get_layer(model, layer), []

    def hook(_module, inputs):
        seen.append(inputs[0] is x)
        raise _Stop

    handle = module.register_forward_pre_hook(hook)
    try:
        with torch.no_grad():
            model(x)
    except _Stop:
        pass
    finally:
        handle.remove()
    return bool(seen and seen[0])


class FeatureCache(Callback):
    """The caching trainer as a `Callback` on `fit`: drops cache hits from every batch.

    layer: the conv layer whose maps give the feature vectors ('conv1' in the paper).
    compare: '>=' (a hit is at least as similar as the class's threshold) or '<=' (the paper's print).
    update: 'after' caches the vectors of the trained images computed after the optimiser step (the
        paper); 'before' reuses the vectors computed for the hit test, which costs nothing extra.
    reuse: let the training forward pass reuse the layer's output of the hit test (first layer only).
    threshold: a hit must pass its class's threshold (the paper's fix); False: the nearest class alone decides.

    Per epoch, `history` gets 'cache_hits' and 'images_trained'.
    """

    def __init__(self, num_classes: int, layer: str = "conv1", compare: str = ">=", update: str = "after",
                 reuse: bool = True, threshold: bool = True):
        if compare not in COMPARES:
            raise ValueError(f"compare must be one of {COMPARES}, not {compare!r}")
        if update not in UPDATES:
            raise ValueError(f"update must be one of {UPDATES}, not {update!r}")
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, not {num_classes}")
        self.num_classes, self.layer, self.compare, self.update_mode = num_classes, layer, compare, update
        self.reuse, self.use_threshold = reuse, threshold
        self.reset()

    def reset(self) -> None:
        self.vectors: torch.Tensor | None = None     # (K, D) cached vector per class
        self.thresholds: torch.Tensor | None = None  # (K,) running mean cosine per class
        self.counts: torch.Tensor | None = None      # (K,) images cached per class
        self._pending: tuple[torch.Tensor, torch.Tensor] | None = None
        self._direct: bool | None = None             # does the layer take the images? (probed once)
        self._hits = self._trained = 0

    # -- the two rules --------------------------------------------------------------------------------
    def hits(self, v: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Boolean mask of the hits among vectors v (N, D) with labels y (N,)."""
        if self.vectors is None:
            return torch.zeros(len(v), dtype=torch.bool, device=v.device)
        cos = F.normalize(v, dim=1) @ F.normalize(self.vectors, dim=1).T
        cached = self.counts > 0
        cos = cos.masked_fill(~cached[None], -math.inf)  # classes not cached yet never win
        best_cos, best = cos.max(1)
        if not self.use_threshold:
            return (best == y) & cached[best]
        threshold = self.thresholds[best]
        passes = best_cos >= threshold if self.compare == ">=" else best_cos <= threshold
        return passes & (best == y) & cached[best]

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
        n = self.counts
        b = torch.bincount(y, minlength=self.num_classes).to(v.dtype)
        if len(b) > self.num_classes:
            raise ValueError(f"labels must lie in [0, {self.num_classes}), got up to {len(b) - 1}")
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
        if self._direct is None:
            self._direct = self.reuse and takes_images(model, self.layer, x[:1])
        module = get_layer(model, self.layer)
        if self._pending is not None:  # the previous batch's trained images, now that its step is done
            px, py = self._pending
            with torch.no_grad():
                self.update(feature_vector(module(px)) if self._direct else self.vectors_of(model, px), py)
            self._pending = None
        if self._direct:  # one pass of the layer, with autograd: the training forward reuses its rows
            maps = module(x)
            v = feature_vector(maps.detach())
        else:
            maps, v = None, self.vectors_of(model, x)
        keep = ~self.hits(v, y)
        x, y = x[keep], y[keep]
        n_kept = len(x)
        self._hits += len(keep) - n_kept
        self._trained += n_kept
        if self.update_mode == "before":
            self.update(v[keep], y)
        elif n_kept:
            self._pending = (x, y)
        if maps is not None and n_kept:
            _replay_once(module, x, maps[keep])
        return x, y

    def on_epoch_end(self, model, epoch, history) -> None:
        module = get_layer(model, self.layer)
        module.__dict__.pop("forward", None)  # a replay nobody consumed
        history.setdefault("cache_hits", []).append(self._hits)
        history.setdefault("images_trained", []).append(self._trained)
        self._hits = self._trained = 0


def _replay_once(module: nn.Module, x: torch.Tensor, out: torch.Tensor) -> None:
    """Make `module`'s next call on exactly the tensor `x` return `out` (computed from x with the same
    weights) instead of computing it again; any other call computes as usual. Removed after one call."""
    def forward(inp, *args, **kwargs):
        del module.forward  # one shot: the instance attribute goes, the class's forward is back
        return out if inp is x else module.forward(inp, *args, **kwargs)
    module.forward = forward


class RandomDrop(Callback):
    """The control every data-pruning method needs: drop a share of each batch at random, not by similarity.

    share: a float, or one share per epoch (e.g. the caching trainer's hit share of each epoch, so that both
    train on the same number of images). Each batch of b images drops round(share * b) of them, chosen afresh
    every epoch by a generator seeded with `seed`. Records 'cache_hits' (dropped) and 'images_trained'.
    """

    def __init__(self, share, seed: int = 0):
        shares = [share] if isinstance(share, (int, float)) else list(share)
        if not shares or not all(0 <= s < 1 for s in shares):
            raise ValueError(f"every share must lie in [0, 1), got {share!r}")
        self.shares, self.seed = shares, seed

    def on_train_start(self, model, optimizer) -> None:
        self.generator = torch.Generator().manual_seed(self.seed)
        self._dropped = self._trained = 0

    def filter_batch(self, model, x, y, epoch):
        share = self.shares[min(epoch, len(self.shares) - 1)]
        drop = round(share * len(x))
        keep = torch.randperm(len(x), generator=self.generator)[drop:].sort().values.to(x.device)
        self._dropped += drop
        self._trained += len(x) - drop
        return x[keep], y[keep]

    def on_epoch_end(self, model, epoch, history) -> None:
        history.setdefault("cache_hits", []).append(self._dropped)
        history.setdefault("images_trained", []).append(self._trained)
        self._dropped = self._trained = 0
