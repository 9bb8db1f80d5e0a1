"""Datasets as tensors: MNIST, Fashion-MNIST and CIFAR-10 from one data root.

Images that fit in memory live as one tensor on the training device and are batched by indexing
(`batches`), never through a per-image DataLoader. Files follow torchvision's layout under the root
(`MNIST/raw/*.gz`, `FashionMNIST/raw/*.gz`, `cifar-10-batches-py/*`). Every file is checked against the
official md5 before it is read; a root is never written to except by torchvision's own download of files
that are missing.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

DATA_ENV = "LASTLAYER_DATA"

# name -> (folder under the root, {split: [(file, md5), ...]}, class names)
_IDX_SETS = {
    "mnist": ("MNIST/raw", {
        "train": [("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
                  ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432")],
        "test": [("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
                 ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c")],
    }, [str(d) for d in range(10)]),
    "fashion_mnist": ("FashionMNIST/raw", {
        "train": [("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
                  ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe")],
        "test": [("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
                 ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310")],
    }, ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]),
}
_CIFAR10 = ("cifar-10-batches-py", {
    "train": [(f"data_batch_{i}", md5) for i, md5 in enumerate([
        "c99cafc152244af753f735de768cd75f", "d4bba439e000b95fd0a9bffe97cbabec",
        "54ebc095f3ab1f0389bbae665268c751", "634d18415352ddfa80567beed471001a",
        "482c414d41f54cd18b22e5b47cb7c3cb"], start=1)],
    "test": [("test_batch", "40351d587109b95175f43aff81a1287e")],
}, ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"])

DATASETS = ("mnist", "fashion_mnist", "cifar10")


class DataError(RuntimeError):
    """A dataset file is missing, corrupt or unreadable; the message names the file."""


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: the argument, else $LASTLAYER_DATA, else ./data."""
    return Path(root if root is not None else os.environ.get(DATA_ENV, "data")).expanduser()


@dataclass
class Split:
    """One split of a dataset held as tensors: images `x` (N, C, H, W) and labels `y` (N, ...)."""
    x: torch.Tensor
    y: torch.Tensor
    classes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.x)

    def to(self, device: str | torch.device) -> "Split":
        return Split(self.x.to(device), self.y.to(device), self.classes)

    def subset(self, index: torch.Tensor) -> "Split":
        return Split(self.x[index], self.y[index], self.classes)


def batches(n: int, batch_size: int, *, shuffle: bool = True,
            generator: torch.Generator | None = None, device: str | torch.device = "cpu"):
    """Yield index tensors that cover range(n) in batches (the last one may be smaller)."""
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    order = order.to(device)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _checked_files(name: str, folder: Path, files: list[tuple[str, str]], download: bool,
                   root: Path) -> list[Path]:
    paths = [folder / f for f, _ in files]
    missing = [p for p in paths if not p.exists()]
    if missing and download:
        _download(name, root)
        missing = [p for p in paths if not p.exists()]
    if missing:
        raise DataError(
            f"{name}: missing file(s) {', '.join(str(p) for p in missing)}. Put the official files there, "
            f"or set {DATA_ENV} to a folder that holds them (torchvision layout), or allow the download.")
    for path, (_, expected) in zip(paths, files):
        actual = md5(path)
        if actual != expected:
            raise DataError(f"{name}: {path} is corrupt or truncated (md5 {actual}, expected {expected}); "
                            f"it was not modified: delete or replace it.")
    return paths


def _download(name: str, root: Path) -> None:
    """Fetch missing files with torchvision (needs network and a writable root)."""
    import torchvision.datasets as tvd
    cls = {"mnist": tvd.MNIST, "fashion_mnist": tvd.FashionMNIST, "cifar10": tvd.CIFAR10}[name]
    try:
        for train in (True, False):
            cls(str(root), train=train, download=True)
    except Exception as e:  # no network, read-only root, ...: report what is missing instead
        print(f"lastlayer: could not download {name} into {root}: {type(e).__name__}: {e}")


def _read_idx(path: Path) -> np.ndarray:
    """Parse an idx file (gzip'ed): a big-endian header, then raw uint8 data."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    try:
        zeros, dtype, ndim = raw[0:2], raw[2], raw[3]
        if zeros != b"\x00\x00" or dtype != 0x08:
            raise ValueError("not an unsigned-byte idx file")
        shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
        data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
        return data.reshape(shape)
    except (IndexError, ValueError) as e:
        raise DataError(f"{path}: unreadable idx file ({e})") from e


def load_split(name: str, train: bool = True, *, root: str | os.PathLike | None = None,
               download: bool = True, device: str | torch.device = "cpu", raw: bool = False) -> Split:
    """Load one split of `name` ('mnist', 'fashion_mnist' or 'cifar10') as tensors.

    Images are float32 in [0, 1] (or uint8 values as float32 with `raw=True`), shape (N, C, H, W);
    labels are int64.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    root = data_root(root)
    split = "train" if train else "test"
    if name == "cifar10":
        folder, files, classes = _CIFAR10
        paths = _checked_files(name, root / folder, files[split], download, root)
        xs, ys = [], []
        for p in paths:
            with open(p, "rb") as f:
                batch = pickle.load(f, encoding="latin1")
            xs.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(batch["labels"], dtype=np.int64))
        images, labels = np.concatenate(xs), np.concatenate(ys)
    else:
        folder, files, classes = _IDX_SETS[name]
        img_path, lbl_path = _checked_files(name, root / folder, files[split], download, root)
        images, labels = _read_idx(img_path)[:, None], _read_idx(lbl_path).astype(np.int64)
        if len(images) != len(labels):
            raise DataError(f"{img_path}: {len(images)} images but {len(labels)} labels")
    x = torch.from_numpy(images.copy()).float()
    if not raw:
        x /= 255.0
    return Split(x.to(device), torch.from_numpy(labels).to(device), list(classes))


def load(name: str, **kwargs) -> tuple[Split, Split]:
    """(train, test) splits of a dataset; see `load_split`."""
    return load_split(name, True, **kwargs), load_split(name, False, **kwargs)


def normalize(train: Split, *others: Split) -> tuple[Split, ...]:
    """Standardise every split with the training set's mean and std (one scalar each)."""
    mean, std = train.x.mean(), train.x.std()
    return tuple(Split((s.x - mean) / std, s.y, s.classes) for s in (train, *others))
