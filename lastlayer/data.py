"""Datasets as tensors, from one entry point: `load(name, split)` -> `Split`.

Names: 'mnist', 'fashion_mnist', 'cifar10', 'cifar100', 'stl10', and 'folder:<path>' for an image folder
(`<path>/<split>/<class>/*.jpg`, torchvision's ImageFolder layout; a relative path is taken under the data
root). Images that fit in memory live as one tensor on the training device and are batched by indexing
(`batches`), never through a per-image DataLoader.

Files follow torchvision's layout under the data root (`$LASTLAYER_DATA`, else ./data). The rules:
- every file is checked against the official md5 before it is read, and a bad file is named, never replaced;
- the root is never written to except to add missing files, and only if it exists and is writable: torchvision
  downloads into a temporary folder elsewhere and only files whose md5 is right are copied in, so a failed
  download leaves the root as it was, and its reason ends up in the error. A root that does not exist (a
  mistyped `$LASTLAYER_DATA`) is never created.
- torchvision parses what it parses in place (CIFAR-10/100, image folders); MNIST's gzipped idx files are read
  here, because torchvision would first extract them into the root, and STL-10's labelled files too, because
  torchvision refuses to read them without the 2.4 GB unlabelled file beside them.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lastlayer.environment import DATA_ENV

DATASETS = ("mnist", "fashion_mnist", "cifar10", "cifar100", "stl10")
FOLDER_PREFIX = "folder:"

_C10 = [(f"data_batch_{i}", m) for i, m in enumerate([
    "c99cafc152244af753f735de768cd75f", "d4bba439e000b95fd0a9bffe97cbabec", "54ebc095f3ab1f0389bbae665268c751",
    "634d18415352ddfa80567beed471001a", "482c414d41f54cd18b22e5b47cb7c3cb"], start=1)]
_C10 += [("test_batch", "40351d587109b95175f43aff81a1287e"), ("batches.meta", "5ff9c542aee3614f3951f8cda6e48888")]
_C100 = [("train", "16019d7e3df5f24257cddd939b257f8d"), ("test", "f0ef6b0ae62326f3e7ffdfab6717acfc"),
         ("meta", "7973b15100ade9c7d40fb424638fde48")]

# name -> (folder under the root, {split: [(file, md5), ...]}, class names or None when the files hold them).
# torchvision's CIFAR reader checks every file of both splits, so each split needs them all.
_FILES = {
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
    }, ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]),
    "cifar10": ("cifar-10-batches-py", {"train": _C10, "test": _C10}, None),
    "cifar100": ("cifar-100-python", {"train": _C100, "test": _C100}, None),
    "stl10": ("stl10_binary", {
        "train": [("train_X.bin", "918c2871b30a85fa023e0c44e0bee87f"), ("train_y.bin", "5a34089d4802c674881badbb80307741")],
        "test": [("test_X.bin", "7f263ba9f9e0b06b93213547f721ac82"), ("test_y.bin", "36f9794fa4beb8a2c72628de14fa638e")],
    }, ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]),
}


class DataError(RuntimeError):
    """A dataset file is missing, corrupt or unreadable; the message names the file."""


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: the argument, else $LASTLAYER_DATA, else ./data."""
    return Path(root if root is not None else os.environ.get(DATA_ENV, "data")).expanduser()


