"""The experiment of Shalev, Shalev & Keshet, "Redesigning the classification layer by randomizing the
class representation vectors": train one backbone with a learned or fixed, dot-product or cosine head,
then measure the class vectors, the confusions, the embedding geometry and the accuracy under corruptions.

    params = Params(**notebook_parameters)   # the names of the notebook's parameters cell
    runs = run(params)                       # every model of the study
    runs.rows                                # a `Row` per trained model, a `CorruptionRow` per model,
                                             # corruption and severity: what the claims are decided on

`run_study` first trains the selection runs (their own seeds) that choose the learned dot-product model's
learning rate and each cosine head's best S, then the evaluation runs on which the claims are decided and the
learning-rate sweep (seeds of its own again) that decides whether fixed models train at a higher rate.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import partial

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F

from lastlayer import metrics
from lastlayer.augment import RandomCropFlip
from lastlayer.data import Split, load
from lastlayer.models import create_model
from lastlayer.models.base import Model
from lastlayer.robustness.corruptions import corrupt
from lastlayer.training.cache import cached_runs
from lastlayer.training.trainer import (NonFiniteLossError, TrainConfig, apply_batched, evaluate, fit,
                                        resolve_device)

# the notebook's `backbone` values -> the registry's model names
BACKBONES = {"convnet": "convnet", "resnet18": "resnet18_cifar"}

# Groups of visually similar classes, per dataset: the natural test of "similar classes get close vectors".
LOOKALIKES = {
    "fashion_mnist": [["T-shirt/top", "Pullover", "Coat", "Shirt"], ["Sandal", "Sneaker", "Ankle boot"]],
    "cifar10": [["airplane", "automobile", "ship", "truck"]],
    "stl10": [["airplane", "car", "ship", "truck"]],
}


@dataclass(frozen=True)
class Params:
    """The notebook's parameters cell, name for name (its comments say what each is; paper.yml's profiles
    override them)."""
    seed: int
    n_seeds: int
    selection_seeds: int
    lr_sweep_seeds: int
    device: str
    datasets: list[str]
    grid_datasets: list[str]
    train_size: int | None
    test_size: int | None
    backbone: str
    widths: list[int]
    epochs: int
    batch_size: int
    lr: float
    learned_dot_lrs: list[float]
    lr_sweep: list[float]
    weight_decay_dot: float
    weight_decay_cosine: float
    momentum: float
    schedule: str
    plateau_factor: float
    plateau_patience: int
    augment: bool
    scales: list[float]
    signed_extension: bool
    impulse_amounts: list[float]
    jpeg_qualities: list[int]
    blur_sigmas: list[float]
    feature_points: int

    @property
    def corruptions(self) -> dict[str, list]:
        return {"impulse_noise": self.impulse_amounts, "jpeg": self.jpeg_qualities, "defocus_blur": self.blur_sigmas}

    @property
    def eval_seeds(self) -> list[int]:
        return [self.seed + i for i in range(self.n_seeds)]

    @property
    def selection_seed_list(self) -> list[int]:
        return [1000 + self.seed + i for i in range(self.selection_seeds)]

    @property
    def lr_sweep_seed_list(self) -> list[int]:
        return [2000 + self.seed + i for i in range(self.lr_sweep_seeds)]


# ---------------------------------------------------------------- rows: what the claims are decided on
@dataclass(frozen=True)
class Row:
    """One trained model: its setting and its measurements (NaN where a diverged run has none)."""
    role: str                  # 'select' (chooses a setting), 'eval' (decides the claims) or 'lr_sweep'
    dataset: str
    variant: str
    head: str
    fixed: bool
    scale: float
    lr: float
    signed: bool
    seed: int
    diverged: bool
    best_acc: float            # best test accuracy over the epochs (what the paper's code reports)
    final_acc: float
    spearman: float            # rho of confusions vs class-vector cosine over ordered class pairs
    class_vector_cosine: float     # mean off-diagonal cosine between class vectors
    class_vector_nn_cosine: float  # `nearest_cosine` of the class vectors
    lookalike_contrast: float  # mean class-vector cosine within LOOKALIKES groups minus other pairs (NaN: none)
    image_class_cosine: float  # mean cos(image embedding, predicted class vector)
    cosine_bound: float        # mean over the same images of the reachable cosine (1 if the embedding has signs)
    compactness: float
    separability: float
    experiment: str = field(default="model", init=False)


@dataclass(frozen=True)
class CorruptionRow:
    """One trained model's accuracy on the test images under one corruption at one severity (Table 6);
    the model is named by the same fields as its `Row`, whose best_acc is the clean accuracy."""
    role: str
    dataset: str
    variant: str
    head: str
    fixed: bool
    scale: float
    lr: float
    signed: bool
    seed: int
    corruption: str
    severity: float
    acc: float
    experiment: str = field(default="corruption", init=False)


def model_rows(rows, role: str | None = "eval") -> list:
    return [r for r in rows if r.experiment == "model" and (role is None or r.role == role)]


def corruption_rows(rows, role: str | None = "eval") -> list:
    return [r for r in rows if r.experiment == "corruption" and (role is None or r.role == role)]


# ---------------------------------------------------------------- models and data
@dataclass(frozen=True)
class Variant:
    """One classification layer and its optimiser settings."""
    head: str            # 'dot' or 'cosine'
    fixed: bool
    scale: float = 1.0   # S of the cosine head
    lr: float = 0.1
    weight_decay: float = 0.0
    signed: bool = False  # a linear layer after the pooled embedding, so that it can take both signs

    @property
    def name(self) -> str:
        s = f" S={self.scale:g}" if self.head == "cosine" else ""
        return f"{'fixed' if self.fixed else 'learned'} {self.head}{s}{' signed' if self.signed else ''}"


def paper_variants(scales=(1.0,), lr: float = 0.1, lr_learned_dot: float = 0.001, weight_decay_dot: float = 5e-4,
                   weight_decay_cosine: float = 0.0) -> list[Variant]:
    """The paper code's models: learned and fixed dot product (weight decay `weight_decay_dot`; the learned one
    at `lr_learned_dot`), and learned and fixed cosine at every S in `scales` (`weight_decay_cosine`)."""
    v = [Variant("dot", False, lr=lr_learned_dot, weight_decay=weight_decay_dot),
         Variant("dot", True, lr=lr, weight_decay=weight_decay_dot)]
    for s in scales:
        v += [Variant("cosine", False, float(s), lr, weight_decay_cosine),
              Variant("cosine", True, float(s), lr, weight_decay_cosine)]
    return v


@dataclass
class Bench:
    """A dataset ready to train on: normalised train/test splits and corrupted copies of the test split."""
    name: str
    train: Split
    test: Split
    corrupted: dict[tuple[str, float], Split] = field(default_factory=dict)  # (name, severity) -> corrupted test

    @property
    def classes(self) -> list[str]:
        return self.train.classes


def prepare(dataset: str, *, train_size: int | None = None, test_size: int | None = None,
            corruptions: dict[str, list] | None = None, seed: int = 0, device="cpu", **load_kwargs) -> Bench:
    """Load `dataset`, take random subsets (None = all), corrupt the test images in [0, 1] with every
    (name, severity) of `corruptions`, then standardise everything with the training mean and std."""
    train, test = load(dataset, **load_kwargs)
    g = torch.Generator().manual_seed(seed)
    train, test = train.sample(train_size, g), test.sample(test_size, g)
    keys, images = [], []
    for name, severities in (corruptions or {}).items():
        for s in severities:
            keys.append((name, float(s)))
            images.append(Split(corrupt(test.x, name, s, generator=g), test.y, test.classes))
    stats = train.stats()
    train, test, *bad = (s.standardize(stats) for s in (train, test, *images))
    device = resolve_device(device)
    return Bench(dataset, train.to(device), test.to(device), {k: b.to(device) for k, b in zip(keys, bad)})


def reachable_cosine(class_vectors) -> np.ndarray:
    """Per class, the largest cosine a non-negative embedding can have with the class vector: ||w+|| / ||w||.

    For f >= 0, f.w <= f.w+ <= ||f|| ||w+|| (Cauchy-Schwarz), with equality at f proportional to w+ = max(w, 0).
    An embedding taken after a ReLU and pooling can therefore never come closer to a mixed-sign vector."""
    w = torch.as_tensor(class_vectors, dtype=torch.float64)
    return (w.clamp(min=0).norm(dim=1) / w.norm(dim=1)).numpy()


def nearest_cosine(cosines) -> float:
    """Mean over classes of the largest cosine between a class vector and any other: how close the
    closest pairs of class vectors sit (lower = vectors spread further apart)."""
    c = np.array(cosines, dtype=float)
    np.fill_diagonal(c, -np.inf)
    return float(c.max(1).mean())


@dataclass
class RunResult:
    """What one trained model gives: accuracies, last-layer geometry, confusion and corruption results."""
    dataset: str
    variant: Variant
    seed: int
    role: str                  # 'select', 'eval' or 'lr_sweep', as in `Row`
    best_acc: float            # best test accuracy over the epochs (what the paper's code reports)
    final_acc: float
    diverged: bool             # the loss became non-finite; measurements below are then NaN
    history: dict
    class_cosine: np.ndarray   # (m, m) cosine between class vectors, final model
    confusion: np.ndarray      # (m, m) test confusions, final model
    spearman: float
    image_class_cosine: float
    cosine_bound: float
    compactness: float
    separability: float
    corrupted_acc: dict[tuple[str, float], float]  # (corruption, severity) -> accuracy
    lookalike_contrast: float
    model: torch.nn.Module | None = None

    def rows(self) -> list:
        """This model's `Row`, then a `CorruptionRow` per corruption and severity."""
        v = self.variant
        off = self.class_cosine[~np.eye(len(self.class_cosine), dtype=bool)]
        who = dict(role=self.role, dataset=self.dataset, variant=v.name, head=v.head, fixed=v.fixed,
                   scale=v.scale, lr=v.lr, signed=v.signed, seed=self.seed)
        row = Row(**who, diverged=self.diverged, best_acc=self.best_acc, final_acc=self.final_acc,
                  spearman=self.spearman, class_vector_cosine=float(off.mean()) if len(off) else float("nan"),
                  class_vector_nn_cosine=nearest_cosine(self.class_cosine) if len(off) else float("nan"),
                  lookalike_contrast=self.lookalike_contrast, image_class_cosine=self.image_class_cosine,
                  cosine_bound=self.cosine_bound, compactness=self.compactness, separability=self.separability)
        return [row] + [CorruptionRow(**who, corruption=c, severity=s, acc=a)
                        for (c, s), a in self.corrupted_acc.items()]


