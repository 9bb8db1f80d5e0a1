"""The last layer as geometry (de la Calle et al., "Geometric interpretation of a CNN's last layer").

With a 2-D embedding x and a bias-free classifier, class c scores W_c·x, so each class owns the wedge of
the plane where its vector wins. This module holds the paper's pieces:
- the long-tailed training set: class of rank c keeps a fraction g_c = p(1-p)^c of its images;
- classifier initialisations: the default random one, the guided one (equally spaced, classes with similar
  training counts get neighbouring directions), its control (equally spaced in a random class order), and
  the guided one frozen (a fixed, equally spaced classifier);
- the exact area of each class (a class owns a wedge iff its vector is a vertex of the convex hull of all
  class vectors); the angle each vector turns through in training;
- a callback recording the class vectors, one call that trains one arm of the comparison, and `run`, which
  trains every arm of the notebook's parameters (`Params`) and returns the rows the claims are decided from.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import partial

import numpy as np
import torch
import torch.nn as nn

from lastlayer.data import Split, load
from lastlayer.heads import freeze
from lastlayer.models import create_model
from lastlayer.training.cache import cached_runs
from lastlayer.training.trainer import Callback, TrainConfig, apply_batched, evaluate, fit, resolve_device, seed_everything

ARMS = ("random", "guided", "spaced", "norm", "fixed")
ARM_LABELS = {"random": "random init", "guided": "guided init",
              "spaced": "equally spaced, random order", "norm": "random init, norms constrained",
              "fixed": "fixed, equally spaced (guided order)"}
LAYOUTS = ("zigzag", "ring")
BACKBONES = {"cnn": "embed2d_cnn", "resnet101": "embed2d_resnet101"}  # backbone parameter -> registered model


@dataclass(frozen=True)
class Params:
    """The parameters cell of notebooks/geometry.ipynb, one field per name (the cell holds the defaults,
    the profiles of paper.yml override them)."""
    dataset: str
    p: float
    digit_order: list[int]
    data_seed: int
    test_per_class: int | None
    backbone: str
    epochs: int
    batch_size: int
    lr: float
    milestones: list[int]
    gamma: float
    weight_decay: float
    arms: list[str]
    n_seeds: int
    guided_layout: str
    constrain_norm: float
    seed: int
    device: str
    cpu_threads: int | None


# --- the long-tailed training set ------------------------------------------------------------------

def long_tail_fractions(classes: int = 10, p: float = 0.5) -> np.ndarray:
    """g_c = p (1 - p)^c for ranks c = 1..classes (the paper's eq. 5)."""
    if not 0 < p < 1:
        raise ValueError(f"the long-tail parameter p must lie in (0, 1), not {p}")
    return p * (1 - p) ** np.arange(1, classes + 1)


def _check_order(order, classes: int) -> list[int]:
    order = list(range(classes)) if order is None else [int(c) for c in order]
    if sorted(order) != list(range(classes)):
        raise ValueError(f"the class order must be a permutation of 0..{classes - 1}, not {order}")
    return order


def long_tail_counts(available, p: float = 0.5, order=None) -> np.ndarray:
    """How many images each class keeps: round(available[k] * g_c), where class k = order[c - 1] has rank c.

    `available` holds the balanced counts per class (indexed by class); the result is indexed by class too.
    """
    available = np.asarray(available, dtype=np.int64)
    order = _check_order(order, len(available))
    g = long_tail_fractions(len(available), p)
    counts = np.empty_like(available)
    for rank, k in enumerate(order):
        counts[k] = int(round(available[k] * g[rank]))
    if (counts == 0).any():
        empty = [k for k in range(len(counts)) if counts[k] == 0]
        raise ValueError(f"p = {p} leaves class(es) {empty} without a single training image; use a smaller p")
    return counts


def class_counts(split: Split, classes: int | None = None) -> np.ndarray:
    """Images per class in a split."""
    classes = classes or len(split.classes) or int(split.y.max()) + 1
    return np.bincount(split.y.cpu().numpy(), minlength=classes)


def long_tail(split: Split, p: float = 0.5, order=None, seed: int = 0) -> Split:
    """The long-tailed version of `split`: a random subset (fixed by `seed`) of each class, of the sizes
    `long_tail_counts` gives; `order` lists the classes from the largest (rank 1) to the smallest."""
    return split.sample(long_tail_counts(class_counts(split), p, order).tolist(), seed, stratified=True)


# --- classifier initialisations --------------------------------------------------------------------

def equally_spaced(order, start_angle: float = 0.0) -> np.ndarray:
    """Unit class vectors (C, 2) equally spaced on the circle: class order[r] sits at angle 2πr/C."""
    order = _check_order(order, len(order))
    angles = np.empty(len(order))
    angles[order] = start_angle + 2 * math.pi * np.arange(len(order)) / len(order)
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def shuffled_directions(classes: int, seed: int) -> np.ndarray:
    """The control of the guided layout: equally spaced vectors, the classes in a random order (fixed by
    `seed`, drawn from its own generator so that the backbone's initialisation stays paired across arms)."""
    return equally_spaced(np.random.default_rng(seed).permutation(classes))


def guided_directions(counts, layout: str = "zigzag", start_angle: float = 0.0) -> np.ndarray:
    """Unit class vectors (C, 2), equally spaced on the circle, placed by training count.

    Classes are ranked by count (largest first; ties by class index). 'ring' puts rank r at angle
    2πr/C, so the largest and the smallest class end up neighbours across the wrap; 'zigzag' puts the
    largest at 0 and the next ones alternately on either side (+1, -1, +2, -2, ... slots), so every class
    neighbours classes of similar size and the smallest meet opposite the largest.
    """
    counts = np.asarray(counts)
    if layout not in LAYOUTS:
        raise ValueError(f"unknown guided layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    n = len(counts)
    ranked = sorted(range(n), key=lambda k: (-counts[k], k))
    if layout == "ring":
        slots = list(range(n))
    else:
        slots = [0] + [s for i in range(1, n) for s in (i, -i)][:n - 1]
    order = [0] * n  # order[slot] = the class sitting in that slot
    for rank, k in enumerate(ranked):
        order[slots[rank] % n] = k
    return equally_spaced(order, start_angle)


@torch.no_grad()
def init_directions(head: nn.Module, directions, norm: float | None = None) -> None:
    """Point the class vectors along `directions` (C, 2). Every vector gets length `norm`, by default the
    mean length of the head's current (random) vectors, so that only the directions change."""
    weight = head.weight
    if weight.shape != (len(directions), 2):
        raise ValueError(f"setting class directions needs a (classes, 2) classifier, got {tuple(weight.shape)}")
    norm = float(weight.norm(dim=1).mean()) if norm is None else norm
    directions = torch.as_tensor(np.asarray(directions), dtype=weight.dtype, device=weight.device)
    target = head.direction if hasattr(head, "direction") else head.weight  # NormConstrainedLinear or Linear
    target.copy_(norm * directions)


# --- areas and angles ------------------------------------------------------------------------------

def _hull(points: np.ndarray) -> list[int]:
    """Indices of the convex hull's vertices, counter-clockwise (Andrew's monotone chain). Points on an
    edge are not vertices; of identical points only the lowest index counts (argmax keeps the first)."""
    unique = {}
    for i, pt in enumerate(map(tuple, points)):
        unique.setdefault(pt, i)
    idx = sorted(unique.values(), key=lambda i: (points[i, 0], points[i, 1]))
    if len(idx) <= 2:
        return idx

    def cross(o, a, b):
        return (points[a, 0] - points[o, 0]) * (points[b, 1] - points[o, 1]) - \
               (points[a, 1] - points[o, 1]) * (points[b, 0] - points[o, 0])

    lower, upper = [], []
    for i in idx:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], i) <= 0:
            lower.pop()
        lower.append(i)
    for i in reversed(idx):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], i) <= 0:
            upper.pop()
        upper.append(i)
    return lower[:-1] + upper[:-1]


