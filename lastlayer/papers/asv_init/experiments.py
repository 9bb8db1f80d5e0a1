"""The ASV paper's experiments as function calls: the variance picture at initialisation (`variance_picture`,
`gamma_check`), and training one network per (initialisation, optimizer, learning rate, seed) to report its
peak validation accuracy, as the paper's tables do (`run_grid`).

`train_with_init` is one run; `init_grid` runs a list of cells and returns a pandas table with one row per
run. A run whose loss becomes non-finite is not an error here: the paper's grids include learning rates too
large for some initialisations, so such a run keeps the peak accuracy it reached before (chance level if it
diverged in its first epoch) and is flagged `diverged`.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

from lastlayer.augment import RandomResizedCrop
from lastlayer.data import DATASETS, DataError, Split, load
from lastlayer.training.cache import cached_runs
from lastlayer.init import (DEFAULT_CAP, METHODS, initialize, method_stds, pool_gamma, predicted_gains, trace,
                            windowed_max_gamma)
from lastlayer.models import create_model
from lastlayer.signal import jumps, pool_gamma_mc, signal_variances
from lastlayer.training.trainer import Callback, NonFiniteLossError, TrainConfig, fit, seed_everything


ASV_FOLDERS = ("car", "food", "fungi")


def load_data(name: str, train_size: int | None = None, val_size: int | None = None, *, seed: int = 0,
              image_root=None, image_size: int = 224) -> tuple[Split, Split]:
    """(train, validation) for the ASV experiments, normalised as the official code does: (x - 0.5) / 0.5.

    'mnist' and 'fashion_mnist' come from `lastlayer.data` (their test split serves as validation set);
    any other name is an image folder `<image_root>/<name>/{train,val}` (image_root defaults to
    `$LASTLAYER_DATA/asv`). `train_size` / `val_size` draw random subsets (None keeps all), with a generator
    seeded by `seed`.
    """
    if name in DATASETS:
        train, val = load(name)
    else:
        folder = Path(image_root).expanduser() / name if image_root is not None else Path("asv") / name
        try:
            train, val = (load(f"folder:{folder}", s, size=image_size) for s in ("train", "val"))
        except DataError as e:
            raise DataError(f"{e}. The paper's Car, Food and Fungi subsets ({', '.join(ASV_FOLDERS)}) are not "
                            f"distributed with this project: build them from the file lists of the official code "
                            f"(hecwitane/ASV-pub, dataset/<name>/files.txt) as <root>/<name>/train/<class>/*.jpg "
                            f"and <root>/<name>/val/<class>/*.jpg, with <root> = $LASTLAYER_DATA/asv or the "
                            f"`image_root` parameter.") from None
    g = torch.Generator().manual_seed(seed)
    train, val = train.sample(train_size, g), val.sample(val_size, g)
    return train.standardize((0.5, 0.5)), val.standardize((0.5, 0.5))


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
                    make_callbacks: Callable[[], tuple[Callback, ...]] = tuple) -> InitRun:
    """Seed with `config.seed`, build the model, initialise it by `method` (ASV from the shape of one
    training example), train it with fresh `make_callbacks()`, and return its peak and final validation
    accuracy."""
    seed_everything(config.seed)
    callbacks = make_callbacks()
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
    Every run goes through the run cache (so `make_model` and `callbacks` must be importable functions or
    `functools.partial`s of them).
    """
    import pandas as pd
    calls = [functools.partial(train_with_init, make_model, method, train, val,
                               replace(base, optimizer=optimizer, lr=float(lr), seed=int(seed)), cap=cap,
                               make_callbacks=callbacks)
             for method, optimizer, lr in cells for seed in seeds]
    return pd.DataFrame([r.__dict__ for r in cached_runs(calls)])


# ---------------------------------------------------------------- the variance picture at initialisation

def _max_pool_windows(model: nn.Module, input_shape) -> list[tuple]:
    """(kernel, stride, padding, input H x W) of every nn.MaxPool2d, in forward order, from one small pass."""
    found, handles = [], []
    for m in model.modules():
        if isinstance(m, nn.MaxPool2d):
            handles.append(m.register_forward_hook(
                lambda mod, args, out: found.append((mod.kernel_size, mod.stride, mod.padding,
                                                     tuple(args[0].shape[-2:])))))
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device=next(model.parameters()).device))
    finally:
        for h in handles:
            h.remove()
    return found


