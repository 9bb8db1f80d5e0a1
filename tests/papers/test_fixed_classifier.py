"""Behaviour of the fixed-classifier paper's library code: heads, metrics, corruptions, data errors."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lastlayer import metrics
from lastlayer.robustness.corruptions import corrupt
from lastlayer.data import DataError, Split
from lastlayer.datasets_extra import load_dataset
from lastlayer.papers.fixed_classifier.experiments import Bench, RandomCropFlip, Variant, paper_variants, run
from lastlayer.heads import ClassifierHead, attach_head, random_class_vectors
from lastlayer.models.convnet import ConvNet
from lastlayer.models.resnet_cifar import resnet18_cifar


def _train_steps(model, steps=3, lr=0.5):
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr, momentum=0.9,
                          weight_decay=5e-4)
    x, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()


def test_class_vectors_are_unit_rows_from_integer_draw():
    g = torch.Generator().manual_seed(0)
    w = random_class_vectors(7, 33, g)
    assert w.shape == (7, 33)
    assert torch.allclose(w.norm(dim=1), torch.ones(7), atol=1e-6)
    g = torch.Generator().manual_seed(0)
    raw = torch.randint(-100, 100, (7, 33), generator=g).float()
    assert torch.allclose(w, raw / raw.norm(dim=1, keepdim=True))


@pytest.mark.parametrize("kind", ["dot", "cosine"])
def test_fixed_head_gets_no_gradient_and_stays_unchanged(kind):
    torch.manual_seed(0)
    model = attach_head(ConvNet(widths=[4, 8, 8]), kind=kind, fixed=True)
    w0, b0 = model.head.weight.clone(), model.head.bias.clone()
    assert not any(p is model.head.weight or p is model.head.bias for p in model.parameters())
    body0 = model.body[0][0].weight.clone()
    _train_steps(model)
    assert model.head.weight.grad is None and model.head.bias.grad is None
    assert torch.equal(model.head.weight, w0) and torch.equal(model.head.bias, b0)
    assert not torch.equal(model.body[0][0].weight, body0)  # the backbone did train


@pytest.mark.parametrize("kind", ["dot", "cosine"])
def test_learned_head_trains(kind):
    torch.manual_seed(0)
    model = attach_head(ConvNet(widths=[4, 8, 8]), kind=kind, fixed=False)
    w0 = model.head.weight.detach().clone()
    _train_steps(model)
    assert not torch.equal(model.head.weight.detach(), w0)


@pytest.mark.parametrize("scale", [1.0, 20.0])
def test_cosine_logits_bounded_by_scale_plus_bias(scale):
    head = ClassifierHead(16, 5, kind="cosine", scale=scale, bias=0.01)
    logits = head(torch.randn(64, 16) * 100)
    assert (logits.abs() <= scale + 0.01 + 1e-5).all()
    f = head.weight[2:3] * 7.0  # an embedding along class 2's vector reaches S + bias exactly
    assert math.isclose(float(head(f)[0, 2].detach()), scale + 0.01, rel_tol=1e-5)


def test_dot_head_is_linear_map_plus_bias():
    head = ClassifierHead(6, 3, kind="dot", bias=0.01)
    f = torch.randn(4, 6)
    assert torch.allclose(head(f), f @ head.weight.T + 0.01)


def test_head_rejects_bad_arguments():
    with pytest.raises(ValueError, match="kind"):
        ClassifierHead(4, 2, kind="arc")
    with pytest.raises(ValueError, match="scale"):
        ClassifierHead(4, 2, kind="cosine", scale=0)
    with pytest.raises(TypeError, match="head"):
        attach_head(torch.nn.Conv2d(1, 1, 1), kind="dot")


def test_heads_swap_on_every_backbone():
    for model, x in ((ConvNet(widths=[4, 8]), torch.randn(2, 1, 28, 28)),
                     (resnet18_cifar(num_classes=7), torch.randn(2, 3, 32, 32))):
        attach_head(model, kind="cosine", fixed=True, scale=20.0)
        model.eval()
        with torch.no_grad():
            assert torch.allclose(model(x), model.head(model.features(x)))
        assert model(x).shape[1] == model.head.out_features


def test_confusion_matrix_counts():
    pred = torch.tensor([0, 1, 1, 2, 2, 2])
    true = torch.tensor([0, 0, 1, 2, 1, 2])
    c = metrics.confusion_matrix(pred, true, 3)
    assert c.tolist() == [[1, 1, 0], [0, 1, 1], [0, 0, 2]]
    with pytest.raises(ValueError, match="outside"):
        metrics.confusion_matrix(torch.tensor([3]), torch.tensor([0]), 3)


def test_spearman_on_hand_made_confusions():
    # 3 classes: the closer the vectors, the more confusions (a perfect rank order over ordered pairs)
    cos = np.array([[1.0, 0.9, 0.1], [0.9, 1.0, 0.5], [0.1, 0.5, 1.0]])
    conf = np.array([[50, 9, 1], [8, 50, 5], [2, 4, 50]])
    pc = metrics.confusion_cosine_correlation(conf, cos)
    # ordered pairs: cos (0.9, 0.1, 0.9, 0.5, 0.1, 0.5) vs conf (9, 1, 8, 5, 2, 4)
    from scipy.stats import spearmanr
    assert math.isclose(pc.rho, spearmanr([0.9, 0.1, 0.9, 0.5, 0.1, 0.5], [9, 1, 8, 5, 2, 4]).statistic)
    assert pc.rho > 0.9
    assert math.isclose(metrics.confusion_cosine_correlation(conf, -cos).rho, -pc.rho)
    sym = metrics.confusion_cosine_correlation(conf, cos, symmetric=True)
    assert len(sym.cosine) == 3 and math.isclose(sym.rho, 1.0)
    assert math.isnan(metrics.confusion_cosine_correlation(np.zeros((3, 3)), cos).rho)


def test_image_class_cosine_compactness_separability():
    w = torch.eye(3)
    f = torch.tensor([[2.0, 0, 0], [0, 3.0, 0], [1.0, 1.0, 0]])
    pred = torch.tensor([0, 1, 0])
    assert math.isclose(metrics.image_class_cosine(f, w, pred), (1 + 1 + 2 ** -0.5) / 3, rel_tol=1e-6)
    labels = torch.tensor([0, 0, 1, 1])
    tight = torch.tensor([[1.0, 0], [2.0, 0], [0, 1.0], [0, 3.0]])
    assert math.isclose(metrics.compactness(tight, labels), 1.0, rel_tol=1e-6)
    assert math.isclose(metrics.separability(tight, labels), 1.0, rel_tol=1e-6)
    assert metrics.compactness(torch.tensor([[1.0, 0], [0, 1.0], [0, 1.0], [0, 1.0]]), labels) < 1
    assert math.isclose(metrics.group_contrast(np.array([[1, .8, 0], [.8, 1, .2], [0, .2, 1]]), [[0, 1]]), 0.7)


def test_corruptions_change_images_within_range_and_reject_bad_severity():
    x = torch.rand(4, 1, 28, 28)
    for name, sev in (("impulse_noise", 0.2), ("jpeg", 10), ("defocus_blur", 1.0)):
        y = corrupt(x, name, sev, generator=torch.Generator().manual_seed(0))
        assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
        assert (y - x).abs().mean() > 0.01
    y = corrupt(x, "impulse_noise", 0.2, generator=torch.Generator().manual_seed(0))
    changed = (y != x).float().mean()
    assert 0.1 < changed < 0.3 and set(y[y != x].unique().tolist()) <= {0.0, 1.0}
    for name, sev in (("impulse_noise", 1.5), ("jpeg", 0), ("defocus_blur", 0.0)):
        with pytest.raises(ValueError):
            corrupt(x, name, sev)
    with pytest.raises(ValueError, match="unknown corruption"):
        corrupt(x, "fog", 1)


def test_missing_extra_datasets_name_the_files(tmp_path):
    for name, missing in (("stl10", "train_X.bin"), ("cifar100", "cifar-100-python")):
        with pytest.raises(DataError, match=missing):
            load_dataset(name, root=tmp_path, download=False)
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("imagenet", root=tmp_path)


def test_random_crop_flip_keeps_shape_and_content():
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.float).view(2, 1, 6, 6)
    torch.manual_seed(0)
    out, y = RandomCropFlip(padding=2).filter_batch(None, x, torch.tensor([0, 1]), 0)
    assert out.shape == x.shape and y.tolist() == [0, 1]
    out, _ = RandomCropFlip(padding=0, flip=False).filter_batch(None, x, None, 0)
    assert torch.equal(out, x)


def test_run_on_tiny_data_keeps_fixed_head_and_reports_metrics():
    g = torch.Generator().manual_seed(0)
    classes = [str(i) for i in range(4)]
    x, y = torch.randn(64, 1, 28, 28, generator=g), torch.arange(64) % 4
    bench = Bench("toy", Split(x, y, classes), Split(x[:32], y[:32], classes),
                  {"jpeg@50": Split(x[:32], y[:32], classes)})
    r = run(bench, Variant("cosine", True, 1.0), seed=0, backbone_kwargs={"widths": [4, 8]}, epochs=1,
            batch_size=16, device="cpu", keep_model=True)
    torch.manual_seed(0)
    fresh = attach_head(ConvNet(widths=[4, 8], num_classes=4), kind="cosine", fixed=True)
    assert torch.equal(r.model.head.weight, fresh.head.weight)  # the seed's draw, untouched by training
    assert r.class_cosine.shape == (4, 4) and r.confusion.sum() == 32
    assert set(r.corrupted_acc) == {"jpeg@50"} and 0 <= r.row()["best_acc"] <= 1
    names = [v.name for v in paper_variants([1, 20], equal_lr_control=True)]
    assert names == ["learned dot", "learned dot lr=0.1", "fixed dot", "learned cosine S=1",
                     "fixed cosine S=1", "learned cosine S=20", "fixed cosine S=20"]
