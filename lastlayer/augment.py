"""Batch augmentation on the training device, as trainer callbacks (`filter_batch`).

The images of a split live as one tensor on the device (`lastlayer.data`), so augmentations work on a whole
batch at once: every image gets its own random crop / flip / box, drawn from the callback's own seeded
generator (on the CPU, so the draws do not depend on the device), and the batch is transformed without a
Python loop over images — an index grid (`crop_flip`) or one `grid_sample` with per-image affine boxes
(`resized_crop`).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lastlayer.training.trainer import Callback


def crop_flip(x: torch.Tensor, top: torch.Tensor, left: torch.Tensor, flip: torch.Tensor,
              padding: int) -> torch.Tensor:
    """Zero-pad every image of x (N, C, H, W) by `padding`, take the H x W window at (top[i], left[i]) of
    image i, and mirror it horizontally where flip[i]: one gather through an (N, H, W) index grid."""
    n, _, h, w = x.shape
    padded = F.pad(x, (padding,) * 4) if padding else x
    cols = torch.arange(w, device=x.device)
    rows = top.to(x.device)[:, None] + torch.arange(h, device=x.device)                    # (N, H)
    cols = left.to(x.device)[:, None] + torch.where(flip.to(x.device)[:, None], cols.flip(0), cols)  # (N, W)
    out = padded[torch.arange(n, device=x.device)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous()  # advanced indices come first: (N, H, W, C) -> (N, C, H, W)


class RandomCropFlip(Callback):
    """The standard CIFAR augmentation: zero-pad by `padding`, crop back to the image size at a random offset,
    and mirror with probability 1/2 — a fresh offset and coin for every image."""

    def __init__(self, padding: int = 4, flip: bool = True, seed: int = 0):
        if padding < 0:
            raise ValueError(f"padding must be >= 0, not {padding}")
        self.padding, self.flip = padding, flip
        self.generator = torch.Generator().manual_seed(seed)

    def draw(self, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(top, left, flip) for n images."""
        offsets = torch.randint(0, 2 * self.padding + 1, (2, n), generator=self.generator)
        flip = torch.rand(n, generator=self.generator) < 0.5
        return offsets[0], offsets[1], flip & self.flip

    def filter_batch(self, model, x: torch.Tensor, y: torch.Tensor, epoch: int):
        return crop_flip(x, *self.draw(len(x)), self.padding), y


def resized_crop(x: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Crop box i = (top, left, height, width), in pixels, of image i and resize it (bilinear) to the image
    size, for the whole batch in one `grid_sample`: each box is an affine map of the output grid."""
    n, c, h, w = x.shape
    top, left, bh, bw = boxes.to(x.device, x.dtype).unbind(1)
    theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0], theta[:, 0, 2] = bw / w, (2 * left + bw) / w - 1   # box centre in [-1, 1] coordinates
    theta[:, 1, 1], theta[:, 1, 2] = bh / h, (2 * top + bh) / h - 1
    grid = F.affine_grid(theta, [n, c, h, w], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


class RandomResizedCrop(Callback):
    """torchvision's RandomResizedCrop on a batch: for each image, a box covering a random `scale` share of
    its area with aspect ratio in `ratio` (log-uniform), resized back to the image size. Ten tries per image
    (all drawn at once; the first that fits is kept), then the whole image."""

    def __init__(self, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), seed: int = 0):
        if not 0 < scale[0] <= scale[1] <= 1 or not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f"need 0 < scale[0] <= scale[1] <= 1 and 0 < ratio[0] <= ratio[1]; got {scale}, {ratio}")
        self.scale, self.ratio = scale, ratio
        self.generator = torch.Generator().manual_seed(seed)

    def boxes(self, n: int, h: int, w: int, tries: int = 10) -> torch.Tensor:
        """(n, 4) boxes (top, left, height, width) in whole pixels."""
        g, (s0, s1), (r0, r1) = self.generator, self.scale, self.ratio
        area = h * w * (s0 + (s1 - s0) * torch.rand(n, tries, generator=g, dtype=torch.float64))
        r = torch.exp(math.log(r0) + (math.log(r1) - math.log(r0)) * torch.rand(n, tries, generator=g, dtype=torch.float64))
        bw, bh = torch.sqrt(area * r).round(), torch.sqrt(area / r).round()
        fits = (bw > 0) & (bw <= w) & (bh > 0) & (bh <= h)
        first = fits.to(torch.uint8).argmax(1, keepdim=True)  # the first try that fits (0 when none does)
        bw, bh = bw.gather(1, first)[:, 0], bh.gather(1, first)[:, 0]
        none = ~fits.any(1)
        bw, bh = torch.where(none, float(w), bw), torch.where(none, float(h), bh)
        u = torch.rand(2, n, generator=g, dtype=torch.float64)
        top, left = (u[0] * (h - bh + 1)).floor(), (u[1] * (w - bw + 1)).floor()
        return torch.stack([top, left, bh, bw], 1)

    def filter_batch(self, model, x: torch.Tensor, y: torch.Tensor, epoch: int):
        return resized_crop(x, self.boxes(len(x), *x.shape[-2:])), y