def variance_picture(name: str, make_x: Callable[[int], torch.Tensor], input_shape, num_classes: int, *,
                     draws: int, seed: int = 0, cap: float | None = DEFAULT_CAP, methods=METHODS,
                     device="cpu"):
    """The poster's variance picture of network `name` at initialisation, for every method and weight draw.

    Draw d seeds torch with seed + d before initialising (so every method scales the same standard-normal
    weights) and feeds `make_x(seed + d)`. Returns two tables:
    - curves: one row per (method, draw, layer l = 1..L): log2 of the forward and backward variances;
    - pooled: one row per (method, draw, pooled layer): the measured log2 jumps of the variance across the
      layer (`lastlayer.signal.jumps`), the jumps the formulas predict for the method's stds (with the paper's
      γ, and for max pooling also with γ counted over the actual overlapping windows), and the measured τ
      and γ beside the formulas'.
    """
    import numpy as np
    import pandas as pd
    net = create_model(name, num_classes=num_classes, in_channels=input_shape[0]).to(device)
    layers = trace(net, input_shape)
    windows = iter(_max_pool_windows(net, input_shape))
    pooled = [i for i, l in enumerate(layers) if l.pool]
    overlap = {i: windowed_max_gamma(w[3], *w[:3]) for i, w in
               ((i, next(windows)) for i in pooled if layers[i].pool == "max")}
    curves, rows = [], []
    for method in methods:
        fwd_pred, bwd_pred = predicted_gains(layers, method_stds(layers, method, cap))
        for d in range(draws):
            torch.manual_seed(seed + d)
            initialize(net, method, input_shape, cap=cap)
            prof = signal_variances(net, make_x(seed + d), generator=torch.Generator().manual_seed(seed + d))
            curves += [dict(network=name, method=method, draw=d, l=l + 1, forward=math.log2(f), backward=math.log2(b))
                       for l, (f, b) in enumerate(zip(prof.forward, prof.backward))]
            fj, bj = jumps(prof.forward, pooled, "forward"), jumps(prof.backward, pooled, "backward")
            for i, f, b in zip(pooled, fj, bj):
                layer = layers[i]
                g_overlap = overlap.get(i, layer.gamma)
                rows.append(dict(network=name, method=method, draw=d, layer=i + 1, pool=f"{layer.pool} {layer.T}",
                                 fwd_jump=f, bwd_jump=b, fwd_pred=float(np.log2(fwd_pred[i + 1])),
                                 bwd_pred=float(np.log2(bwd_pred[i])),
                                 bwd_pred_windows=float(np.log2(bwd_pred[i] * g_overlap / layer.gamma)),
                                 tau=prof.tau[i], tau_formula=layer.tau, gamma=prof.gamma[i],
                                 gamma_formula=layer.gamma, gamma_windows=g_overlap))
    return pd.DataFrame(curves), pd.DataFrame(rows)


def gamma_check(cases=((2, 2, 0), (3, 3, 0), (3, 2, 1), (2, 1, 0)), *, size: int = 28, repeats: int = 16,
                seed: int = 0):
    """γ of ReLU + max pooling measured by Monte Carlo against the paper's (1 - 2^-T)/T and the count over
    the actual windows (`windowed_max_gamma`), for (kernel, stride, padding) cases; one row per case."""
    import numpy as np
    import pandas as pd
    import torch.nn.functional as F
    g = torch.Generator().manual_seed(seed)
    rows = []
    for k, s, p in cases:
        mc = np.array(pool_gamma_mc(lambda v: F.max_pool2d(v, k, s, p), size=size, repeats=repeats, generator=g))
        rows.append(dict(kernel=k, stride=s, padding=p, measured=mc.mean(), se=mc.std(ddof=1) / np.sqrt(len(mc)),
                         paper=pool_gamma("max", k * k), windows=windowed_max_gamma(size, k, s, p)))
    return pd.DataFrame(rows)


def run_grid(model_name: str, data: dict[str, tuple[Split, Split]], cells: list[tuple[str, str, float]],
             seeds: list[int], base: TrainConfig, *, table: str, cap: float | None = DEFAULT_CAP,
             callbacks: Callable[[], tuple[Callback, ...]] = tuple):
    """`init_grid` of `model_name` on every dataset of `data`; one row per trained model, tagged with the
    table it reproduces, the dataset and the network."""
    import pandas as pd
    out = []
    for dataset, (train, val) in data.items():
        make = functools.partial(create_model, model_name, num_classes=len(train.classes),
                                 in_channels=int(train.x.shape[1]))
        runs = init_grid(make, train, val, base, cells, seeds, cap=cap, callbacks=callbacks)
        out.append(runs.assign(table=table, dataset=dataset, model=model_name))
    return pd.concat(out, ignore_index=True)


def picture_numbers(pooled) -> dict[str, float]:
    """The numbers the notebook's text quotes from `variance_picture`'s pooled table: γ at the first max pool
    (measured, over the windows, the paper's) with ASV backward's jump there, and τ at the last average pool."""
    import numpy as np
    first = lambda pool, method: pooled[pooled.pool.str.startswith(pool) & (pooled.method == method)]
    mx, avg = first("max", "asv_backward"), first("avg", "asv_forward")
    mx, avg = mx[mx.layer == mx.layer.min()], avg[avg.layer == avg.layer.max()]
    return {"gamma-stem": mx.gamma.mean(), "gamma-windows": mx.gamma_windows.iloc[0],
            "gamma-paper": mx.gamma_formula.iloc[0], "gamma-ratio": mx.gamma.mean() / mx.gamma_formula.iloc[0],
            "jump-stem": mx.bwd_jump.mean(), "jump-stem-windows": mx.bwd_pred_windows.iloc[0],
            "tau-global": avg.tau.mean(), "tau-formula": avg.tau_formula.iloc[0],
            "tau-log2": float(np.log2(avg.tau / avg.tau_formula).mean())}


def augmentation(augment: bool, seed: int = 0) -> Callable[[], tuple[Callback, ...]]:
    """Fresh training callbacks per run: random resized crops when `augment` (the paper's, for image folders)."""
    return functools.partial(_crops, seed) if augment else tuple


def _crops(seed: int) -> tuple[Callback, ...]:
    return (RandomResizedCrop(seed=seed),)
