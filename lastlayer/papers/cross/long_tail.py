"""Study 1: which last layer for a long tail?

geometry's long-tailed MNIST (or Fashion-MNIST) and its LeNet-sized CNN, with a 2-D embedding and a wider one,
under every head the other chapters study: a learned head (geometry's bias-free, Xavier-initialised classifier),
fixed random class vectors (fixed_classifier's), fixed equally spaced ones in a random class order and in
geometry's guided order, geometry's norm-constrained head, and fixed_classifier's cosine heads, learned and fixed,
at its S values. A class is *lost* when the test recall of the class is below chance (1 / classes): the head does no
better than guessing for it, whatever the embedding's size (in 2-D, geometry's classes without area are among them).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial

import numpy as np
import torch

from lastlayer.heads import ClassifierHead
from lastlayer.models import create_model
from lastlayer.papers.geometry.experiments import (class_counts, guided_directions, long_tail_data,
                                                  shuffled_directions)
from lastlayer.training.cache import cached_runs
from lastlayer.training.trainer import TrainConfig, apply_batched, fit, resolve_device, seed_everything

HEADS = ("learned", "fixed_random", "fixed_spaced", "fixed_guided", "norm", "cosine", "cosine_fixed")
FIXED = ("fixed_random", "fixed_spaced", "fixed_guided", "cosine_fixed")  # heads whose class vectors never train
HEAD_LABELS = {"learned": "learned", "fixed_random": "fixed, random (fixed_classifier)",
               "fixed_spaced": "fixed, equally spaced, random order", "fixed_guided": "fixed, guided order (geometry)",
               "norm": "norm-constrained (geometry)", "cosine": "cosine, learned", "cosine_fixed": "cosine, fixed"}


def arm_name(head: str, scale: float | None = None) -> str:
    """'cosine S=20' for a cosine head, the head's name otherwise."""
    return f"{head} S={scale:g}" if head.startswith("cosine") else head


def arms(heads, scales) -> list[tuple[str, float]]:
    """The (head, S) pairs of a study: every head, the cosine heads at every S."""
    out = []
    for h in heads:
        if h not in HEADS:
            raise ValueError(f"unknown head {h!r}; choose from {', '.join(HEADS)}")
        out += [(h, float(s)) for s in scales] if h.startswith("cosine") else [(h, 1.0)]
    return out


def guided_layout(counts, dim: int) -> np.ndarray:
    """geometry's guided layout (equally spaced on a circle, classes of similar counts side by side) as unit vectors
    of `dim` dimensions: the circle lies in the embedding's first two coordinates. In more than two dimensions the
    maximally spaced layout is the simplex (`simplex_directions`), where every class neighbours every other: the
    guided circle is then the one layout that keeps geometry's order."""
    circle = guided_directions(counts)
    return np.pad(circle, ((0, 0), (0, dim - 2)))


def simplex_directions(classes: int, dim: int, seed: int) -> np.ndarray:
    """Unit class vectors (classes, dim) as far apart as they can be: equally spaced on the circle in 2-D
    (geometry's layout, the classes in an order drawn from `seed`); the vertices of a regular simplex (every pair at
    cosine -1 / (classes - 1)), randomly rotated by `seed`, when dim >= classes - 1."""
    if dim == 2:
        return shuffled_directions(classes, seed)
    if dim < classes - 1:
        raise ValueError(f"{classes} equally spaced vectors need 2 or at least {classes - 1} dimensions, not {dim}")
    rng = np.random.default_rng(seed)
    centred = np.eye(classes) - 1.0 / classes                      # the simplex, in the classes' own space
    basis, _ = np.linalg.qr(centred[:, :classes - 1])              # an orthonormal basis of its (C-1)-d span
    coords = centred @ basis                                       # (C, C-1)
    rotation, _ = np.linalg.qr(rng.standard_normal((dim, dim)))    # a random rotation into `dim` dimensions
    vectors = coords @ rotation[:classes - 1]
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def make_model(head: str, dim: int, classes: int, counts, seed: int, scale: float = 1.0,
               constrain_norm: float = 1.0, in_channels: int = 1):
    """geometry's CNN with an embedding of size `dim` and the head `head`. The backbone's draw is the same for every
    head of a seed (seeded before it is built); the fixed heads are unit vectors with fixed_classifier's frozen bias
    of 0.01 (the same for every class, so it changes no prediction)."""
    seed_everything(seed)
    model = create_model("embed2d_cnn", num_classes=classes, in_channels=in_channels, embed_dim=dim,
                         constrain_norm=constrain_norm if head == "norm" else None)
    generator = torch.Generator().manual_seed(seed)
    if head in ("fixed_random", "fixed_spaced", "fixed_guided"):
        model.reset_head(ClassifierHead(dim, classes, kind="dot", fixed=True, generator=generator))
    elif head in ("cosine", "cosine_fixed"):
        model.reset_head(ClassifierHead(dim, classes, kind="cosine", fixed=head == "cosine_fixed", scale=scale,
                                        generator=generator))
    if head == "fixed_spaced":
        _set_vectors(model.head, simplex_directions(classes, dim, seed))
    elif head == "fixed_guided":
        _set_vectors(model.head, guided_layout(counts, dim))
    return model


