"""STL-10 and CIFAR-100 as tensors, beside the datasets of `data.py`, for the GPU (`paper`) profiles.

Files follow torchvision's layout under the data root (`stl10_binary/*.bin`, `cifar-100-python/*`),
are checked against the official md5 before they are read, and when missing are fetched by torchvision
if it can (network and a writable root); otherwise `DataError` names the missing files and the variable
to set. `load_dataset(name)` loads any dataset of the library by name.
"""
from __future__ import annotations

import os
import pickle

import numpy as np
import torch

from lastlayer.data import DATASETS, DataError, Split, _checked_files, data_root, load_split

_STL10 = ("stl10_binary", {
    "train": [("train_X.bin", "918c2871b30a85fa023e0c44e0bee87f"), ("train_y.bin", "5a34089d4802c674881badbb80307741")],
    "test": [("test_X.bin", "7f263ba9f9e0b06b93213547f721ac82"), ("test_y.bin", "36f9794fa4beb8a2c72628de14fa638e")],
}, ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"])
_CIFAR100 = ("cifar-100-python", {
    "train": [("train", "16019d7e3df5f24257cddd939b257f8d"), ("meta", "7973b15100ade9c7d40fb424638fde48")],
    "test": [("test", "f0ef6b0ae62326f3e7ffdfab6717acfc"), ("meta", "7973b15100ade9c7d40fb424638fde48")],
})
EXTRA_DATASETS = ("stl10", "cifar100")
ALL_DATASETS = DATASETS + EXTRA_DATASETS


def _fetch(name: str, root) -> None:
    """Let torchvision download what is missing; a failure only prints, `_checked_files` then names the files."""
    import torchvision.datasets as tvd
    try:
        if name == "stl10":
            for split in ("train", "test"):
                tvd.STL10(str(root), split=split, download=True)
        else:
            for train in (True, False):
                tvd.CIFAR100(str(root), train=train, download=True)
    except Exception as e:  # no network, read-only root, ...
        print(f"lastlayer: could not download {name} into {root}: {type(e).__name__}: {e}")


def _files(name: str, spec, split: str, download: bool, root):
    folder, files = spec[0], spec[1][split]
    if download and not all((root / folder / f).exists() for f, _ in files):
        _fetch(name, root)
    return _checked_files(name, root / folder, files, False, root)


def load_extra_split(name: str, train: bool = True, *, root: str | os.PathLike | None = None,
                     download: bool = True, device: str | torch.device = "cpu", raw: bool = False) -> Split:
    """One split of 'stl10' (96x96, 5,000 train / 8,000 test) or 'cifar100' (32x32, fine labels), as
    float32 (N, 3, H, W) in [0, 1] (0-255 with raw=True) and int64 labels."""
    if name not in EXTRA_DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(EXTRA_DATASETS)}")
    root, split = data_root(root), "train" if train else "test"
    if name == "stl10":
        x_path, y_path = _files(name, _STL10, split, download, root)
        images = np.fromfile(x_path, dtype=np.uint8)
        if images.size % (3 * 96 * 96):
            raise DataError(f"{x_path}: size is not a whole number of 3x96x96 images")
        images = images.reshape(-1, 3, 96, 96).transpose(0, 1, 3, 2)  # stored column-major
        labels = np.fromfile(y_path, dtype=np.uint8).astype(np.int64) - 1  # 1..10 on disk
        classes = _STL10[2]
    else:
        data_path, meta_path = _files(name, _CIFAR100, split, download, root)
        with open(data_path, "rb") as f:
            batch = pickle.load(f, encoding="latin1")
        with open(meta_path, "rb") as f:
            classes = list(pickle.load(f, encoding="latin1")["fine_label_names"])
        images = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch["fine_labels"], dtype=np.int64)
    if len(images) != len(labels):
        raise DataError(f"{name}: {len(images)} images but {len(labels)} labels")
    x = torch.from_numpy(np.ascontiguousarray(images)).float()
    if not raw:
        x /= 255.0
    return Split(x.to(device), torch.from_numpy(labels).to(device), list(classes))


def load_dataset(name: str, **kwargs) -> tuple[Split, Split]:
    """(train, test) of any dataset the library knows: those of `data.py` and STL-10, CIFAR-100."""
    if name in DATASETS:
        return load_split(name, True, **kwargs), load_split(name, False, **kwargs)
    if name in EXTRA_DATASETS:
        return load_extra_split(name, True, **kwargs), load_extra_split(name, False, **kwargs)
    raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(ALL_DATASETS)}")