class SignedEmbedding(Model):
    """A backbone whose pooled (non-negative) embedding goes through a learned linear map, so the
    embedding the head sees can take both signs; the same `features` / `head` interface."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        d = backbone.head.in_features
        self.head, backbone.head = backbone.head, nn.Identity()
        self.backbone, self.project = backbone, nn.Linear(d, d)
        self.num_features, self.input_size = d, backbone.input_size

    def features(self, x):
        return self.project(self.backbone.features(x))


@torch.no_grad()
def analyse(model, test: Split, num_classes: int) -> dict:
    """Last-layer and embedding measurements of a trained model on `test` (eval mode)."""
    model.eval()
    feats = apply_batched(model.features, test.x)
    pred = model.head(feats).argmax(1)
    w = model.head.class_vectors()
    cos = metrics.cosine_matrix(w)
    conf = metrics.confusion_matrix(pred, test.y, num_classes)
    reach = reachable_cosine(w.cpu()) if bool((feats >= 0).all()) else np.ones(num_classes)
    unit = F.normalize(feats, dim=1)  # the geometry a cosine head sees; compactness is scale-free anyway
    return {"class_cosine": cos.cpu().numpy(), "confusion": conf.numpy(),
            "spearman": metrics.confusion_cosine_correlation(conf, cos.cpu()).rho,
            "image_class_cosine": metrics.image_class_cosine(feats, w, pred),
            "cosine_bound": float(reach[pred.cpu().numpy()].mean()),
            "compactness": metrics.compactness(unit, test.y), "separability": metrics.separability(unit, test.y)}


def build_model(backbone: str, variant: Variant, in_channels: int, num_classes: int, widths=None) -> Model:
    """The backbone from the model registry (`widths` for the convnet), with the variant's head."""
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")
    kw = {"widths": widths} if backbone == "convnet" and widths is not None else {}
    model = create_model(BACKBONES[backbone], num_classes=num_classes, in_channels=in_channels, **kw)
    if variant.signed:
        model = SignedEmbedding(model)
    return model.reset_head(kind=variant.head, fixed=variant.fixed, scale=variant.scale)


