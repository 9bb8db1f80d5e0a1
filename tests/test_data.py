import gzip
import shutil

import numpy as np
import pytest
import torch

from lastlayer import data
from lastlayer.augment import RandomCropFlip, RandomResizedCrop, crop_flip, resized_crop
from lastlayer.data import DataError, Split, batches, load


def _idx(images: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, images.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in images.shape)
    return header + images.astype(np.uint8).tobytes()


def _tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _toy(n=12, classes=3):
    return Split(torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1), torch.arange(n) % classes,
                 [str(k) for k in range(classes)])


# --- loading -----------------------------------------------------------------------------------------

def test_mnist_loads_as_tensors(data_root):
    train, test = load("mnist", root=data_root)
    assert train.x.shape == (60000, 1, 28, 28) and test.x.shape == (10000, 1, 28, 28)
    assert train.x.dtype == torch.float32 and 0 <= float(train.x.min()) and float(train.x.max()) <= 1
    assert torch.bincount(test.y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert abs(float(train.x.mean()) - 0.1307) < 1e-3
    assert torch.equal(load("mnist", "test", root=data_root, raw=True).x, test.x * 255)


def test_missing_files_name_them_and_the_variable(tmp_path):
    for name, missing in (("fashion_mnist", "train-images-idx3-ubyte.gz"), ("stl10", "train_X.bin"),
                          ("cifar100", "cifar-100-python"), ("cifar10", "batches.meta")):
        with pytest.raises(DataError, match=missing) as e:
            load(name, "train", root=tmp_path, download=False)
        assert "LASTLAYER_DATA" in str(e.value)
    assert _tree(tmp_path) == []


def test_failed_download_gives_its_reason_and_leaves_the_root_alone(tmp_path, monkeypatch):
    def offline(name, into):
        (data.Path(into) / "MNIST" / "raw").mkdir(parents=True)
        (data.Path(into) / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").write_bytes(b"half a file")
        raise OSError("no network here")
    monkeypatch.setattr(data, "_fetch_with_torchvision", offline)
    with pytest.raises(DataError, match="missing file.*Could not download them: OSError: no network here"):
        load("mnist", "train", root=tmp_path)
    assert _tree(tmp_path) == []


def test_a_download_with_a_bad_file_moves_nothing_in(tmp_path, monkeypatch, data_root):
    def corrupt(name, into):
        shutil.copytree(data_root / "MNIST", data.Path(into) / "MNIST")
        (data.Path(into) / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"junk")
    monkeypatch.setattr(data, "_fetch_with_torchvision", corrupt)
    with pytest.raises(DataError, match="gave no valid MNIST/raw/t10k-labels"):
        load("mnist", "train", root=tmp_path)
    assert _tree(tmp_path) == []


def test_a_good_download_adds_only_the_verified_files(tmp_path, monkeypatch, data_root):
    def fetch(name, into):
        shutil.copytree(data_root / "MNIST", data.Path(into) / "MNIST")
        (data.Path(into) / "MNIST" / "raw" / "extracted-ubyte").write_bytes(b"not wanted")
    monkeypatch.setattr(data, "_fetch_with_torchvision", fetch)
    assert len(load("mnist", "test", root=tmp_path)) == 10000
    assert _tree(tmp_path) == ["MNIST", "MNIST/raw"] + sorted(
        f"MNIST/raw/{f}" for split in data._FILES["mnist"][1].values() for f, _ in split)


def test_no_download_into_a_read_only_or_missing_root(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_fetch_with_torchvision", lambda *a: pytest.fail("must not download"))
    typo = tmp_path / "dta"
    with pytest.raises(DataError, match="does not exist"):
        load("mnist", "train", root=typo)
    assert not typo.exists()  # a mistyped root is never created
    monkeypatch.setattr(data.os, "access", lambda path, mode: False)
    with pytest.raises(DataError, match="read-only"):
        load("mnist", "train", root=tmp_path)


def test_corrupt_file_is_named_and_left_alone(data_root, tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    shutil.copytree(data_root / "MNIST" / "raw", raw)
    victim = raw / "t10k-labels-idx1-ubyte.gz"
    truncated = victim.read_bytes()[:-100]
    victim.write_bytes(truncated)
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz is corrupt or truncated"):
        load("mnist", "test", root=tmp_path)
    assert victim.read_bytes() == truncated  # not overwritten


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


def test_unknown_dataset_and_split():
    with pytest.raises(ValueError, match="unknown dataset 'svhn'"):
        load("svhn")
    with pytest.raises(ValueError, match="split"):
        load("mnist", "validation")


def test_image_folder_loads_by_name(tmp_path):
    from PIL import Image
    for split in ("train", "val"):
        for c, colour in (("a", (255, 0, 0)), ("b", (0, 0, 255))):
            (tmp_path / "toy" / split / c).mkdir(parents=True)
            for i in range(2):
                Image.new("RGB", (40 + 10 * i, 30), colour).save(tmp_path / "toy" / split / c / f"{i}.png")
    train, val = load("folder:toy", root=tmp_path, size=16)  # relative: under the data root
    split = load(f"folder:{tmp_path / 'toy'}", "val", size=16)
    assert torch.equal(split.x, val.x) and len(train) == 4
    assert split.x.shape == (4, 3, 16, 16) and split.y.tolist() == [0, 0, 1, 1] and split.classes == ["a", "b"]
    assert split.x[0, 0].min() == 1.0 and split.x[3, 2].min() == 1.0 and split.x[3, 0].max() == 0.0
    with pytest.raises(DataError, match="not found"):
        load("folder:toy", "test", root=tmp_path)
    (tmp_path / "toy" / "val" / "a" / "0.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="0.png: unreadable image"):
        load("folder:toy", "val", root=tmp_path)


def test_data_root_follows_the_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("LASTLAYER_DATA", str(tmp_path))
    assert data.data_root() == tmp_path
    assert data.data_root("elsewhere") == data.Path("elsewhere")


# --- Split ------------------------------------------------------------------------------------------

def test_batches_cover_every_index_once():
    g = torch.Generator().manual_seed(0)
    seen = torch.cat(list(batches(103, 10, generator=g)))
    assert sorted(seen.tolist()) == list(range(103))
    assert [len(b) for b in batches(25, 10, shuffle=False)] == [10, 10, 5]


def test_split_subset_keeps_pairs_aligned():
    sub = _toy(10).subset(torch.tensor([7, 2]))
    assert sub.y.tolist() == [1, 2] and sub.x.flatten().tolist() == [7.0, 2.0]


def test_sample_is_seeded_and_keeps_pairs_aligned():
    s = _toy(30)
    a, b, c = s.sample(8, 1), s.sample(8, 1), s.sample(8, 2)
    assert torch.equal(a.x, b.x) and not torch.equal(a.x, c.x) and len(a) == 8
    assert torch.equal(a.x.flatten().long() % 3, a.y) and len(set(a.x.flatten().tolist())) == 8
    assert s.sample(None) is s
    with pytest.raises(ValueError, match="cannot sample"):
        s.sample(31)


def test_stratified_sample_takes_n_per_class_in_original_order():
    s = _toy(30)
    per = s.sample(4, 0, stratified=True)
    assert torch.bincount(per.y).tolist() == [4, 4, 4]
    assert per.x.flatten().tolist() == sorted(per.x.flatten().tolist())
    assert torch.bincount(s.sample([1, 0, 5], 0, stratified=True).y, minlength=3).tolist() == [1, 0, 5]
    with pytest.raises(ValueError, match="class 0 has 10"):
        s.sample(11, stratified=True)


def test_standardize_uses_the_given_statistics():
    train, test = _toy(12), Split(torch.full((3, 1, 1, 1), 5.5), torch.zeros(3, dtype=torch.long))
    mean, std = train.stats()
    assert mean == pytest.approx(5.5) and std == pytest.approx(float(torch.arange(12.0).std()))
    z = train.standardize()
    assert abs(float(z.x.mean())) < 1e-6 and float(z.x.std()) == pytest.approx(1.0)
    assert torch.equal(test.standardize(train.stats()).x, torch.zeros(3, 1, 1, 1))
    assert torch.equal(train.x, torch.arange(12.0).view(12, 1, 1, 1))  # a new Split: the old one is untouched
    assert torch.equal(train.standardize().x, (train.x - train.x.mean()) / train.x.std())


# --- augmentation -------------------------------------------------------------------------------------

def _images(n=16, c=2, h=8, w=8):
    return torch.arange(n * c * h * w, dtype=torch.float32).view(n, c, h, w)


def test_crop_flip_matches_a_per_image_reference():
    x, p = _images(), 3
    g = torch.Generator().manual_seed(0)
    top, left = torch.randint(0, 2 * p + 1, (2, len(x)), generator=g)
    flip = torch.rand(len(x), generator=g) < 0.5
    out = crop_flip(x, top, left, flip, p)
    padded = torch.nn.functional.pad(x, (p,) * 4)
    for i in range(len(x)):
        ref = padded[i, :, top[i]:top[i] + 8, left[i]:left[i] + 8]
        assert torch.equal(out[i], ref.flip(-1) if flip[i] else ref)


def test_random_crop_flip_draws_per_image_and_is_seeded():
    x = _images(64)
    top, left, flip = RandomCropFlip(padding=4, seed=0).draw(64)
    assert len(set(zip(top.tolist(), left.tolist()))) > 10 and 0 < int(flip.sum()) < 64  # offsets differ
    out, y = RandomCropFlip(padding=4, seed=3).filter_batch(None, x, torch.arange(64), 0)
    again, _ = RandomCropFlip(padding=4, seed=3).filter_batch(None, x, torch.arange(64), 0)
    assert out.shape == x.shape and torch.equal(out, again) and torch.equal(y, torch.arange(64))
    assert not torch.equal(out, RandomCropFlip(padding=4, seed=4).filter_batch(None, x, y, 0)[0])
    assert torch.equal(RandomCropFlip(padding=0, flip=False).filter_batch(None, x, y, 0)[0], x)


def test_flip_of_a_flipped_image_is_the_image():
    x, zero = _images(4), torch.zeros(4, dtype=torch.long)
    once = crop_flip(x, zero, zero, torch.ones(4, dtype=torch.bool), 0)
    assert torch.equal(once, x.flip(-1)) and torch.equal(crop_flip(once, zero, zero, torch.ones(4, dtype=torch.bool), 0), x)


def test_resized_crop_maps_boxes_as_an_image_resize_would():
    x = torch.arange(16.0).repeat(2, 1, 16, 1)  # (2, 1, 16, 16): pixel value = its column
    whole = resized_crop(x, torch.tensor([[0, 0, 16, 16], [0, 0, 16, 16]]))
    assert torch.allclose(whole, x, atol=1e-5)
    out = resized_crop(x, torch.tensor([[0, 0, 16, 16], [2, 4, 8, 8]]))
    u = torch.arange(16.0)
    expected = 4 + (u + 0.5) * 8 / 16 - 0.5  # bilinear sampling of a ramp is exact away from the border
    assert torch.allclose(out[1, 0, 5, 1:15], expected[1:15], atol=1e-5)


def test_random_resized_crop_boxes_are_per_image_valid_and_seeded():
    rrc = RandomResizedCrop(scale=(0.2, 0.5), seed=0)
    boxes = rrc.boxes(200, 32, 48)
    top, left, h, w = boxes.unbind(1)
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= 32).all() and (left + w <= 48).all()
    share = h * w / (32 * 48)
    assert (share > 0.15).all() and (share < 0.56).all() and len(set(boxes[:, 0].tolist())) > 5
    x = torch.rand(8, 3, 32, 48)
    a, _ = RandomResizedCrop(seed=1).filter_batch(None, x, None, 0)
    b, _ = RandomResizedCrop(seed=1).filter_batch(None, x, None, 0)
    assert a.shape == x.shape and torch.equal(a, b)
    whole = RandomResizedCrop(scale=(1.0, 1.0), ratio=(3.0, 3.0)).boxes(3, 32, 48)  # never fits: whole image
    assert whole.tolist() == [[0.0, 0.0, 32.0, 48.0]] * 3
