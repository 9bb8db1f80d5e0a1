"""The ASV paper's experiments: the variance picture at initialisation (`variance_picture`, `gamma_check`),
and training one network per (initialisation, optimizer, learning rate, seed) to report its peak validation
accuracy, as the paper's tables do (`run_grid`: Table 1, Table 2 on its own seeds, Table 3). `run(Params)` runs
them all for the notebook.

`train_with_init` is one run; `init_grid` runs a list of cells, one `InitRun` per run; `run_grid` tags them as
`GridRow`s. A run whose loss becomes non-finite is not an error here: the paper's grids include learning rates too
large for some initialisations, so such a run keeps the peak accuracy it reached before (chance level if it
diverged in its first epoch) and is flagged `diverged`.
"""
from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import torch
import torch.nn as nn

from lastlayer.augment import RandomResizedCrop
from lastlayer.data import DATASETS, DataError, Split, load
from lastlayer.training.cache import cached_runs
from lastlayer.init import (DEFAULT_CAP, METHODS, initialize, method_stds, pool_gamma, predicted_gains, trace,
                            windowed_max_gamma)
from lastlayer.models import create_model
from lastlayer.signal import jumps, pool_gamma_mc, signal_variances
from lastlayer.training.trainer import Callback, NonFiniteLossError, TrainConfig, fit, resolve_device, seed_everything

if TYPE_CHECKING:
    import pandas as pd

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
    """One trained model of a grid cell (what the run cache stores)."""
    method: str
    optimizer: str
    lr: float
    seed: int
    peak_acc: float      # best validation accuracy over the epochs (the paper's measure)
    final_acc: float     # validation accuracy after the last completed epoch
    epochs_done: int
    diverged: bool


@dataclass(frozen=True)
class GridRow:
    """One trained model of Table 1, 2 or 3: its `InitRun`, tagged with the table, dataset and network."""
    experiment: str      # "table1", "table2" or "table3"
    dataset: str
    model: str
    method: str
    optimizer: str
    lr: float
    seed: int
    peak_acc: float
    final_acc: float
    epochs_done: int
    diverged: bool