def train_one(bench: Bench, variant: Variant, seed: int, *, role: str = "eval", backbone: str = "convnet",
              widths=None, epochs: int = 3, batch_size: int = 128, momentum: float = 0.9, schedule: str = "plateau",
              plateau_factor: float = 0.2, plateau_patience: int = 3, augment: bool = False, device="auto",
              keep_model: bool = False) -> RunResult:
    """Train one model (weights and class vectors seeded by `seed`, so every variant of a seed starts
    from the same draw) with SGD (Nesterov momentum), then analyse it. schedule 'plateau' is the paper code's
    ReduceLROnPlateau on test accuracy; 'cosine' anneals the rate to 0 over `epochs`, for runs too
    short to ever reach a plateau. A run whose loss turns non-finite is kept, marked diverged, with chance
    accuracy (clean and corrupted) and NaN measurements."""
    if schedule not in ("plateau", "cosine"):
        raise ValueError(f"unknown schedule {schedule!r}; choose 'plateau' or 'cosine'")
    torch.manual_seed(seed)
    m = len(bench.classes)
    model = build_model(backbone, variant, bench.train.x.shape[1], m, widths)
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=variant.lr, optimizer="sgd", momentum=momentum,
                         nesterov=True, weight_decay=variant.weight_decay, seed=seed, device=str(device))
    if schedule == "cosine":
        sched = lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    else:
        sched = lambda opt: torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=plateau_factor,
                                                                       patience=plateau_patience)
    try:
        history = fit(model, bench.train, bench.test, config, scheduler=sched,
                      callbacks=[RandomCropFlip(seed=seed)] if augment else []).history
    except NonFiniteLossError:
        nan, eye = float("nan"), np.full((m, m), np.nan)
        return RunResult(bench.name, variant, seed, best_acc=1 / m, final_acc=1 / m, diverged=True, history={},
                         class_cosine=eye, confusion=eye, spearman=nan, image_class_cosine=nan, cosine_bound=nan,
                         compactness=nan, separability=nan, corrupted_acc={k: 1 / m for k in bench.corrupted},
                         lookalike_contrast=nan, role=role)
    found = analyse(model, bench.test, m)
    corrupted = {k: evaluate(model, s)[1] for k, s in bench.corrupted.items()}
    groups = [[bench.classes.index(c) for c in g] for g in LOOKALIKES.get(bench.name, [])]
    contrast = metrics.group_contrast(found["class_cosine"], groups) if groups else float("nan")
    return RunResult(bench.name, variant, seed, best_acc=max(history["test_acc"]), final_acc=history["test_acc"][-1],
                     diverged=False, history=history, corrupted_acc=corrupted, lookalike_contrast=contrast, role=role,
                     model=model.cpu() if keep_model else None, **found)


