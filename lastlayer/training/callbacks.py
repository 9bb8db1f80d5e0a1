"""Per-layer gradient norms per mini-batch (digit_pairs, Figure 2)."""
from __future__ import annotations

import torch.nn as nn

from lastlayer.training.trainer import Callback


class GradientNorms(Callback):
    """Record the L2 norm of each weight layer's gradient after every backward pass.

    `norms[layer]` is a list over mini-batches (epochs concatenated); `max_batches` stops recording early.
    Only weights (parameters with 2 or more dimensions) count as layers; biases and norms are left out.
    """

    def __init__(self, max_batches: int | None = None):
        self.max_batches = max_batches
        self.norms: dict[str, list[float]] = {}
        self._seen = 0

    def after_backward(self, model: nn.Module, epoch: int, batch: int) -> None:
        if self.max_batches is not None and self._seen >= self.max_batches:
            return
        self._seen += 1
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                layer = name.removesuffix(".weight")
                norm = 0.0 if p.grad is None else float(p.grad.norm())
                self.norms.setdefault(layer, []).append(norm)