@dataclass(frozen=True)
class PooledRow:
    """One (method, weight draw, pooled layer) of a variance picture: the log2 jumps of the forward and backward
    variance across the layer, the formulas' predictions, and τ, γ measured beside the formulas'."""
    experiment: str      # "variance picture"
    network: str
    method: str
    draw: int
    layer: int           # 1-based index of the pooled weight layer
    pool: str            # "max 9", "avg 49": the pooling and its T
    fwd_jump: float
    bwd_jump: float
    fwd_pred: float
    bwd_pred: float
    bwd_pred_windows: float  # with γ counted over the actual (overlapping) max-pool windows
    tau: float
    tau_formula: float
    gamma: float
    gamma_formula: float
    gamma_windows: float


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
              callbacks: Callable[[], tuple[Callback, ...]] = tuple) -> list[InitRun]:
    """Run every (method, optimizer, lr) cell with every seed; one `InitRun` per run, cells then seeds.

    Runs of the same seed share the batch order and the generator state before initialisation, so cells
    differ by the method, optimizer or learning rate only. `callbacks()` makes fresh callbacks per run.
    Every run goes through the run cache (so `make_model` and `callbacks` must be importable functions or
    `functools.partial`s of them).
    """
    calls = [functools.partial(train_with_init, make_model, method, train, val,
                               replace(base, optimizer=optimizer, lr=float(lr), seed=int(seed)), cap=cap,
                               make_callbacks=callbacks)
             for method, optimizer, lr in cells for seed in seeds]
    return cached_runs(calls)


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
                     device="cpu", experiment: str = "variance picture"):
    """The poster's variance picture of network `name` at initialisation, for every method and weight draw.

    Draw d seeds torch with seed + d before initialising (so every method scales the same standard-normal
    weights) and feeds `make_x(seed + d)`. Returns
    - curves: a table with one row per (method, draw, layer l = 1..L): log2 of the forward and backward variances;
    - pooled: one `PooledRow` per (method, draw, pooled layer): the measured log2 jumps of the variance across
      the layer (`lastlayer.signal.jumps`), the jumps the formulas predict for the method's stds (with the
      paper's γ, and for max pooling also with γ counted over the actual overlapping windows), and the
      measured τ and γ beside the formulas'.
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
                rows.append(PooledRow(experiment, name, method, d, i + 1, f"{layer.pool} {layer.T}",
                                      fwd_jump=f, bwd_jump=b, fwd_pred=float(np.log2(fwd_pred[i + 1])),
                                      bwd_pred=float(np.log2(bwd_pred[i])),
                                      bwd_pred_windows=float(np.log2(bwd_pred[i] * g_overlap / layer.gamma)),
                                      tau=prof.tau[i], tau_formula=layer.tau, gamma=prof.gamma[i],
                                      gamma_formula=layer.gamma, gamma_windows=g_overlap))
    return pd.DataFrame(curves), rows


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
             callbacks: Callable[[], tuple[Callback, ...]] = tuple) -> list[GridRow]:
    """`init_grid` of `model_name` on every dataset of `data`; one `GridRow` per trained model, tagged with the
    table it reproduces, the dataset and the network."""
    out = []
    for dataset, (train, val) in data.items():
        make = functools.partial(create_model, model_name, num_classes=len(train.classes),
                                 in_channels=int(train.x.shape[1]))
        out += [GridRow(table, dataset, model_name, **asdict(r))
                for r in init_grid(make, train, val, base, cells, seeds, cap=cap, callbacks=callbacks)]
    return out


def augmentation(augment: bool, seed: int = 0) -> Callable[[], tuple[Callback, ...]]:
    """Fresh training callbacks per run: random resized crops when `augment` (the paper's, for image folders)."""
    return functools.partial(_crops, seed) if augment else tuple


def _crops(seed: int) -> tuple[Callback, ...]:
    return (RandomResizedCrop(seed=seed),)


# ---------------------------------------------------------------- the notebook's one call

@dataclass(frozen=True)
class Params:
    """The parameters cell of notebooks/asv_init.ipynb, name for name (its values are the defaults; the
    profiles of paper.yml override them)."""
    seed: int
    device: str
    cap: float | None
    signal_model: str
    signal_size: int
    signal_batch: int
    signal_seeds: int
    signal_data_batch: int
    datasets: list[str]
    table3_dataset: str
    image_root: str | None
    image_size: int
    augment: bool
    train_size: int | None
    val_size: int | None
    model: str
    table3_model: str
    epochs: int
    batch_size: int
    lrs: list[float]
    optimizers: list[str]
    optimizer_lrs: list[float]
    n_seeds: int
    table2_seeds: int
    threads: int  # applied by `nb.start`


@dataclass
class Runs:
    """What `run` measured. `rows` (F34's variance picture, then Tables 1, 2 and 3) is what `claims.decide` reads
    and the results file keeps; the rest feeds the notebook's figures and tables."""
    rows: list[PooledRow | GridRow]  # the variance picture, then Table 1, Table 2, Table 3
    f34_curves: pd.DataFrame  # per-layer log2 variances of the variance picture
    cpu_curves: pd.DataFrame  # the same picture of the Table 1 network fed real training images
    cpu_pooled: pd.DataFrame  # its pooled layers, one PooledRow per row
    f34_stds: pd.DataFrame    # `lastlayer.init.std_table` of F34 (10 classes, 224x224)
    gamma: pd.DataFrame       # `gamma_check`: γ of overlapping max-pool windows by Monte Carlo

    def table(self, experiment: str) -> pd.DataFrame:
        """The rows of one experiment ('variance picture', 'table1', 'table2', 'table3') as a pandas table."""
        import pandas as pd
        return pd.DataFrame([asdict(r) for r in self.rows if r.experiment == experiment])

    @property
    def f34_pooled(self) -> pd.DataFrame:
        return self.table("variance picture")

    @property
    def table1(self) -> pd.DataFrame:
        return self.table("table1")

    @property
    def table2(self) -> pd.DataFrame:
        return self.table("table2")

    @property
    def table3(self) -> pd.DataFrame:
        return self.table("table3")

    @property
    def metrics(self) -> dict[str, int]:
        """How many models Tables 1, 2 and 3 trained, and how many of them diverged."""
        grid = [r for r in self.rows if isinstance(r, GridRow)]
        return {"runs": len(grid), "diverged_runs": sum(r.diverged for r in grid)}


def _normal_images(batch: int, size: int, seed: int) -> torch.Tensor:
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _image_subset(x: torch.Tensor, batch: int, seed: int) -> torch.Tensor:
    return x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:batch]]


