"""Per-layer signal and gradient variances of a network at initialisation (the ASV poster's variance picture).

For every weight layer l (conv or linear, in the order the forward pass runs them):
- forward: Var(u_l), the variance of the layer's output before its ReLU and pooling — the quantity ASV
  forward keeps constant from layer to layer;
- backward: Var(∂E/∂z_{l-1}), the variance of the gradient with respect to the layer's input — the
  quantity ASV backward keeps constant.
The backward pass starts from a gradient of unit variance at the logits (∂E/∂logits ~ N(0, 1)), so the
numbers do not depend on a loss or on labels. Variances are taken over all elements of the batch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn


@dataclass
class SignalProfile:
    layers: list[str]        # weight layer names, in forward order
    forward: list[float]     # Var(u_l)
    backward: list[float]    # Var(dE/dz_{l-1})

    def table(self):
        import pandas as pd
        return pd.DataFrame({"layer": self.layers, "forward": self.forward, "backward": self.backward},
                            index=pd.RangeIndex(1, len(self.layers) + 1, name="l"))


def signal_variances(model: nn.Module, x: torch.Tensor, *, generator: torch.Generator | None = None
                     ) -> SignalProfile:
    """One forward and one backward pass of the batch `x` through `model` (in eval mode, gradients of the
    parameters left untouched); see the module's docstring for what is recorded."""
    weights = {m: n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    if not weights:
        raise ValueError(f"{type(model).__name__} has no Conv2d or Linear layer to record")
    if x.dim() < 2 or len(x) < 2:
        raise ValueError(f"x must be a batch of at least 2 examples, got shape {tuple(x.shape)}")
    names: list[str] = []
    forward: list[float] = []
    inputs: list[torch.Tensor] = []

    def hook(module, args, out):
        names.append(weights[module])
        forward.append(float(out.detach().double().var()))
        inputs.append(args[0])

    handles = [m.register_forward_hook(hook) for m in weights]
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            x = x.detach().clone().requires_grad_(True)
            logits = model(x)
            seed = torch.randn(logits.shape, generator=generator).to(logits)
            # inputs[0] is x itself; later inputs are intermediate tensors of the graph
            grads = torch.autograd.grad(logits, inputs, seed, allow_unused=True)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    backward = [math.nan if g is None else float(g.double().var()) for g in grads]
    return SignalProfile(names, forward, backward)


def jumps(values: list[float], after: list[int], direction: str = "forward") -> list[float]:
    """log2 of the change of a per-layer variance across the layers whose index (0-based) is in `after`.

    forward: values[l + 1] / values[l] (the signal entering the next layer against this one's output);
    backward: values[l] / values[l + 1] (the gradient at this layer's input against the next one's).
    0 means the variance is kept; +1 doubles, -1 halves.
    """
    if direction not in ("forward", "backward"):
        raise ValueError(f"direction must be 'forward' or 'backward', not {direction!r}")
    out = []
    for l in after:
        if not 0 <= l < len(values) - 1:
            raise ValueError(f"layer index {l} has no next layer among {len(values)} layers")
        a, b = values[l], values[l + 1]
        out.append(math.log2(b / a) if direction == "forward" else math.log2(a / b))
    return out
