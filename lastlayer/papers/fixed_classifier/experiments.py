"""The experiment of Shalev, Shalev & Keshet, "Redesigning the classification layer by randomizing the
class representation vectors": train one backbone with a learned or fixed, dot-product or cosine head,
then measure the class vectors, the confusions, the embedding geometry and the accuracy under corruptions.

    bench = prepare("fashion_mnist", train_size=12000, corruptions={"jpeg": [30]})
    runs = run_grid(bench, paper_variants([1, 20]), seeds=[0, 1, 2], epochs=3)
    frame(runs)          # one row per (variant, seed)
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from lastlayer import metrics
from lastlayer.robustness.corruptions import corrupt
from lastlayer.data import Split, normalize
from lastlayer.datasets_extra import load_dataset
from lastlayer.heads import attach_head
from lastlayer.models.convnet import ConvNet
from lastlayer.models.resnet_cifar import resnet18_cifar
from lastlayer.training.trainer import Callback, TrainConfig, apply_batched, evaluate, fit, resolve_device

BACKBONES = {"convnet": ConvNet, "resnet18": resnet18_cifar}

# Groups of visually similar classes, per dataset: the natural test of "similar classes get close vectors".
LOOKALIKES = {
    "fashion_mnist": [["T-shirt/top", "Pullover", "Coat", "Shirt"], ["Sandal", "Sneaker", "Ankle boot"]],
    "cifar10": [["airplane", "automobile", "ship", "truck"]],
    "stl10": [["airplane", "car", "ship", "truck"]],
}


@dataclass(frozen=True)
class Variant:
    """One classification layer and its optimiser settings."""
    head: str            # 'dot' or 'cosine'
    fixed: bool
    scale: float = 1.0   # S of the cosine head
    lr: float = 0.1
    weight_decay: float = 0.0
    tag: str = ""        # tells apart two variants with the same head (e.g. another learning rate)

    @property
    def name(self) -> str:
        s = f" S={self.scale:g}" if self.head == "cosine" else ""
        return f"{'fixed' if self.fixed else 'learned'} {self.head}{s}{' ' + self.tag if self.tag else ''}"


def paper_variants(scales=(1.0,), lr: float = 0.1, lr_learned_dot: float = 0.001, wd_dot: float = 5e-4,
                   wd_cosine: float = 0.0, equal_lr_control: bool = False) -> list[Variant]:
    """The paper code's models: learned and fixed dot product (weight decay `wd_dot`; the learned one at
    `lr_learned_dot`), and learned and fixed cosine at every S in `scales` (weight decay `wd_cosine`).
    equal_lr_control adds a learned dot-product model at the fixed one's `lr`."""
    v = [Variant("dot", False, lr=lr_learned_dot, weight_decay=wd_dot)]
    if equal_lr_control and lr != lr_learned_dot:
        v.append(Variant("dot", False, lr=lr, weight_decay=wd_dot, tag=f"lr={lr:g}"))
    v.append(Variant("dot", True, lr=lr, weight_decay=wd_dot))
    for s in scales:
        v += [Variant("cosine", False, float(s), lr, wd_cosine), Variant("cosine", True, float(s), lr, wd_cosine)]
    return v


@dataclass
class Bench:
    """A dataset ready to train on: normalised train/test splits and corrupted copies of the test split."""
    name: str
    train: Split
    test: Split
    corrupted: dict[str, Split] = field(default_factory=dict)  # 'jpeg@30' -> normalised corrupted test

    @property
    def classes(self) -> list[str]:
        return self.train.classes


def _take(split: Split, n: int | None, generator: torch.Generator) -> Split:
    if n is None or n >= len(split):
        return split
    if n < 1:
        raise ValueError(f"a subset size must be positive, got {n}")
    return split.subset(torch.randperm(len(split), generator=generator)[:n].to(split.x.device))


def prepare(dataset: str, *, train_size: int | None = None, test_size: int | None = None,
            corruptions: dict[str, list] | None = None, seed: int = 0, device="cpu", **load_kwargs) -> Bench:
    """Load `dataset`, take random subsets (None = all), corrupt the test images in [0, 1] with every
    (name, severity) of `corruptions`, then standardise everything with the training mean and std."""
    train, test = load_dataset(dataset, **load_kwargs)
    g = torch.Generator().manual_seed(seed)
    train, test = _take(train, train_size, g), _take(test, test_size, g)
    keys, images = [], []
    for name, severities in (corruptions or {}).items():
        for s in severities:
            keys.append(f"{name}@{s:g}")
            images.append(Split(corrupt(test.x, name, s, generator=g), test.y, test.classes))
    train, test, *bad = normalize(train, test, *images)
    device = resolve_device(device)
    return Bench(dataset, train.to(device), test.to(device), {k: b.to(device) for k, b in zip(keys, bad)})


class RandomCropFlip(Callback):
    """The standard CIFAR augmentation on a batch of tensors: zero-pad by `padding`, crop back at a random
    offset, and mirror half of the images horizontally (one offset per batch keeps it a single slice)."""

    def __init__(self, padding: int = 4, flip: bool = True):
        self.padding, self.flip = padding, flip

    def filter_batch(self, model, x, y, epoch):
        if self.padding:
            p = self.padding
            h, w = x.shape[-2:]
            i, j = (int(v) for v in torch.randint(0, 2 * p + 1, (2,)))
            x = F.pad(x, (p, p, p, p))[..., i:i + h, j:j + w]
        if self.flip:
            mirror = torch.rand(len(x), device=x.device) < 0.5
            x = torch.where(mirror[:, None, None, None], x.flip(-1), x)
        return x, y


