"""Classifier heads: dot product or cosine similarity, with class vectors learned or fixed.

A head maps an embedding f (N, d) to logits (N, m) through m class vectors w_1..w_m:
- dot:    logits_j = w_j · f + b_j
- cosine: logits_j = S · cos(w_j, f) + b_j   (both vectors normalised in the forward pass)

Following the official code of Shalev, Shalev & Keshet (arXiv 2011.08704), class vectors start as
random integer vectors scaled to unit length, and every class has a bias starting at 0.01. A *fixed*
head keeps both as buffers: they are never handed to an optimiser, receive no gradient and cannot be
decayed. A *learned* head starts from the same kind of draw and trains both.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

KINDS = ("dot", "cosine")


def random_class_vectors(num_classes: int, dim: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(num_classes, dim) unit vectors: integer coordinates uniform in [-100, 99], each row divided by its
    L2 norm, as the paper's code draws them (a direction uniform enough on the sphere for d >> m)."""
    if num_classes < 1 or dim < 1:
        raise ValueError(f"need num_classes >= 1 and dim >= 1, got {num_classes} and {dim}")
    w = torch.randint(-100, 100, (num_classes, dim), generator=generator).float()
    return F.normalize(w, dim=1)


class ClassifierHead(nn.Module):
    """Dot-product or cosine classifier whose class vectors (rows of `weight`) are learned or fixed.

    kind: 'dot' or 'cosine'; fixed: keep the random class vectors and the bias frozen; scale: S, the
    factor on the cosine logits (ignored by 'dot'); bias: the initial per-class bias, or None for none.
    """

    def __init__(self, in_features: int, num_classes: int, *, kind: str = "dot", fixed: bool = False,
                 scale: float = 1.0, bias: float | None = 0.01, generator: torch.Generator | None = None):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"unknown head kind {kind!r}; choose one of {', '.join(KINDS)}")
        if not scale > 0:
            raise ValueError(f"the cosine scale S must be positive, got {scale}")
        self.in_features, self.out_features = in_features, num_classes
        self.kind, self.fixed, self.scale = kind, fixed, float(scale)
        weight = random_class_vectors(num_classes, in_features, generator)
        b = None if bias is None else torch.full((num_classes,), float(bias))
        if fixed:
            self.register_buffer("weight", weight)
            self.register_buffer("bias", b)
        else:
            self.weight = nn.Parameter(weight)
            self.bias = None if b is None else nn.Parameter(b)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        if self.kind == "cosine":
            logits = self.scale * F.normalize(f, dim=1) @ F.normalize(self.weight, dim=1).T
        else:
            logits = f @ self.weight.T
        return logits if self.bias is None else logits + self.bias

    def class_vectors(self) -> torch.Tensor:
        """The class vectors as they are now (detached), one row per class."""
        return self.weight.detach()

    def extra_repr(self) -> str:
        s = f", S={self.scale:g}" if self.kind == "cosine" else ""
        return (f"{self.in_features} -> {self.out_features}, {self.kind}{s}, "
                f"{'fixed' if self.fixed else 'learned'}, bias={self.bias is not None}")


def attach_head(model: nn.Module, **kwargs) -> nn.Module:
    """Replace `model.head` by a `ClassifierHead` with the same input and output sizes (kwargs as for
    `ClassifierHead`). Works on every backbone whose head is an `nn.Linear` or a `ClassifierHead`."""
    old = getattr(model, "head", None)
    if old is None or not hasattr(old, "in_features") or not hasattr(old, "out_features"):
        raise TypeError(f"{type(model).__name__} has no `head` with in_features/out_features to replace")
    device = next((t.device for t in old.state_dict().values()), None)
    model.head = ClassifierHead(old.in_features, old.out_features, **kwargs)
    if device is not None:
        model.head.to(device)
    return model