# Table 2's seeds start this far above `seed`: its claim is decided on runs of its own, never on Table 3's Adam
# runs of the same network, data and learning rate, which share the run cache whenever they share a seed
TABLE2_SEED_OFFSET = 1000


def experiment_seeds(p: Params) -> dict[str, list[int]]:
    """{experiment: the seeds (weight draws, for the variance pictures) it uses}. Tables 1 and 3 share the
    `n_seeds` seeds; Table 2's `table2_seeds` are disjoint from every other experiment's."""
    if max(p.n_seeds, p.signal_seeds) > TABLE2_SEED_OFFSET:
        raise ValueError(f"n_seeds and signal_seeds must be at most {TABLE2_SEED_OFFSET}, or Table 2's seeds "
                         f"(from seed + {TABLE2_SEED_OFFSET}) would overlap theirs")
    seeds = [p.seed + i for i in range(p.n_seeds)]
    draws = [p.seed + d for d in range(p.signal_seeds)]
    return {"variance picture": draws, "table1": seeds, "table2":
            [p.seed + TABLE2_SEED_OFFSET + i for i in range(p.table2_seeds)], "table3": seeds,
            "variance picture, Table 1 network": draws}


def run(params: Params) -> Runs:
    """Every experiment of the notebook, in its order: F34's variance picture on standard-normal images, Table 1
    (Adam over `lrs` on `datasets`), Table 2 (Adam over `lrs` with `table3_model` on `table3_dataset`, on its own
    `table2_seeds` seeds; none when 0), Table 3 (each optimizer at its learning rate on `table3_dataset`), F34's
    std table, the γ check, and the variance picture of the Table 1 network on real images."""
    import pandas as pd
    from lastlayer.init import std_table
    p = params
    device = str(resolve_device(p.device))
    seeds = experiment_seeds(p)
    f34_curves, f34_pooled = variance_picture(
        p.signal_model, functools.partial(_normal_images, p.signal_batch, p.signal_size),
        (3, p.signal_size, p.signal_size), 10, draws=p.signal_seeds, seed=p.seed, cap=p.cap, device=device)
    data = {name: load_data(name, p.train_size, p.val_size, seed=p.seed, image_root=p.image_root,
                            image_size=p.image_size)
            for name in dict.fromkeys([*p.datasets, p.table3_dataset])}
    callbacks = augmentation(p.augment, p.seed)
    base = TrainConfig(epochs=p.epochs, batch_size=p.batch_size, device=device, seed=p.seed)
    adam_grid = [(m, "adam", lr) for m in METHODS for lr in p.lrs]
    table1 = run_grid(p.model, {d: data[d] for d in p.datasets}, adam_grid, seeds["table1"], base, table="table1",
                      cap=p.cap, callbacks=callbacks)
    table2 = run_grid(p.table3_model, {p.table3_dataset: data[p.table3_dataset]}, adam_grid, seeds["table2"], base,
                      table="table2", cap=p.cap, callbacks=callbacks)
    table3 = run_grid(p.table3_model, {p.table3_dataset: data[p.table3_dataset]},
                      [(m, o, lr) for o, lr in zip(p.optimizers, p.optimizer_lrs) for m in METHODS],
                      seeds["table3"], base, table="table3", cap=p.cap, callbacks=callbacks)
    f34_stds = std_table(create_model("f34", num_classes=10, in_channels=3), (3, 224, 224), cap=p.cap)
    gamma = gamma_check(seed=p.seed)
    train0 = data[p.datasets[0]][0]
    cpu_curves, cpu_pooled = variance_picture(
        p.model, functools.partial(_image_subset, train0.x, p.signal_data_batch), tuple(train0.x.shape[1:]),
        len(train0.classes), draws=p.signal_seeds, seed=p.seed, cap=p.cap, device=device,
        experiment="variance picture, Table 1 network")
    return Runs([*f34_pooled, *table1, *table2, *table3], f34_curves, cpu_curves,
                pd.DataFrame([asdict(r) for r in cpu_pooled]), f34_stds, gamma)