def choose_settings(rows) -> dict:
    """From the selection runs' rows: per dataset, the learned dot-product model's learning rate and the
    best S of learned and of fixed cosine models, each by the highest mean best accuracy. Pure, so the
    claims can redo the choice from the rows."""
    df = pd.DataFrame([asdict(r) for r in model_rows(rows, "select")])
    out = {}
    for name, d in (df.groupby("dataset", sort=False) if len(df) else ()):
        dot = d[(d["head"] == "dot") & ~d.fixed]
        choice = {"lr learned dot": float(dot.groupby("lr").best_acc.mean().idxmax())}
        for fixed, key in ((False, "S learned"), (True, "S fixed")):
            cos = d[(d["head"] == "cosine") & (d.fixed == fixed) & ~d.signed]
            if len(cos):
                choice[key] = float(cos.groupby("scale").best_acc.mean().idxmax())
        out[name] = choice
    return out


def _train_settings(p: Params) -> dict:
    """The keyword arguments of `train_one` that every model of the study shares."""
    return dict(backbone=p.backbone, widths=p.widths, epochs=p.epochs, batch_size=p.batch_size, momentum=p.momentum,
                schedule=p.schedule, plateau_factor=p.plateau_factor, plateau_patience=p.plateau_patience,
                augment=p.augment, device=str(resolve_device(p.device)))


