"""Study 2: does ASV help the other papers' networks?

asv_init's initialisers (Xavier, Kaiming forward and backward, ASV forward and backward) on digit_pairs' pair and
siamese networks (without batch norm, which would undo any initialisation's scale), geometry's CNN and
feature_cache's base CNN: the variance picture at initialisation, as asv_init draws it (`jump_picture`: the
measured jumps of the forward and backward variance across every pooled layer, from the core's `signal_variances`;
asv_init's own `variance_picture` builds its network from the input's channels, which the pair networks read as
two digits of one channel each), and asv_init's own grid of training runs
(`init_grid`, whose runs asv_init's code keys in the run cache): Adam at every learning rate on selection seeds, then
each initialiser at its best rate on evaluation seeds of their own, the peak validation accuracy after a short
schedule. The pair networks learn digit_pairs' target (is the first digit <= the second) from its pairs; the other
two learn MNIST digits, normalised as asv_init normalises them ((x - 0.5) / 0.5, the input its ASV assumes).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import torch

from lastlayer.data import Split
from lastlayer.init import METHODS, initialize, trace
from lastlayer.models import create_model
from lastlayer.papers.asv_init.experiments import init_grid, load_data
from lastlayer.signal import jumps, signal_variances
from lastlayer.papers.digit_pairs.rounds import digit_pairs
from lastlayer.training.trainer import TrainConfig

# network -> (its data, its registry keywords): the pair networks without batch norm
NETWORKS = {"pairnet": ("pairs", {"batch_norm": False}), "siamese": ("pairs", {"batch_norm": False}),
            "embed2d_cnn": ("digits", {}), "basenet": ("digits", {})}
NETWORK_LABELS = {"pairnet": "digit_pairs' pair network", "siamese": "digit_pairs' siamese network",
                  "embed2d_cnn": "geometry's CNN (2-D embedding)", "basenet": "feature_cache's base CNN"}


def network_data(name: str, n_train: int, n_val: int, seed: int) -> tuple[Split, Split]:
    """(train, validation) for `name`: digit_pairs' pairs (standardised as its models do; the label is the pair's
    target), or MNIST digits normalised as asv_init does."""
    if name not in NETWORKS:
        raise ValueError(f"unknown network {name!r}; choose from {', '.join(NETWORKS)}")
    if NETWORKS[name][0] == "digits":
        return load_data("mnist", n_train, n_val, seed=seed)
    sets = digit_pairs(n_train, seed, n_test=n_val).normalized()
    return tuple(Split(s.x, s.y[:, 0].contiguous(), s.classes) for s in (sets.train, sets.test))


def maker(name: str, data: Split):
    """The network's constructor for asv_init's grid (an importable partial, so the run cache can key it)."""
    in_channels = 1 if NETWORKS[name][0] == "pairs" else int(data.x.shape[1])
    return partial(create_model, name, num_classes=len(data.classes), in_channels=in_channels, **NETWORKS[name][1])


def pooled_layers(name: str, data: Split) -> int:
    """How many of the network's weight layers are followed by pooling (asv_init's trace)."""
    return sum(bool(layer.pool) for layer in trace(maker(name, data)(), tuple(data.x.shape[1:])))


def batch_of(x: torch.Tensor, batch: int, seed: int) -> torch.Tensor:
    """`batch` training inputs drawn with `seed`: the input of one draw of the variance picture."""
    return x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:batch]]


def jump_picture(name: str, data: Split, *, draws: int, batch: int, seed: int = 0, cap: float | None = 3.0,
                 methods=METHODS):
    """For every method and weight draw d (torch seeded with seed + d before initialising, so every method scales
    the same draws; the input `batch_of` the training inputs with seed + d): the per-layer log2 forward and backward
    variances (a table) and one `JumpRow` per pooled layer."""
    import pandas as pd
    net, shape = maker(name, data)(), tuple(data.x.shape[1:])
    layers = trace(net, shape)
    pooled = [i for i, layer in enumerate(layers) if layer.pool]
    curves, rows = [], []
    for method in methods:
        for d in range(draws):
            torch.manual_seed(seed + d)
            initialize(net, method, shape, cap=cap)
            prof = signal_variances(net, batch_of(data.x, batch, seed + d),
                                    generator=torch.Generator().manual_seed(seed + d))
            curves += [dict(network=name, method=method, draw=d, l=l + 1, forward=float(np.log2(f)),
                            backward=float(np.log2(b))) for l, (f, b) in enumerate(zip(prof.forward, prof.backward))]
            fj, bj = jumps(prof.forward, pooled, "forward"), jumps(prof.backward, pooled, "backward")
            rows += [JumpRow(name, method, d, seed + d, i + 1, f"{layers[i].pool} {layers[i].T}", f, b)
                     for i, f, b in zip(pooled, fj, bj)]
    return pd.DataFrame(curves), rows


@dataclass(frozen=True)
class InitRow:
    """One trained network of study 2 (one row of the results' `runs`)."""
    network: str
    role: str                     # 'select' (chooses each initialiser's learning rate) or 'eval' (decides)
    method: str                   # one of lastlayer.init.METHODS
    lr: float
    seed: int
    peak_acc: float               # best validation accuracy over the epochs (asv_init's measure)
    diverged: bool
    pooled: int                   # weight layers of the network followed by pooling
    experiment: str = "initialisers"


@dataclass(frozen=True)
class JumpRow:
    """One (network, method, weight draw, pooled layer) of the variance picture: the measured log2 jumps of the
    forward and backward variance across the layer (0: kept)."""
    network: str
    method: str
    draw: int
    seed: int                     # what seeded the draw's weights and input batch (draw_seed + draw)
    layer: int
    pool: str
    fwd_jump: float
    bwd_jump: float
    experiment: str = "variance picture"


def best_rates(rows) -> dict[tuple[str, str], float]:
    """{(network, method): the learning rate with the best mean peak accuracy on the selection seeds}."""
    acc: dict = {}
    for r in rows:
        if r.role == "select":
            acc.setdefault((r.network, r.method), {}).setdefault(r.lr, []).append(r.peak_acc)
    return {k: max(v, key=lambda lr: (np.mean(v[lr]), -lr)) for k, v in acc.items()}


def initialiser_study(networks, lrs, select_seeds, seeds, *, n_train: int, n_val: int, epochs: int, batch_size: int,
                      draws: int, signal_batch: int, data_seed: int = 0, draw_seed: int = 0,
                      cap: float | None = 3.0, device: str = "cpu") -> tuple[list, object]:
    """The variance picture and the training grid of every network (see the module's text). Returns the rows
    (`JumpRow`s, then `InitRow`s) and the picture's per-layer curves (a table)."""
    import pandas as pd
    base = TrainConfig(epochs=epochs, batch_size=batch_size, device=device)
    rows, curves, data = [], [], {}
    for name in networks:
        train, val = data[name] = network_data(name, n_train, n_val, data_seed)
        c, jumped = jump_picture(name, train, draws=draws, batch=signal_batch, seed=draw_seed, cap=cap)
        curves.append(c)
        rows += jumped
    grid = []
    for role, these, cells in (("select", select_seeds, lambda n: [(m, "adam", lr) for m in METHODS for lr in lrs]),
                               ("eval", seeds, None)):
        for name in networks:
            train, val = data[name]
            pooled = pooled_layers(name, train)
            chosen = best_rates(grid)
            cell_list = cells(name) if cells else [(m, "adam", chosen[name, m]) for m in METHODS]
            grid += [InitRow(name, role, r.method, r.lr, r.seed, r.peak_acc, r.diverged, pooled)
                     for r in init_grid(maker(name, train), train, val, base, cell_list, list(these), cap=cap)]
    return rows + grid, pd.concat(curves, ignore_index=True) if curves else pd.DataFrame()


__all__ = ["InitRow", "JumpRow", "NETWORKS", "NETWORK_LABELS", "batch_of", "best_rates", "initialiser_study",
           "jump_picture", "maker", "network_data", "pooled_layers"]
