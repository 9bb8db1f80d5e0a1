"""The geometry paper's contribution to `python -m lastlayer bench`: the cost of its paper-scale step.

The `paper` profile trains ResNet-101 with a 2-D embedding on 28x28 MNIST at batch 512: a step that is bound by
kernel launches rather than arithmetic on a large GPU. This measures one training step (forward, backward, Adam)
in fp32 and, on a GPU, in bf16 autocast with channels_last, as `TrainConfig(amp="bf16", channels_last=True)`
would run it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from lastlayer.timing import median_time
from lastlayer.models import create_model

TITLE = "Geometry, paper scale: one ResNet-101 training step (2-D embedding, 28x28 inputs, Adam)"


def _step_seconds(device: torch.device, batch: int, repeats: int, fast: bool) -> float:
    torch.manual_seed(0)
    model = create_model("embed2d_resnet101", num_classes=10, in_channels=1).to(device)
    x = torch.randn(batch, 1, 28, 28, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    if fast:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=5e-4)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=fast)

    def step():
        with autocast:
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return median_time(step, repeats, device)


def bench(device: torch.device, quick: bool) -> list[dict]:
    # the paper's batch on a GPU; on a CPU a small one (a step of batch 512 takes minutes there)
    batch = 512 if device.type == "cuda" else (2 if quick else 16)
    repeats = 1 if quick else (5 if device.type == "cuda" else 3)
    rows = []
    for fast in ((False, True) if device.type == "cuda" else (False,)):
        seconds = _step_seconds(device, batch, repeats, fast)
        rows.append({"title": TITLE, "precision": "bf16 + channels_last" if fast else "fp32", "batch": batch,
                     "s_per_step": seconds, "images_per_s": batch / seconds})
    return rows
