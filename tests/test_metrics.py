"""Core metrics of the last layer and the embedding (lastlayer.metrics), and the corruptions of
lastlayer.robustness."""
import math

import numpy as np
import pytest
import torch

from lastlayer import metrics
from lastlayer.robustness.corruptions import corrupt


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