def check_seeds(p: Params) -> None:
    """Evaluation, selection and sweep seeds must not meet: a setting chosen on the runs a claim is judged on
    would favour it, and a sweep model on an evaluation seed would repeat that run instead of adding one."""
    groups = {"evaluation": p.eval_seeds, "selection": p.selection_seed_list, "lr sweep": p.lr_sweep_seed_list}
    names = list(groups)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if set(groups[a]) & set(groups[b]):
                raise ValueError(f"{a} seeds must differ from {b} seeds: each experiment needs runs of its own "
                                 f"(evaluation seeds start at seed, selection seeds at 1000 + seed, sweep seeds at "
                                 f"2000 + seed)")


def lr_sweep_calls(benches: dict[str, Bench], params: Params) -> list:
    """The learning-rate sweep, one call per model: learned and fixed dot-product and cosine S = 1 models at
    every rate of `lr_sweep`, on every dataset and every sweep seed, trained as the evaluation runs are (same
    epochs, batch, schedule and per-head weight decay) with only the rate changed. No corruptions: the claim
    reads clean accuracy only."""
    p, train = params, _train_settings(params)
    calls = []
    for bench in benches.values():
        clean = Bench(bench.name, bench.train, bench.test)
        variants = [Variant("dot", f, lr=a, weight_decay=p.weight_decay_dot) for a in p.lr_sweep for f in (False, True)]
        variants += [Variant("cosine", f, 1.0, a, p.weight_decay_cosine) for a in p.lr_sweep for f in (False, True)]
        calls += [partial(train_one, clean, v, s, role="lr_sweep", **train) for s in p.lr_sweep_seed_list
                  for v in variants]
    return calls


def run_study(benches: dict[str, Bench], params: Params) -> list[RunResult]:
    """Every model of the study. On the selection seeds: the learned dot-product model at each of
    `learned_dot_lrs` and, on the grid datasets, learned and fixed cosine models at every S. Then on the
    evaluation seeds: the learned dot-product model at its chosen rate, the fixed one, cosine models at every S
    (S = 1 only outside the grid datasets) and, with `signed_extension`, a fixed cosine S = 1 model whose
    embedding can take both signs; with them, on the sweep seeds, the learning-rate sweep (`lr_sweep_calls`).
    The models of the first evaluation seed are kept for pictures."""
    p = params
    check_seeds(p)
    seeds, selection_seeds, train = p.eval_seeds, p.selection_seed_list, _train_settings(p)
    calls = []
    for name, bench in benches.items():
        grid = [float(s) for s in p.scales] if name in p.grid_datasets else []
        variants = [Variant("dot", False, lr=a, weight_decay=p.weight_decay_dot) for a in p.learned_dot_lrs]
        variants += [Variant("cosine", f, s, p.lr, p.weight_decay_cosine) for s in grid for f in (False, True)]
        calls += [partial(train_one, bench, v, s, role="select", **train) for s in selection_seeds for v in variants]
    runs = cached_runs(calls)
    chosen = choose_settings([row for r in runs for row in r.rows()])
    calls = []
    for name, bench in benches.items():
        variants = paper_variants(p.scales if name in p.grid_datasets else [1.0], lr=p.lr,
                                  lr_learned_dot=chosen[name]["lr learned dot"], weight_decay_dot=p.weight_decay_dot,
                                  weight_decay_cosine=p.weight_decay_cosine)
        if p.signed_extension and name in p.grid_datasets:
            variants.append(Variant("cosine", True, 1.0, p.lr, p.weight_decay_cosine, signed=True))
        calls += [partial(train_one, bench, v, s, keep_model=s == seeds[0], **train) for s in seeds for v in variants]
    # one batch of calls, so that the workers share the evaluation runs and the sweep
    return runs + cached_runs(calls + lr_sweep_calls(benches, p))


@dataclass
class Runs:
    """Everything the notebook shows: the rows the claims are decided on, the trained runs (with the first
    seed's models, for the pictures), the prepared datasets and the settings chosen on the selection seeds."""
    rows: list
    results: list[RunResult]
    benches: dict[str, Bench]
    chosen: dict


def run(params: Params) -> Runs:
    """The whole study of the notebook: load every dataset (all before any training, so that a missing one
    stops the run at once), train every model (`run_study`), and give back its rows."""
    benches = {d: prepare(d, train_size=params.train_size, test_size=params.test_size, seed=params.seed,
                          device=params.device, corruptions=params.corruptions if d in params.grid_datasets else None)
               for d in params.datasets}
    results = run_study(benches, params)
    rows = [row for r in results for row in r.rows()]
    return Runs(rows, results, benches, choose_settings(rows))
