"""Image-folder datasets as tensors (the ASV paper's Car, Food and Fungi subsets), plus the paper's
random-resized-crop augmentation as a trainer callback.

Layout, as in the official ASV code: `<root>/<name>/train/<class>/*.jpg` and `<root>/<name>/val/<class>/*.jpg`
(torchvision's ImageFolder layout). The root defaults to `$LASTLAYER_DATA/asv`. The three subsets (10 classes
each, from VMMRdb, iFood 2019 and iNaturalist 2019; the file lists are in the official repository
hecwitane/ASV-pub under dataset/<name>/files.txt) are not distributed with this project.

Every image is decoded once, its shorter side resized to `size` and centre-cropped to size x size (the
official validation transform), and kept as one uint8 tensor; `Split` then holds float32 in [0, 1].
Training uses `RandomResizedCrop`, a callback that crops and resizes each image of a batch on the device.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import torch
import torch.nn.functional as F

from lastlayer.data import DataError, Split, data_root
from lastlayer.training.trainer import Callback

ASV_DATASETS = ("car", "food", "fungi")
_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp"}


def default_root(root: str | os.PathLike | None = None) -> Path:
    """The image-folder root: the argument, else `$LASTLAYER_DATA/asv`."""
    return Path(root).expanduser() if root is not None else data_root() / "asv"


def _load_image(path: Path, size: int) -> torch.Tensor:
    from PIL import Image
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            w, h = im.size
            scale = size / min(w, h)
            im = im.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
            left, top = (im.size[0] - size) // 2, (im.size[1] - size) // 2
            im = im.crop((left, top, left + size, top + size))
            data = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8)
    except OSError as e:
        raise DataError(f"{path}: unreadable image ({e})") from e
    return data.view(size, size, 3).permute(2, 0, 1)


def load_image_folder(name: str, split: str = "train", *, root: str | os.PathLike | None = None,
                      size: int = 224, device: str | torch.device = "cpu") -> Split:
    """One split ('train' or 'val') of `<root>/<name>` as a `Split`: x float32 (N, 3, size, size) in [0, 1],
    y int64, classes the sorted folder names. Missing folders and unreadable images are `DataError`s."""
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', not {split!r}")
    if size < 1:
        raise ValueError(f"size must be positive, not {size}")
    folder = default_root(root) / name / split
    if not folder.is_dir():
        known = f" (the paper's subsets are {', '.join(ASV_DATASETS)})" if name not in ASV_DATASETS else ""
        raise DataError(
            f"image folder {folder} not found{known}. The ASV paper's Car, Food and Fungi subsets are not "
            f"distributed with this project: build them from the file lists of hecwitane/ASV-pub "
            f"(dataset/<name>/files.txt) as <root>/<name>/train/<class>/*.jpg and <root>/<name>/val/<class>/*.jpg, "
            f"and pass their root (default $LASTLAYER_DATA/asv).")
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir())
    files = [(p, c) for c, cls in enumerate(classes) for p in sorted((folder / cls).iterdir())
             if p.suffix.lower() in _EXTENSIONS]
    if not files:
        raise DataError(f"image folder {folder} holds no images in class sub-folders (<class>/*.jpg)")
    x = torch.stack([_load_image(p, size) for p, _ in files])
    y = torch.tensor([c for _, c in files], dtype=torch.int64)
    return Split((x.float() / 255).to(device), y.to(device), classes)


class RandomResizedCrop(Callback):
    """torchvision's RandomResizedCrop on a batch of tensors: for each image, a crop covering a random
    `scale` share of its area with aspect ratio in `ratio` (log-uniform), resized back to the image size.
    Ten tries per image, then the whole image, as torchvision does."""

    def __init__(self, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), seed: int = 0):
        if not 0 < scale[0] <= scale[1] <= 1 or not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f"need 0 < scale[0] <= scale[1] <= 1 and 0 < ratio[0] <= ratio[1]; got {scale}, {ratio}")
        self.scale, self.ratio = scale, ratio
        self.generator = torch.Generator().manual_seed(seed)

    def _box(self, h: int, w: int) -> tuple[int, int, int, int]:
        g = self.generator
        log_r = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            area = h * w * (self.scale[0] + (self.scale[1] - self.scale[0]) * float(torch.rand(1, generator=g)))
            r = math.exp(log_r[0] + (log_r[1] - log_r[0]) * float(torch.rand(1, generator=g)))
            cw, ch = round(math.sqrt(area * r)), round(math.sqrt(area / r))
            if 0 < cw <= w and 0 < ch <= h:
                top = int(torch.randint(0, h - ch + 1, (1,), generator=g))
                left = int(torch.randint(0, w - cw + 1, (1,), generator=g))
                return top, left, ch, cw
        return 0, 0, h, w

    def filter_batch(self, model, x: torch.Tensor, y: torch.Tensor, epoch: int):
        h, w = x.shape[-2:]
        crops = []
        for img in x:
            top, left, ch, cw = self._box(h, w)
            crop = img[None, :, top:top + ch, left:left + cw]
            crops.append(F.interpolate(crop, size=(h, w), mode="bilinear", align_corners=False, antialias=True))
        return torch.cat(crops), y