@dataclass
class RunResult:
    """What one trained model gives: accuracies, last-layer geometry, confusion and corruption results."""
    dataset: str
    variant: Variant
    seed: int
    best_acc: float            # best test accuracy over the epochs (what the paper's code reports)
    final_acc: float
    history: dict
    class_cosine: np.ndarray   # (m, m) cosine between class vectors, final model
    confusion: np.ndarray      # (m, m) test confusions, final model
    spearman: float            # rho of confusions vs class-vector cosine over ordered class pairs
    image_class_cosine: float  # mean cos(image embedding, predicted class vector)
    compactness: float
    separability: float
    corrupted_acc: dict[str, float]
    lookalike_contrast: float  # mean class-vector cosine within LOOKALIKES groups minus other pairs (NaN: none)
    model: torch.nn.Module | None = None

    def row(self) -> dict:
        v = self.variant
        off = self.class_cosine[~np.eye(len(self.class_cosine), dtype=bool)]
        return {"dataset": self.dataset, "variant": v.name, "head": v.head, "fixed": v.fixed, "scale": v.scale,
                "lr": v.lr, "seed": self.seed, "best_acc": self.best_acc, "final_acc": self.final_acc,
                "spearman": self.spearman, "class_vector_cosine": float(off.mean()),
                "lookalike_contrast": self.lookalike_contrast, "image_class_cosine": self.image_class_cosine,
                "compactness": self.compactness, "separability": self.separability, **self.corrupted_acc}


def build_model(backbone: str, variant: Variant, in_channels: int, num_classes: int, **backbone_kwargs):
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")
    model = BACKBONES[backbone](in_channels=in_channels, num_classes=num_classes, **backbone_kwargs)
    return attach_head(model, kind=variant.head, fixed=variant.fixed, scale=variant.scale)


@torch.no_grad()
def analyse(model, test: Split, num_classes: int) -> dict:
    """Last-layer and embedding measurements of a trained model on `test` (eval mode)."""
    model.eval()
    feats = apply_batched(model.features, test.x)
    pred = model.head(feats).argmax(1)
    w = model.head.class_vectors()
    cos = metrics.cosine_matrix(w)
    conf = metrics.confusion_matrix(pred, test.y, num_classes)
    unit = F.normalize(feats, dim=1)  # the geometry a cosine head sees; compactness is scale-free anyway
    return {"class_cosine": cos.cpu().numpy(), "confusion": conf.numpy(),
            "spearman": metrics.confusion_cosine_correlation(conf, cos.cpu()).rho,
            "image_class_cosine": metrics.image_class_cosine(feats, w, pred),
            "compactness": metrics.compactness(unit, test.y), "separability": metrics.separability(unit, test.y)}


def run(bench: Bench, variant: Variant, seed: int, *, backbone: str = "convnet", backbone_kwargs: dict | None = None,
        epochs: int = 3, batch_size: int = 128, momentum: float = 0.9, nesterov: bool = True,
        schedule: str = "plateau", plateau_factor: float = 0.2, plateau_patience: int = 3, augment: bool = False,
        device="auto", keep_model: bool = False) -> RunResult:
    """Train one model (weights and class vectors seeded by `seed`, so every variant of a seed starts
    from the same draw) with SGD, then analyse it. schedule 'plateau' is the paper code's
    ReduceLROnPlateau on test accuracy; 'cosine' anneals the rate to 0 over `epochs`, for runs too
    short to ever reach a plateau."""
    if schedule not in ("plateau", "cosine"):
        raise ValueError(f"unknown schedule {schedule!r}; choose 'plateau' or 'cosine'")
    torch.manual_seed(seed)
    m = len(bench.classes)
    model = build_model(backbone, variant, bench.train.x.shape[1], m, **(backbone_kwargs or {}))
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=variant.lr, optimizer="sgd", momentum=momentum,
                         nesterov=nesterov, weight_decay=variant.weight_decay, seed=seed, device=str(device))
    if schedule == "cosine":
        sched = lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    else:
        sched = lambda opt: torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=plateau_factor,
                                                                       patience=plateau_patience)
    result = fit(model, bench.train, bench.test, config, scheduler=sched,
                 callbacks=[RandomCropFlip()] if augment else [])
    found = analyse(model, bench.test, m)
    corrupted = {k: evaluate(model, s)[1] for k, s in bench.corrupted.items()}
    groups = [[bench.classes.index(c) for c in g] for g in LOOKALIKES.get(bench.name, [])]
    contrast = metrics.group_contrast(found["class_cosine"], groups) if groups else float("nan")
    return RunResult(bench.name, variant, seed, max(result.history["test_acc"]), result.history["test_acc"][-1],
                     result.history, corrupted_acc=corrupted, lookalike_contrast=contrast,
                     model=model.cpu() if keep_model else None, **found)


def run_grid(bench: Bench, variants: list[Variant], seeds: list[int], *, keep_models_of_seed: int | None = None,
             **kwargs) -> list[RunResult]:
    """`run` for every variant and seed; keeps the models of one seed (for pictures) if asked."""
    return [run(bench, v, s, keep_model=(s == keep_models_of_seed), **kwargs) for s in seeds for v in variants]


def frame(runs: list[RunResult]) -> pd.DataFrame:
    """One row per run: the scalar results."""
    return pd.DataFrame([r.row() for r in runs])


def summary(df: pd.DataFrame, columns: list[str], by=("dataset", "variant"), digits: int = 3,
            scale: float = 1.0) -> pd.DataFrame:
    """'mean ± std' over seeds of `columns` per group, in the order the groups first appear."""
    def fmt(v):
        v = np.asarray(v, float) * scale
        if np.isnan(v).all():
            return "n/a"
        return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}" if len(v) > 1 else f"{v.mean():.{digits}f}"
    return df.groupby(list(by), sort=False)[columns].agg(fmt)

