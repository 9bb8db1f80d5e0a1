"""Every classifier head of the library: dot product, cosine similarity, norm-constrained; learned or fixed.

A head maps an embedding f (N, d) to logits (N, m) through m class vectors w_1..w_m (rows of `weight`):
- dot:              logits_j = w_j · f + b_j
- cosine:           logits_j = S · cos(w_j, f) + b_j   (both vectors normalised in the forward pass)
- norm-constrained: logits_j = r · (u_j / |u_j|) · f   (`NormConstrainedLinear`: every class vector has
                    length r; only the directions u_j train, so neither the optimiser nor weight decay can
                    change a length)

One mechanism freezes a head: `freeze(module)` turns its parameters into buffers. A buffer is never handed
to an optimiser, receives no gradient, cannot be decayed, and still moves with `.to(device)` and lands in
the `state_dict`. `fixed=True` on a head is `freeze` applied at construction.

Following the official code of Shalev, Shalev & Keshet (arXiv 2011.08704), `ClassifierHead` draws its class
vectors as random integer vectors scaled to unit length, and every class has a bias starting at 0.01.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

KINDS = ("dot", "cosine")


def freeze(module: nn.Module) -> nn.Module:
    """Turn every parameter of `module` (and its children) into a buffer of the same name, in place.

    `model.parameters()` then no longer yields them, so no optimiser built afterwards can change them."""
    for m in module.modules():
        for name, p in list(m._parameters.items()):
            del m._parameters[name]
            m.register_buffer(name, None if p is None else p.detach())
    return module


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
        self.weight = nn.Parameter(random_class_vectors(num_classes, in_features, generator))
        self.bias = None if bias is None else nn.Parameter(torch.full((num_classes,), float(bias)))
        if fixed:
            freeze(self)

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


class NormConstrainedLinear(nn.Module):
    """A bias-free linear classifier whose class vectors all keep one fixed norm.

    Only the directions are trained: the raw parameter `direction` is normalised row by row in every
    forward pass, so neither the optimiser nor weight decay can change a vector's length (the extended
    version of de la Calle et al. constrains the norms this way to speed up convergence). `weight` is the
    (classes, in_features) matrix of class vectors as the forward pass uses them.
    """

    def __init__(self, in_features: int, out_features: int, norm: float = 1.0, *, fixed: bool = False):
        super().__init__()
        if not norm > 0:
            raise ValueError(f"the class vectors' norm must be positive, not {norm}")
        self.in_features, self.out_features, self.norm = in_features, out_features, float(norm)
        self.direction = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.xavier_uniform_(self.direction)
        if fixed:
            freeze(self)

    @property
    def weight(self) -> torch.Tensor:
        return self.norm * F.normalize(self.direction, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight)

    def class_vectors(self) -> torch.Tensor:
        return self.weight.detach()

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, norm={self.norm:g}"