def class_wedges(weight) -> list[tuple[int, float, float]]:
    """The wedge of the plane each class wins, exactly: [(class, start, end)] in radians, counter-clockwise
    from start to end, for the classes that win any direction (the hull's vertices); the others win none.

    Without a bias, argmax_c W_c·x depends only on x's direction u, and the winner for u is the hull vertex
    that supports the hull in direction u: vertex v_i wins between the outward normals of its two edges.
    """
    w = np.asarray(torch.as_tensor(weight).detach().cpu(), dtype=np.float64)
    if w.ndim != 2 or w.shape[1] != 2:
        raise ValueError(f"class vectors must be a (classes, 2) array, got shape {w.shape}")
    vertices = _hull(w)
    if len(vertices) == 1:
        return [(vertices[0], 0.0, 2 * math.pi)]
    normals = []
    for a, b in zip(vertices, vertices[1:] + vertices[:1]):
        dx, dy = w[b] - w[a]
        normals.append(math.atan2(-dx, dy))  # the outward normal of a counter-clockwise edge
    return [(v, normals[i - 1], normals[i]) for i, v in enumerate(vertices)]


def class_areas(weight) -> np.ndarray:
    """The share of all directions of the plane (of the 2π angle) each class wins; zero off the hull."""
    n = len(weight)
    areas = np.zeros(n)
    for c, start, end in class_wedges(weight):
        areas[c] = ((end - start) % (2 * math.pi) or 2 * math.pi) / (2 * math.pi)
    return areas