@dataclass
class Split:
    """One split of a dataset held as tensors: images `x` (N, C, H, W), labels `y` (N, ...), class names."""
    x: torch.Tensor
    y: torch.Tensor
    classes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.x)

    def to(self, device: str | torch.device) -> "Split":
        return Split(self.x.to(device), self.y.to(device), self.classes)

    def subset(self, index: torch.Tensor) -> "Split":
        return Split(self.x[index], self.y[index], self.classes)

    def sample(self, n, seed: int | torch.Generator = 0, *, stratified: bool = False) -> "Split":
        """A random subset, drawn with `seed` (or a generator, which it advances).

        Plain: `n` examples in random order (None: the split itself). Stratified: `n` examples of every class
        (or `n[k]` of class k, given a sequence), kept in their original order; labels must be (N,)."""
        g = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(seed)
        if not stratified:
            if n is None:
                return self
            if not 0 < n <= len(self):
                raise ValueError(f"cannot sample {n} examples from a split of {len(self)}")
            return self.subset(torch.randperm(len(self), generator=g)[:n].to(self.y.device))
        if self.y.ndim != 1:
            raise ValueError(f"a stratified sample needs labels of shape (N,), not {tuple(self.y.shape)}")
        y = self.y.cpu()
        num_classes = max(len(self.classes), int(y.max()) + 1 if len(y) else 0)
        counts = [n] * num_classes if isinstance(n, int) else list(n)
        keep = []
        for k, count in enumerate(counts):
            members = torch.nonzero(y == k).flatten()
            if not 0 <= count <= len(members):
                raise ValueError(f"class {k} has {len(members)} examples; cannot sample {count}")
            keep.append(members[torch.randperm(len(members), generator=g)[:count]])
        return self.subset(torch.cat(keep).sort().values.to(self.y.device))

    def stats(self) -> tuple[float, float]:
        """(mean, std) over every pixel: the statistics `standardize` applies to the other splits."""
        return float(self.x.mean()), float(self.x.std())

    def standardize(self, stats: tuple[float, float] | None = None) -> "Split":
        """(x - mean) / std as a new Split; `stats` are usually the training split's (`train.stats()`),
        by default this split's own."""
        mean, std = self.stats() if stats is None else stats
        return Split((self.x - mean) / std, self.y, self.classes)


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


# --- files: check, and fetch what is missing without ever leaving the root half-written -----------

def _fetch_with_torchvision(name: str, into: str) -> None:
    import torchvision.datasets as tvd
    if name in ("mnist", "fashion_mnist"):
        (tvd.MNIST if name == "mnist" else tvd.FashionMNIST)(into, train=True, download=True)
    elif name == "stl10":
        tvd.STL10(into, split="train", download=True)
    else:
        (tvd.CIFAR10 if name == "cifar10" else tvd.CIFAR100)(into, train=True, download=True)


def _download(name: str, root: Path) -> str | None:
    """Add the missing files of `name` to `root`; None when done, else the reason it could not be done.

    torchvision fetches into a temporary folder outside the root; files are copied in only once every one
    of them has its official md5 (each under a temporary name, then renamed), so a failed download leaves
    the root untouched."""
    if not root.is_dir():
        return f"the data root {root} does not exist (it is never created: check {DATA_ENV})"
    if not os.access(root, os.W_OK):
        return f"the data root {root} is read-only"
    folder, splits, _ = _FILES[name]
    wanted = {f: m for files in splits.values() for f, m in files if not (root / folder / f).exists()}
    try:
        with tempfile.TemporaryDirectory(prefix="lastlayer-download-") as tmp:
            _fetch_with_torchvision(name, tmp)
            for f, expected in wanted.items():
                got = Path(tmp) / folder / f
                if not got.exists() or md5(got) != expected:
                    return f"the download gave no valid {folder}/{f}"
            (root / folder).mkdir(parents=True, exist_ok=True)
            for f in wanted:
                part = root / folder / f".{f}.part"
                shutil.copyfile(Path(tmp) / folder / f, part)
                os.replace(part, root / folder / f)
    except Exception as e:  # no network, disk full, ...: the caller names the missing files and this reason
        return f"{type(e).__name__}: {e}"
    return None


def _checked_files(name: str, split: str, root: Path, download: bool) -> list[Path]:
    folder, splits, _ = _FILES[name]
    files = splits[split]
    paths = [root / folder / f for f, _ in files]
    missing, reason = [p for p in paths if not p.exists()], None
    if missing and download:
        reason = _download(name, root)
        missing = [p for p in paths if not p.exists()]
    if missing:
        why = f" Could not download them: {reason}." if reason else ""
        raise DataError(
            f"{name}: missing file(s) {', '.join(str(p) for p in missing)}.{why} Put the official files there, "
            f"or set {DATA_ENV} to a folder that holds them (torchvision layout), or allow the download.")
    for path, (_, expected) in zip(paths, files):
        actual = md5(path)
        if actual != expected:
            raise DataError(f"{name}: {path} is corrupt or truncated (md5 {actual}, expected {expected}); "
                            f"it was not modified: delete or replace it.")
    return paths


# --- readers ---------------------------------------------------------------------------------------

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


