import gzip
import shutil
import stat

import numpy as np
import pytest
import torch

from lastlayer import data
from lastlayer.data import DataError, Split, batches, load_split


def _idx(images: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, images.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in images.shape)
    return header + images.astype(np.uint8).tobytes()


def test_mnist_loads_as_tensors(data_root):
    train = load_split("mnist", True, root=data_root)
    test = load_split("mnist", False, root=data_root)
    assert train.x.shape == (60000, 1, 28, 28) and test.x.shape == (10000, 1, 28, 28)
    assert train.x.dtype == torch.float32 and 0 <= float(train.x.min()) and float(train.x.max()) <= 1
    assert torch.bincount(test.y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert abs(float(train.x.mean()) - 0.1307) < 1e-3


def test_missing_files_name_them_and_the_variable(tmp_path):
    with pytest.raises(DataError) as e:
        load_split("fashion_mnist", root=tmp_path, download=False)
    assert "train-images-idx3-ubyte.gz" in str(e.value) and "LASTLAYER_DATA" in str(e.value)


def test_failed_download_still_names_missing_files(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(data, "_download", lambda name, root: calls.append(name))  # no network: nothing arrives
    with pytest.raises(DataError, match="missing file"):
        load_split("mnist", root=tmp_path, download=True)
    assert calls == ["mnist"]


def test_corrupt_file_is_named_and_left_alone(data_root, tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    shutil.copytree(data_root / "MNIST" / "raw", raw, ignore=shutil.ignore_patterns("*ubyte"))
    victim = raw / "t10k-labels-idx1-ubyte.gz"
    truncated = victim.read_bytes()[:-100]
    victim.write_bytes(truncated)
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz is corrupt or truncated"):
        load_split("mnist", False, root=tmp_path, download=False)
    assert victim.read_bytes() == truncated  # not overwritten


def test_read_only_root_is_never_written(data_root, tmp_path):
    root = tmp_path / "ro"
    shutil.copytree(data_root / "MNIST" / "raw", root / "MNIST" / "raw", ignore=shutil.ignore_patterns("*ubyte"))
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    for p in [root, *root.rglob("*")]:
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        split = load_split("mnist", False, root=root)
        assert len(split) == 10000
        assert sorted(p.relative_to(root) for p in root.rglob("*")) == before
    finally:
        for p in [root, *root.rglob("*")]:
            p.chmod(p.stat().st_mode | stat.S_IWUSR)


def test_idx_parser_reads_what_it_is_given(tmp_path):
    images = np.arange(2 * 3 * 4).reshape(2, 3, 4) % 256
    f = tmp_path / "x.gz"
    with gzip.open(f, "wb") as g:
        g.write(_idx(images))
    assert (data._read_idx(f) == images).all()
    with gzip.open(f, "wb") as g:
        g.write(b"\x01\x02\x08\x03junk")
    with pytest.raises(DataError, match="unreadable idx"):
        data._read_idx(f)


def test_unknown_dataset():
    with pytest.raises(ValueError, match="unknown dataset 'svhn'"):
        load_split("svhn")


def test_data_root_follows_the_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("LASTLAYER_DATA", str(tmp_path))
    assert data.data_root() == tmp_path
    assert data.data_root("elsewhere") == data.Path("elsewhere")


def test_batches_cover_every_index_once():
    g = torch.Generator().manual_seed(0)
    seen = torch.cat(list(batches(103, 10, generator=g)))
    assert sorted(seen.tolist()) == list(range(103))
    assert [len(b) for b in batches(25, 10, shuffle=False)] == [10, 10, 5]


def test_split_subset_keeps_pairs_aligned():
    s = Split(torch.arange(10.0).view(10, 1, 1, 1), torch.arange(10))
    sub = s.subset(torch.tensor([7, 2]))
    assert sub.y.tolist() == [7, 2] and sub.x.flatten().tolist() == [7.0, 2.0]