def turn_angles(start, end) -> np.ndarray:
    """The angle (degrees, 0..180) between each class vector at `start` and at `end`."""
    a, b = np.asarray(start, float), np.asarray(end, float)
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def angular_order(weight) -> list[int]:
    """The classes sorted by the angle of their vector, rotated to start at class 0: two classifiers with
    the same list have their vectors in the same cyclic order around the origin."""
    w = np.asarray(weight, float)
    order = list(np.argsort(np.arctan2(w[:, 1], w[:, 0]), kind="stable"))
    i = order.index(0)
    return [int(c) for c in order[i:] + order[:i]]


def epochs_to(curve, fraction: float = 0.95, tail: int = 3) -> int:
    """The first epoch (1-based) at which `curve` reaches `fraction` of its final level (the mean of its
    last `tail` values): how long a run takes to converge."""
    curve = np.asarray(curve, float)
    if len(curve) == 0:
        raise ValueError("an empty curve never converges")
    target = fraction * curve[-tail:].mean()
    return int(np.argmax(curve >= target)) + 1


class ClassifierRecorder(Callback):
    """Records the class vectors (head.weight) before training and after every epoch."""

    def __init__(self):
        self.vectors: list[np.ndarray] = []

    def _record(self, model: nn.Module) -> None:
        self.vectors.append(model.head.weight.detach().cpu().numpy().copy())

    def on_train_start(self, model, optimizer):
        self.vectors.clear()
        self._record(model)

    def on_epoch_end(self, model, epoch, history):
        self._record(model)

    @property
    def trajectory(self) -> np.ndarray:
        """(epochs + 1, classes, 2)."""
        return np.stack(self.vectors)


# --- one arm of the comparison ---------------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    """One run's measurements, which the claims are decided from (one row of the results' `runs`)."""
    arm: str
    seed: int
    train_acc: float
    test_acc: float
    no_area: int                  # classes that end without area
    no_area_classes: str          # which ones, space-separated class indices
    rare_no_area: int             # of them, in the rarer half of the classes by training count
    frequent_no_area: int         # in the more frequent half
    median_turn: float            # degrees, median over classes of the angle turned in training
    p90_turn: float               # its 90th percentile
    order_kept: bool              # the vectors end in their initial cyclic order
    epochs_to_95: int             # first epoch at 95% of the final (running) train accuracy