def _read(name: str, split: str, paths: list[Path], root: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """uint8 images (N, C, H, W), int64 labels, class names."""
    classes = _FILES[name][2]
    if name in ("mnist", "fashion_mnist"):
        images, labels = _read_idx(paths[0])[:, None], _read_idx(paths[1]).astype(np.int64)
    elif name == "stl10":
        images = np.fromfile(paths[0], dtype=np.uint8)
        if images.size % (3 * 96 * 96):
            raise DataError(f"{paths[0]}: size is not a whole number of 3x96x96 images")
        images = images.reshape(-1, 3, 96, 96).transpose(0, 1, 3, 2)  # stored column-major
        labels = np.fromfile(paths[1], dtype=np.uint8).astype(np.int64) - 1  # 1..10 on disk
    else:  # CIFAR: torchvision's reader, on files checked above (download=False: it writes nothing)
        import torchvision.datasets as tvd
        ds = (tvd.CIFAR10 if name == "cifar10" else tvd.CIFAR100)(str(root), train=split == "train")
        images, labels, classes = ds.data.transpose(0, 3, 1, 2), np.asarray(ds.targets, np.int64), ds.classes
    if len(images) != len(labels):
        raise DataError(f"{paths[0]}: {len(images)} images but {len(labels)} labels")
    return images, labels, list(classes)


def load_folder(path: str | os.PathLike, split: str = "train", *, size: int = 224,
                device: str | torch.device = "cpu") -> Split:
    """One split of an image folder, `<path>/<split>/<class>/*.jpg` (torchvision's ImageFolder layout), as a
    `Split`: x float32 (N, 3, size, size) in [0, 1], y int64, classes the sorted folder names. Each image is
    decoded once, its shorter side resized to `size` and centre-cropped to size x size."""
    from PIL import Image
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset
    from torchvision.transforms.v2 import functional as TF
    if size < 1:
        raise ValueError(f"size must be positive, not {size}")
    folder = Path(path).expanduser() / split
    if not folder.is_dir():
        raise DataError(f"image folder {folder} not found (expected {folder}/<class>/*.jpg)")
    try:
        classes, class_to_idx = find_classes(str(folder))
        samples = make_dataset(str(folder), class_to_idx, extensions=IMG_EXTENSIONS)
    except FileNotFoundError as e:
        raise DataError(f"image folder {folder} holds no images in class sub-folders (<class>/*.jpg): {e}") from e
    images = []
    for file, _ in samples:
        try:
            with Image.open(file) as im:
                img = TF.pil_to_tensor(im.convert("RGB"))
        except OSError as e:
            raise DataError(f"{file}: unreadable image ({e})") from e
        images.append(TF.center_crop(TF.resize(img, [size], antialias=True), [size, size]))
    y = torch.tensor([c for _, c in samples], dtype=torch.int64)
    return Split((torch.stack(images).float() / 255).to(device), y.to(device), list(classes))


def load(name: str, split: str | None = None, *, root: str | os.PathLike | None = None,
         device: str | torch.device = "cpu", download: bool = True, raw: bool = False,
         size: int = 224) -> Split | tuple[Split, Split]:
    """One split ('train' or 'test'; any sub-folder for image folders) of a dataset as float32 images
    (N, C, H, W) in [0, 1] (0-255 with `raw=True`) and int64 labels. With `split=None`: (train, test), and
    for an image folder (train, val) when it has a 'val' folder. `size`: the side of image-folder images."""
    if name.startswith(FOLDER_PREFIX):
        path = Path(name[len(FOLDER_PREFIX):]).expanduser()
        path = path if path.is_absolute() else data_root(root) / path
        if split is None:
            held_out = "val" if (path / "val").is_dir() else "test"
            return tuple(load_folder(path, s, size=size, device=device) for s in ("train", held_out))
        return load_folder(path, split, size=size, device=device)
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)} or '{FOLDER_PREFIX}<path>'")
    if split is None:
        return tuple(load(name, s, root=root, device=device, download=download, raw=raw) for s in ("train", "test"))
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    root = data_root(root)
    images, labels, classes = _read(name, split, _checked_files(name, split, root, download), root)
    x = torch.from_numpy(np.array(images, order="C")).float()  # a copy: idx arrays are read-only views
    if not raw:
        x /= 255.0
    return Split(x.to(device), torch.from_numpy(labels).to(device), classes)
