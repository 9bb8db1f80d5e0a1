"""Per-layer signal and gradient variances of a network at initialisation (the ASV poster's variance picture).

For every weight layer l (conv or linear, in the order the forward pass runs them):
- forward: Var(u_l), the variance of the layer's output before its ReLU and pooling — the quantity ASV
  forward keeps constant from layer to layer;
- backward: Var(∂E/∂z_{l-1}), the variance of the gradient with respect to the layer's input — the
  quantity ASV backward keeps constant.
The backward pass starts from a gradient of unit variance at the logits (∂E/∂logits ~ N(0, 1)), so the
numbers do not depend on a loss or on labels. Variances are taken over all elements of the batch.

Between one weight layer and the next the profile also measures what ASV's theory assumes about the ReLU
and pooling there: τ_l = E[z_l²] / Var(u_l) (the second moment reaching the next weight layer against the
variance of this layer's output) and γ_l = E[(∂E/∂u_l)²] / E[(∂E/∂z_l)²] (the share of the gradient's second
moment that flows back through them). `pool_gamma_mc` measures γ the same way on Gaussian inputs.
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
    tau: list[float]         # E[z_l²] / Var(u_l), measured; nan for the last layer
    gamma: list[float]       # E[(dE/du_l)²] / E[(dE/dz_l)²], measured; nan for the last layer


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
    outputs: list[torch.Tensor] = []

    def hook(module, args, out):
        names.append(weights[module])
        forward.append(float(out.detach().double().var()))
        inputs.append(args[0])
        outputs.append(out)

    handles = [m.register_forward_hook(hook) for m in weights]
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            x = x.detach().clone().requires_grad_(True)
            logits = model(x)
            seed = torch.randn(logits.shape, generator=generator).to(logits)
            # inputs[0] is x itself; later inputs are intermediate tensors of the graph
            grads = torch.autograd.grad(logits, inputs + outputs, seed, allow_unused=True)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    n = len(names)
    grad_in, grad_out = grads[:n], grads[n:]
    backward = [math.nan if g is None else float(g.double().var()) for g in grad_in]
    moment = lambda t: math.nan if t is None else float(t.detach().double().pow(2).mean())
    tau = [moment(inputs[l + 1]) / forward[l] for l in range(n - 1)] + [math.nan]
    gamma = [moment(grad_out[l]) / moment(grad_in[l + 1]) for l in range(n - 1)] + [math.nan]
    return SignalProfile(names, forward, backward, tau, gamma)


def pool_gamma_mc(pool, channels: int = 16, size: int = 32, *, batch: int = 8, repeats: int = 16,
                  generator: torch.Generator | None = None) -> list[float]:
    """γ of ReLU followed by `pool` (a function of a 4-d tensor, e.g. `lambda v: F.max_pool2d(v, 3, 2, 1)`),
    measured by Monte Carlo: u ~ N(0, 1) of shape (batch, channels, size, size), a gradient ~ N(0, 1) at the
    pooled output, and E[(∂E/∂u)²] / E[(∂E/∂z)²] per repeat (one value per repeat, for an error bar)."""
    out = []
    for _ in range(repeats):
        u = torch.randn(batch, channels, size, size, generator=generator, dtype=torch.float64, requires_grad=True)
        z = pool(torch.relu(u))
        g = torch.randn(z.shape, generator=generator, dtype=torch.float64)
        (grad,) = torch.autograd.grad(z, u, g)
        out.append(float(grad.pow(2).mean() / g.pow(2).mean()))
    return out


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
