"""Algorithmic corruptions of test images in [0, 1], as the fixed-classifier paper applies them with
imgaug: impulse noise, JPEG compression and defocus blur, each at a severity.

JPEG is torchvision's real encoder/decoder (`transforms.v2.functional.jpeg`). Torchvision has no disk
kernel, so defocus blur uses its Gaussian blur: a Gaussian point-spread function whose sigma is the
severity (a disk of radius r has the same second moment as a Gaussian of sigma r/2). No installed
library offers impulse noise, so it follows scikit-image's `random_noise(mode="s&p")`, used by
ImageNet-C: a fraction `amount` of the values is replaced, half by 0 and half by 1.
"""
from __future__ import annotations

import math
import warnings

import torch
import torchvision.transforms.v2.functional as TF


def impulse_noise(x: torch.Tensor, amount: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Salt-and-pepper noise on a fraction `amount` in [0, 1] of the values, drawn independently per channel."""
    if not 0 <= amount <= 1:
        raise ValueError(f"impulse noise amount must be in [0, 1], got {amount}")
    hit = torch.rand(x.shape, generator=generator).to(x.device) < amount
    salt = torch.rand(x.shape, generator=generator).to(x.device) < 0.5
    return torch.where(hit, salt.to(x.dtype), x)


def jpeg(x: torch.Tensor, quality: int) -> torch.Tensor:
    """Encode and decode every image as JPEG at `quality` (1-100)."""
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
    u8 = (x.clamp(0, 1) * 255).round().to(torch.uint8).cpu()
    with warnings.catch_warnings():  # torchvision >= 0.29 flags its codecs as moving to torchcodec; they still work
        warnings.filterwarnings("ignore", "The image decoding and encoding", DeprecationWarning)
        out = TF.jpeg(u8, int(quality))
    return (out.float() / 255).to(x.device)


def defocus_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur with standard deviation `sigma` pixels (kernel truncated at 3 sigma)."""
    if not sigma > 0:
        raise ValueError(f"blur sigma must be positive, got {sigma}")
    k = 2 * math.ceil(3 * sigma) + 1
    return TF.gaussian_blur(x, [k, k], [float(sigma), float(sigma)])


CORRUPTIONS = {"impulse_noise": impulse_noise, "jpeg": jpeg, "defocus_blur": defocus_blur}


def corrupt(x: torch.Tensor, name: str, severity: float, generator: torch.Generator | None = None,
            batch_size: int = 4096) -> torch.Tensor:
    """`x` (N, C, H, W) in [0, 1] under corruption `name` at `severity` (its parameter: amount, quality
    or sigma), processed in batches; the result stays in [0, 1]."""
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; choose one of {', '.join(CORRUPTIONS)}")
    fn = CORRUPTIONS[name]
    kwargs = {"generator": generator} if name == "impulse_noise" else {}
    out = [fn(x[i:i + batch_size], severity, **kwargs) for i in range(0, len(x), batch_size)]
    return torch.cat(out).clamp(0, 1)
