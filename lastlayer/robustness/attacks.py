"""The fast gradient sign method (Goodfellow et al. 2015): one step of size eps along the sign of the
input gradient of the loss, clipped back to the valid pixel range."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from lastlayer.data import Split


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *,
         clamp: tuple[float, float] | None = (0.0, 1.0)) -> torch.Tensor:
    """x + eps * sign(grad_x cross_entropy(model(x), y)), clipped to `clamp` (None: no clipping).

    The model is used in eval mode and its parameters' gradients are left untouched.
    """
    if eps < 0:
        raise ValueError(f"eps must be non-negative, not {eps}")
    was_training = model.training
    model.eval()
    x = x.detach().clone().requires_grad_(True)
    try:
        with torch.enable_grad():
            loss = F.cross_entropy(model(x), y)
            (grad,) = torch.autograd.grad(loss, x)
    finally:
        model.train(was_training)
    adv = x.detach() + eps * grad.sign()
    return adv.clamp(*clamp) if clamp is not None else adv


def adversarial_accuracy(model: nn.Module, data: Split, eps: float, *, source: nn.Module | None = None,
                         batch_size: int = 2048) -> float:
    """Accuracy of `model` on FGSM images of `data` made with the gradients of `source` (default: `model`
    itself, the white-box attack; another model gives a transfer attack)."""
    source = source if source is not None else model
    was_training = model.training
    model.eval()
    correct = 0
    for start in range(0, len(data), batch_size):
        x, y = data.x[start:start + batch_size], data.y[start:start + batch_size]
        adv = fgsm(source, x, y, eps)
        with torch.no_grad():
            correct += int((model(adv).argmax(1) == y).sum())
    model.train(was_training)
    return correct / len(data)
