"""Former home of the ASV paper's image folders and of `RandomResizedCrop`: image folders now load through
`lastlayer.data.load('folder:<path>', split)` / `lastlayer.data.load_folder`, and the augmentation lives in
`lastlayer.augment`. These names remain until their callers move.

The ASV subsets (Car, Food, Fungi: 10 classes each, from VMMRdb, iFood 2019 and iNaturalist 2019; file lists
in the official repository hecwitane/ASV-pub under dataset/<name>/files.txt) are not distributed with this
project; they live as `<root>/<name>/{train,val}/<class>/*.jpg`, the root defaulting to `$LASTLAYER_DATA/asv`.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from lastlayer.augment import RandomResizedCrop  # noqa: F401  (former import path)
from lastlayer.data import DataError, Split, data_root, load_folder

ASV_DATASETS = ("car", "food", "fungi")


def default_root(root: str | os.PathLike | None = None) -> Path:
    """The image-folder root: the argument, else `$LASTLAYER_DATA/asv`."""
    return Path(root).expanduser() if root is not None else data_root() / "asv"


def load_image_folder(name: str, split: str = "train", *, root: str | os.PathLike | None = None,
                      size: int = 224, device: str | torch.device = "cpu") -> Split:
    """One split ('train' or 'val') of `<root>/<name>`; see `lastlayer.data.load_folder`."""
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', not {split!r}")
    folder = default_root(root) / name
    if not (folder / split).is_dir():
        known = f" (the paper's subsets are {', '.join(ASV_DATASETS)})" if name not in ASV_DATASETS else ""
        raise DataError(
            f"image folder {folder / split} not found{known}. The ASV paper's Car, Food and Fungi subsets are not "
            f"distributed with this project: build them from the file lists of hecwitane/ASV-pub "
            f"(dataset/<name>/files.txt) as <root>/<name>/train/<class>/*.jpg and <root>/<name>/val/<class>/*.jpg, "
            f"and pass their root (default $LASTLAYER_DATA/asv).")
    return load_folder(folder, split, size=size, device=device)
