"""The caching trainer's rules, feature-map datasets and FGSM (lastlayer.papers.feature_cache, lastlayer.robustness.attacks)."""
import math

import pytest
import torch
import torch.nn.functional as F

from lastlayer.robustness.attacks import adversarial_accuracy, fgsm
from lastlayer.data import Split
from lastlayer.papers.feature_cache.experiments import (FeatureCache, feature_map_split, feature_maps, feature_vector, layer_output,
                                     time_to_accuracy)
from lastlayer.models.basenet import BaseNet
from lastlayer.training.trainer import TrainConfig, fit


def test_feature_vector_on_a_hand_made_map():
    # map 0: |values| 1, 3, 1, 3 -> mu 2, sigma sqrt(4 * 1) / 4 = 0.5; map 1: constant -> sigma 0
    maps = torch.tensor([[[[1.0, -3.0], [-1.0, 3.0]], [[2.0, 2.0], [2.0, 2.0]]]])
    v = feature_vector(maps)
    assert v.shape == (1, 4)
    torch.testing.assert_close(v, torch.tensor([[2.0, 0.5, 2.0, 0.0]]))


def test_feature_vector_rejects_flat_input():
    with pytest.raises(ValueError, match="N, C, P, Q"):
        feature_vector(torch.zeros(3, 4))


def test_layer_output_stops_after_the_layer():
    model = BaseNet()
    calls = []
    model.conv2.register_forward_hook(lambda *a: calls.append(1))
    x = torch.rand(3, 1, 28, 28)
    out = layer_output(model, "conv1", x)
    assert out.shape == (3, 10, 24, 24) and not calls
    torch.testing.assert_close(out, model.conv1(x).detach())
    with pytest.raises(ValueError, match="no layer 'conv9'"):
        layer_output(model, "conv9", torch.rand(1, 1, 28, 28))


def test_running_means_and_threshold_update_as_the_notes_say():
    cache = FeatureCache(num_classes=3)
    a, b, c = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), torch.tensor([1.0, 1.0])
    cache.update(torch.stack([a, b]), torch.tensor([0, 0]))
    mean = (a + b) / 2
    torch.testing.assert_close(cache.vectors[0], mean)
    torch.testing.assert_close(cache.counts, torch.tensor([2.0, 0.0, 0.0]))
    cos = math.sqrt(0.5)  # both vectors are at 45 degrees from their mean
    torch.testing.assert_close(cache.thresholds[0], torch.tensor(cos))
    cache.update(c[None], torch.tensor([0]))
    new_mean = (2 * mean + c) / 3
    torch.testing.assert_close(cache.vectors[0], new_mean)
    torch.testing.assert_close(cache.thresholds[0], (2 * torch.tensor(cos) + F.cosine_similarity(c, new_mean, dim=0)) / 3)
    assert cache.counts.tolist() == [3.0, 0.0, 0.0]
    assert cache.vectors[1:].abs().sum() == 0  # other classes untouched


def test_hits_need_the_threshold_and_the_true_label():
    cache = FeatureCache(num_classes=2, compare=">=")
    cache.update(torch.tensor([[1.0, 0.0], [1.0, 0.2], [0.0, 1.0]]), torch.tensor([0, 0, 1]))
    q = torch.tensor([[1.0, 0.05], [1.0, 0.05], [1.0, 1.2], [0.0, 1.0]])
    y = torch.tensor([0, 1, 0, 1])
    # close to class 0 and labelled 0: hit; labelled 1: miss; between the classes: below threshold; class 1 exact: hit
    assert cache.hits(q, y).tolist() == [True, False, False, True]
    cache.compare = "<="
    assert cache.hits(q, y).tolist() == [False, False, False, True]  # exact match equals its threshold of 1


def test_empty_cache_has_no_hits_and_bad_arguments_are_refused():
    cache = FeatureCache(num_classes=2)
    assert not cache.hits(torch.rand(4, 6), torch.zeros(4, dtype=torch.long)).any()
    with pytest.raises(ValueError, match="compare"):
        FeatureCache(2, compare="<")
    with pytest.raises(ValueError, match="labels"):
        cache.update(torch.rand(2, 6), torch.tensor([0, 5]))


class _Hits(FeatureCache):
    """A cache whose hits are the images with an even first pixel, to check what filter_batch drops."""

    def hits(self, v, y):
        return self._x[:, 0, 0, 0] % 2 == 0

    def vectors_of(self, model, x):
        self._x = x
        return super().vectors_of(model, x)