@torch.no_grad()
def _set_vectors(head, directions) -> None:
    head.weight.copy_(torch.as_tensor(np.asarray(directions), dtype=head.weight.dtype))


def class_recalls(pred: np.ndarray, labels: np.ndarray, classes: int) -> np.ndarray:
    """Per class, the share of its test images predicted as it (NaN for a class absent from the test set)."""
    hits = np.bincount(labels[pred == labels], minlength=classes).astype(float)
    total = np.bincount(labels, minlength=classes).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, hits / total, np.nan)


@dataclass(frozen=True)
class TailRow:
    """One head trained on one long-tailed data set with one seed (one row of the results' `runs`)."""
    dataset: str
    dim: int                      # embedding size
    head: str                     # one of HEADS
    scale: float                  # S of a cosine head (1 for the others)
    seed: int
    balanced_acc: float           # mean over classes of the test recall (the test set is balanced)
    worst_class_acc: float        # the lowest test recall of any class
    lost: int                     # classes whose test recall is below chance (1 / classes)
    recall_by_rank: list[float]   # test recall of each class, from the largest (rank 1) to the rarest
    experiment: str = "long tail"

    @property
    def arm(self) -> str:
        return arm_name(self.head, self.scale)


def train_head(dataset: str, dim: int, head: str, scale: float, seed: int, train, test, config: TrainConfig, *,
               milestones=(), gamma: float = 0.2, constrain_norm: float = 1.0, code: str = "") -> TailRow:
    """Train one head (see `make_model`) on the long-tailed `train` and measure it on the balanced `test`.
    `code` is the fingerprint of the used packages (`uses.fingerprint`): it only enters the run cache's key."""
    classes = len(train.classes) or int(train.y.max()) + 1
    counts = class_counts(train, classes)
    model = make_model(head, dim, classes, counts, seed, scale, constrain_norm, int(train.x.shape[1]))
    device = resolve_device(config.device)
    train, test = train.to(device), test.to(device)
    scheduler = (lambda opt: torch.optim.lr_scheduler.MultiStepLR(opt, list(milestones), gamma)) \
        if milestones else None
    fit(model, train, None, replace(config, seed=seed), scheduler=scheduler)
    model.eval()
    pred = apply_batched(model, test.x, config.eval_batch_size).argmax(1).cpu().numpy()
    recalls = class_recalls(pred, test.y.cpu().numpy(), classes)
    by_rank = recalls[sorted(range(classes), key=lambda k: (-counts[k], k))]
    return TailRow(dataset, dim, head, float(scale), seed, balanced_acc=float(np.nanmean(recalls)),
                   worst_class_acc=float(np.nanmin(recalls)), lost=int((recalls < 1 / classes).sum()),
                   recall_by_rank=[float(r) for r in by_rank])


def long_tail_study(datasets, dims, heads, scales, seeds, config: TrainConfig, *, p: float = 0.5,
                    data_seed: int = 0, test_per_class: int | None = 200, milestones=(), gamma: float = 0.2,
                    constrain_norm: float = 1.0, code: str = "") -> tuple[list[TailRow], dict]:
    """Every (dataset, embedding size, head, S, seed), through the run cache (`run --workers N` trains N at once).
    Returns the rows and, per dataset, the long-tailed training counts per class."""
    calls, counts = [], {}
    for name in datasets:
        train, test, _ = long_tail_data(name, p, None, data_seed, test_per_class)
        counts[name] = class_counts(train)
        calls += [partial(train_head, name, dim, head, scale, seed, train, test, config, milestones=tuple(milestones),
                          gamma=gamma, constrain_norm=constrain_norm, code=code)
                  for dim in dims for head, scale in arms(heads, scales) for seed in seeds]
    return cached_runs(calls), counts


__all__ = ["FIXED", "HEADS", "HEAD_LABELS", "TailRow", "arm_name", "arms", "class_recalls", "guided_layout",
           "long_tail_study", "make_model", "simplex_directions", "train_head"]