@dataclass
class GeometryRun:
    """One training of one arm with one seed, and what the geometric analysis needs from it."""
    arm: str
    seed: int
    history: dict
    trajectory: np.ndarray        # (epochs + 1, classes, 2): class vectors before training, after each epoch
    train_counts: np.ndarray      # training images per class
    train_acc: float              # final, eval mode, whole long-tailed training set
    test_acc: float               # final, eval mode, whole test set given
    test_embedding: np.ndarray    # (N, 2) final embeddings of the test images
    test_labels: np.ndarray

    @property
    def weight(self) -> np.ndarray:
        return self.trajectory[-1]

    @property
    def areas(self) -> np.ndarray:
        return class_areas(self.weight)

    @property
    def no_area(self) -> list[int]:
        """Classes whose vector is inside the hull: they win no direction and can never be predicted."""
        return [int(c) for c in np.flatnonzero(self.areas == 0)]

    @property
    def rare(self) -> list[int]:
        """The rarer half of the classes by training count (ties: the higher class index is rarer)."""
        ranked = sorted(range(len(self.train_counts)), key=lambda k: (-self.train_counts[k], k))
        return sorted(ranked[len(ranked) - len(ranked) // 2:])

    @property
    def turns(self) -> np.ndarray:
        return turn_angles(self.trajectory[0], self.trajectory[-1])

    def row(self) -> Row:
        lost, turns, rare = self.no_area, self.turns, self.rare
        return Row(arm=self.arm, seed=self.seed, train_acc=self.train_acc, test_acc=self.test_acc,
                   no_area=len(lost), no_area_classes=" ".join(map(str, lost)),
                   rare_no_area=sum(k in rare for k in lost), frequent_no_area=sum(k not in rare for k in lost),
                   median_turn=float(np.median(turns)), p90_turn=float(np.percentile(turns, 90)),
                   order_kept=angular_order(self.trajectory[0]) == angular_order(self.weight),
                   epochs_to_95=epochs_to(self.history["train_acc"]))


def make_model(backbone: str = "cnn", classes: int = 10, constrain_norm: float | None = None,
               in_channels: int = 1) -> nn.Module:
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")
    return create_model(BACKBONES[backbone], num_classes=classes, in_channels=in_channels,
                        constrain_norm=constrain_norm)


def train_arm(arm: str, seed: int, train: Split, test: Split, config: TrainConfig, *, backbone: str = "cnn",
              milestones: tuple[int, ...] = (), gamma: float = 0.2, layout: str = "zigzag",
              constrain_norm: float = 1.0) -> GeometryRun:
    """Train one arm on the (long-tailed) `train`, evaluating on `test` after every epoch.

    Arms: 'random' (the default Xavier classifier), 'guided' (guided directions, trained), 'spaced' (equally
    spaced directions in a random class order drawn from `seed`, trained: the guided layout without its
    count order), 'norm' (random directions, every class vector's norm held at `constrain_norm`), 'fixed'
    (guided directions, frozen).
    The same seed gives every arm the same backbone initialisation and batch order, so arms compare in pairs.
    The learning rate is multiplied by `gamma` at each epoch in `milestones` (the paper: 1/5 at 15 and 80).
    """
    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}; choose one of {', '.join(ARMS)}")
    classes = len(train.classes) or int(train.y.max()) + 1
    counts = class_counts(train, classes)
    seed_everything(seed)
    model = make_model(backbone, classes, constrain_norm if arm == "norm" else None, int(train.x.shape[1]))
    if arm in ("guided", "fixed"):
        init_directions(model.head, guided_directions(counts, layout))
    if arm == "spaced":
        init_directions(model.head, shuffled_directions(classes, seed))
    if arm == "fixed":
        freeze(model.head)
    config = replace(config, seed=seed)
    device = resolve_device(config.device)
    train, test = train.to(device), test.to(device)
    recorder = ClassifierRecorder()
    scheduler = (lambda opt: torch.optim.lr_scheduler.MultiStepLR(opt, list(milestones), gamma)) \
        if milestones else None
    result = fit(model, train, test, config, scheduler=scheduler, callbacks=[recorder])
    _, train_acc = evaluate(model, train, batch_size=config.eval_batch_size)
    _, test_acc = evaluate(model, test, batch_size=config.eval_batch_size)
    model.eval()
    embedding = apply_batched(model.features, test.x, config.eval_batch_size).cpu().numpy()
    return GeometryRun(arm, seed, result.history, recorder.trajectory, counts, train_acc, test_acc,
                       embedding, test.y.cpu().numpy())


def long_tail_data(dataset: str = "mnist", p: float = 0.5, order=None, seed: int = 0,
                   test_per_class: int | None = None) -> tuple[Split, Split, np.ndarray]:
    """The paper's data: the long-tailed training split and a balanced test split (all of it, or
    `test_per_class` random images per class), standardised with the training statistics, and the
    balanced training counts per class."""
    full_train, full_test = load(dataset)
    train = long_tail(full_train, p, order, seed=seed)
    test = full_test.sample(test_per_class, seed, stratified=True) if test_per_class is not None else full_test
    stats = train.stats()
    return train.standardize(stats), test.standardize(stats), class_counts(full_train)


def compare(arms, seeds, train: Split, test: Split, config: TrainConfig, **kwargs) -> list[GeometryRun]:
    """Every arm with every seed (see `train_arm`), each run through the run cache: a rerun with the same
    inputs loads it, a stopped profile resumes where it stopped, and `run --workers N` trains N at once."""
    return cached_runs([partial(train_arm, arm, seed, train, test, config, **kwargs) for arm in arms for seed in seeds])


# --- the notebook's one call -----------------------------------------------------------------------

@dataclass
class Runs:
    """What `run` returns: the rows the claims are decided from, the runs themselves (the figures need their
    vectors, curves and embeddings), and the training set's classes and counts the tables show."""
    rows: list[Row]
    runs: list[GeometryRun]
    classes: list[str]
    counts: np.ndarray            # long-tailed training images per class
    balanced_counts: np.ndarray   # the balanced training set's images per class


def run(params: Params) -> Runs:
    """Every arm of `params.arms` with seeds `params.seed`, ..., `params.seed + params.n_seeds - 1` on the
    long-tailed data of `params` (see `train_arm`, `long_tail_data`)."""
    train, test, balanced = long_tail_data(params.dataset, params.p, params.digit_order, params.data_seed,
                                           params.test_per_class)
    config = TrainConfig(epochs=params.epochs, batch_size=params.batch_size, lr=params.lr, optimizer="adam",
                         weight_decay=params.weight_decay, device=params.device)
    runs = compare(params.arms, range(params.seed, params.seed + params.n_seeds), train, test, config,
                   backbone=params.backbone, milestones=tuple(params.milestones), gamma=params.gamma,
                   layout=params.guided_layout, constrain_norm=params.constrain_norm)
    return Runs([r.row() for r in runs], runs, list(train.classes), class_counts(train), balanced)
