"""Former home of STL-10 and CIFAR-100: now `lastlayer.data.load(name, split)` loads every dataset.
These names remain until their callers move to `lastlayer.data.load`."""
from __future__ import annotations

from lastlayer.data import DATASETS, Split, load

EXTRA_DATASETS = ("stl10", "cifar100")
ALL_DATASETS = DATASETS


def load_extra_split(name: str, train: bool = True, **kwargs) -> Split:
    if name not in EXTRA_DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(EXTRA_DATASETS)}")
    return load(name, "train" if train else "test", **kwargs)


def load_dataset(name: str, **kwargs) -> tuple[Split, Split]:
    """(train, test) of any dataset: `lastlayer.data.load(name, **kwargs)`."""
    return load(name, **kwargs)