def test_hits_are_dropped_and_misses_kept_and_counted():
    x = torch.arange(8.0).view(8, 1, 1, 1).expand(8, 1, 28, 28).contiguous()
    y = torch.arange(8) % 2
    cache = _Hits(num_classes=2)
    cache.on_train_start(None, None)
    model = BaseNet()
    xk, yk = cache.filter_batch(model, x, y, 0)
    assert xk[:, 0, 0, 0].tolist() == [1.0, 3.0, 5.0, 7.0] and yk.tolist() == [1, 1, 1, 1]
    history = {}
    cache.on_epoch_end(model, 0, history)
    assert history == {"cache_hits": [4], "images_trained": [4]}


def test_caching_trainer_records_hits_and_trains_the_rest():
    torch.manual_seed(0)
    data = Split(torch.rand(96, 1, 28, 28), torch.randint(0, 3, (96,)), ["a", "b", "c"])
    cache = FeatureCache(num_classes=3)
    result = fit(BaseNet(num_classes=3), data, data, TrainConfig(epochs=2, batch_size=16, lr=0.01, device="cpu"),
                 callbacks=[cache])
    h = result.history
    assert [a + b for a, b in zip(h["cache_hits"], h["images_trained"])] == [96, 96]
    assert h["images_trained"] == h["examples"]
    assert int(cache.counts.sum()) >= sum(h["images_trained"]) - 16  # all trained images but the last batch cached


def test_feature_map_dataset_shapes_scale_and_activation():
    model = BaseNet()
    split = Split(torch.rand(5, 1, 28, 28), torch.arange(5), [str(i) for i in range(5)])
    fm, scale = feature_map_split(model, split, maps="all", size=28)
    assert fm.x.shape == (50, 1, 28, 28) and fm.y.tolist() == [i for i in range(5) for _ in range(10)]
    assert fm.x.min() >= 0 and math.isclose(float(fm.x.max()), 1.0, rel_tol=1e-6)
    raw = feature_maps(model, split.x, after_activation=False, maps=3)
    assert raw.shape == (5, 1, 24, 24) and (raw < 0).any()
    test_fm, same = feature_map_split(model, split, scale=2 * scale, maps="mean", size=28)
    assert same == 2 * scale and test_fm.x.shape == (5, 1, 28, 28)
    with pytest.raises(ValueError, match="map 10 does not exist"):
        feature_maps(model, split.x, maps=10)


def test_fgsm_moves_each_pixel_by_at_most_eps_and_stays_valid():
    torch.manual_seed(0)
    model = BaseNet()
    x, y = torch.rand(6, 1, 28, 28), torch.randint(0, 10, (6,))
    before = [p.clone() for p in model.parameters()]
    adv = fgsm(model, x, y, 0.25)
    assert adv.min() >= 0 and adv.max() <= 1
    assert (adv - x).abs().max() <= 0.25 + 1e-6
    moved = (adv - x).abs()[(x > 0.25) & (x < 0.75)]  # pixels that cannot be clipped: eps, or 0 where the gradient is 0
    assert (((moved - 0.25).abs() < 1e-6) | (moved == 0)).all() and (moved > 0).float().mean() > 0.5
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert model.training
    with pytest.raises(ValueError, match="eps"):
        fgsm(model, x, y, -0.1)


def test_fgsm_raises_the_loss_and_zero_eps_changes_nothing():
    torch.manual_seed(0)
    data = Split(torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,)), [str(i) for i in range(10)])
    model = fit(BaseNet(), data, None, TrainConfig(epochs=3, batch_size=16, lr=0.05, device="cpu")).model
    model.eval()
    adv = fgsm(model, data.x, data.y, 0.1)
    assert F.cross_entropy(model(adv), data.y) > F.cross_entropy(model(data.x), data.y)
    assert torch.equal(fgsm(model, data.x, data.y, 0.0), data.x)
    assert adversarial_accuracy(model, data, 0.0) == pytest.approx(float((model(data.x).argmax(1) == data.y).float().mean()))


def test_time_to_accuracy():
    h = {"seconds": [1.0, 2.0, 3.0], "test_acc": [0.5, 0.8, 0.9]}
    assert time_to_accuracy(h, 0.8) == 3.0
    assert math.isnan(time_to_accuracy(h, 0.95))


def test_basenet_interface_and_bad_sizes():
    model = BaseNet(in_channels=3, image_size=32)
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(model(x), model.head(model.features(x)))
    with pytest.raises(ValueError, match="too small"):
        BaseNet(image_size=10)
    with pytest.raises(ValueError, match="activation"):
        BaseNet(activation="gelu")
