"""Gradient attacks on image classifiers, in pixel units under an L-infinity budget eps.

fgsm: the fast gradient sign method (Goodfellow et al. 2015), one step of size eps along the sign of the input
gradient of the loss, clipped back to the valid pixel range. pgd: projected gradient descent (Madry et al.
2018), several such steps of a smaller size, each projected back into the eps-ball around the clean image."""
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


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, steps: int = 10,
        step_size: float | None = None, random_start: bool = True, clamp: tuple[float, float] | None = (0.0, 1.0),
        generator: torch.Generator | None = None) -> torch.Tensor:
    """`steps` signed-gradient steps of `step_size` (default 2.5 eps / steps, Madry et al.'s choice), each
    followed by projection onto the eps-ball around x and onto `clamp`; from a uniform random point of the
    ball when `random_start`. The model is used in eval mode and its parameters' gradients are left untouched.
    """
    if eps < 0:
        raise ValueError(f"eps must be non-negative, not {eps}")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, not {steps}")
    step_size = 2.5 * eps / steps if step_size is None else step_size
    x = x.detach()
    adv = x.clone()
    if random_start:
        noise = torch.rand(x.shape, generator=generator, device="cpu" if generator is None else generator.device)
        adv = adv + eps * (2 * noise.to(x.device, x.dtype) - 1)
    was_training = model.training
    model.eval()
    try:
        for _ in range(steps):
            adv = _project(adv, x, eps, clamp).requires_grad_(True)
            with torch.enable_grad():
                (grad,) = torch.autograd.grad(F.cross_entropy(model(adv), y), adv)
            adv = adv.detach() + step_size * grad.sign()
    finally:
        model.train(was_training)
    return _project(adv, x, eps, clamp)


def _project(adv: torch.Tensor, x: torch.Tensor, eps: float, clamp) -> torch.Tensor:
    adv = torch.max(torch.min(adv, x + eps), x - eps)
    return adv.clamp(*clamp) if clamp is not None else adv


ATTACKS = {"fgsm": fgsm, "pgd": pgd}


def adversarial_accuracy(model: nn.Module, data: Split, eps: float, *, source: nn.Module | None = None,
                         attack: str = "fgsm", batch_size: int = 2048, **attack_kwargs) -> float:
    """Accuracy of `model` on adversarial images of `data` made by `attack` ('fgsm' or 'pgd', with
    `attack_kwargs`) with the gradients of `source` (default: `model` itself, the white-box attack; another
    model gives a transfer attack)."""
    if attack not in ATTACKS:
        raise ValueError(f"unknown attack {attack!r}; choose one of {', '.join(ATTACKS)}")
    make = ATTACKS[attack]
    source = source if source is not None else model
    was_training = model.training
    model.eval()
    correct = 0
    for start in range(0, len(data), batch_size):
        x, y = data.x[start:start + batch_size], data.y[start:start + batch_size]
        adv = make(source, x, y, eps, **attack_kwargs)
        with torch.no_grad():
            correct += int((model(adv).argmax(1) == y).sum())
    model.train(was_training)
    return correct / len(data)
