"""The geometry paper's library: long-tail counts, guided placement, exact class areas, the recorder."""
import math

import numpy as np
import pytest
import torch

from lastlayer.papers.geometry import experiments as g
from lastlayer.data import Split
from lastlayer.models.embed2d import Embed2dCNN, NormConstrainedLinear
from lastlayer.training.trainer import TrainConfig


def toy_split(per_class=40, classes=10, size=28):
    y = torch.arange(classes).repeat_interleave(per_class)
    x = torch.rand(len(y), 1, size, size)
    return Split(x, y, [str(c) for c in range(classes)])


def test_long_tail_fractions_follow_the_paper():
    g_c = g.long_tail_fractions(10, 0.5)
    assert g_c[0] == pytest.approx(0.25)
    assert np.allclose(g_c[1:] / g_c[:-1], 0.5)
    with pytest.raises(ValueError, match="p must lie"):
        g.long_tail_fractions(10, 1.0)


def test_long_tail_counts_respect_the_order():
    available = np.full(4, 800)
    counts = g.long_tail_counts(available, p=0.5, order=[2, 0, 3, 1])
    # ranks 1..4 keep 1/4, 1/8, 1/16, 1/32 of 800
    assert counts.tolist() == [100, 25, 200, 50]
    with pytest.raises(ValueError, match="permutation"):
        g.long_tail_counts(available, 0.5, order=[0, 0, 1, 2])
    with pytest.raises(ValueError, match="without a single training image"):
        g.long_tail_counts(np.full(10, 10), 0.5)


def test_long_tail_subsets_each_class_and_is_seeded():
    split = toy_split(per_class=64, classes=4)
    lt = g.long_tail(split, 0.5, seed=1)
    assert g.class_counts(lt).tolist() == [16, 8, 4, 2]
    assert torch.equal(lt.x, g.long_tail(split, 0.5, seed=1).x)
    assert not torch.equal(lt.x, g.long_tail(split, 0.5, seed=2).x)
    test = g.balanced_subset(split, 5)
    assert g.class_counts(test).tolist() == [5, 5, 5, 5]
    with pytest.raises(ValueError, match="per_class"):
        g.balanced_subset(split, 65)


def _angle_slot(direction, n):
    return round(math.atan2(direction[1], direction[0]) / (2 * math.pi / n)) % n


def test_guided_zigzag_puts_similar_counts_side_by_side():
    counts = np.array([5, 900, 40, 300, 10, 20, 600, 80, 160, 2])
    d = g.guided_directions(counts, "zigzag")
    assert np.allclose(np.linalg.norm(d, axis=1), 1)
    slots = {k: _angle_slot(d[k], 10) for k in range(10)}
    assert len(set(slots.values())) == 10  # equally spaced, one class per slot
    ranked = sorted(range(10), key=lambda k: -counts[k])
    assert slots[ranked[0]] == 0
    # neighbours on the circle differ by at most two ranks
    by_slot = {s: ranked.index(k) for k, s in slots.items()}
    for s in range(10):
        assert abs(by_slot[s] - by_slot[(s + 1) % 10]) <= 2


def test_guided_ring_and_bad_layout():
    counts = np.array([30, 10, 20])
    d = g.guided_directions(counts, "ring")
    assert [_angle_slot(d[k], 3) for k in range(3)] == [0, 2, 1]
    with pytest.raises(ValueError, match="layout"):
        g.guided_directions(counts, "spiral")


def test_init_guided_keeps_the_mean_norm_and_works_on_constrained_heads():
    head = torch.nn.Linear(2, 4, bias=False)
    mean_norm = float(head.weight.detach().norm(dim=1).mean())
    g.init_guided(head, [4, 3, 2, 1])
    assert torch.allclose(head.weight.norm(dim=1), torch.full((4,), mean_norm), atol=1e-6)
    assert torch.allclose(head.weight[0] / mean_norm, torch.tensor([1.0, 0.0]), atol=1e-6)
    constrained = NormConstrainedLinear(2, 4, norm=3.0)
    g.init_guided(constrained, [4, 3, 2, 1])
    assert torch.allclose(constrained.weight.norm(dim=1), torch.full((4,), 3.0))
    with pytest.raises(ValueError, match="classes, 2"):
        g.init_guided(torch.nn.Linear(3, 4, bias=False), [4, 3, 2, 1])


def test_a_vector_inside_the_hull_has_no_area():
    w = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0], [0.1, 0.2]])
    areas = g.class_areas(w)
    assert areas[4] == 0
    assert np.allclose(areas[:4], 0.25)
    # the same vector pushed outside the hull wins a wedge
    w[4] = [0.1, 3.0]
    assert g.class_areas(w)[4] > 0 and g.class_areas(w)[1] == 0  # and now (0, 1) is inside


def test_areas_match_dense_argmax_over_directions():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(10, 2)) * rng.uniform(0.2, 3, size=(10, 1))
    theta = np.linspace(0, 2 * np.pi, 200_000, endpoint=False)
    u = np.stack([np.cos(theta), np.sin(theta)], 1)
    dense = np.bincount((u @ w.T).argmax(1), minlength=10) / len(u)
    assert np.allclose(g.class_areas(w), dense, atol=1e-4)
    assert g.class_areas(w).sum() == pytest.approx(1)
    assert np.allclose(g.embedding_shares(w, u), dense)


def test_degenerate_hulls():
    assert g.class_areas(np.array([[1.0, 1.0], [1.0, 1.0]])).tolist() == [1.0, 0.0]  # a tie: first wins
    collinear = g.class_areas(np.array([[1.0, 0.0], [2.0, 0.0], [-1.0, 0.0]]))
    assert np.allclose(collinear, [0, 0.5, 0.5])
    with pytest.raises(ValueError, match="classes, 2"):
        g.class_areas(np.zeros((3, 3)))


def test_turn_angles_and_order():
    a = np.array([[1.0, 0.0], [0.0, 2.0]])
    b = np.array([[1.0, 1.0], [0.0, -1.0]])
    assert np.allclose(g.turn_angles(a, b), [45, 180])
    assert g.angular_order(np.array([[0.0, 1.0], [1.0, 0.0], [-1.0, 0.0]])) == [0, 2, 1]


def test_epochs_to():
    assert g.epochs_to([0.1, 0.5, 0.9, 1.0, 1.0, 1.0], 0.95) == 4
    with pytest.raises(ValueError):
        g.epochs_to([])


def test_train_arm_records_vectors_and_freezes_the_fixed_arm():
    split = toy_split(per_class=8, classes=4)
    config = TrainConfig(epochs=1, batch_size=16, lr=1e-3, optimizer="adam", device="cpu")
    fixed = g.train_arm("fixed", 0, split, split, config)
    assert fixed.trajectory.shape == (2, 4, 2)
    assert np.allclose(fixed.trajectory[0], fixed.trajectory[-1])
    random = g.train_arm("random", 0, split, split, config)
    assert not np.allclose(random.trajectory[0], random.trajectory[-1])
    norm = g.train_arm("norm", 0, split, split, config, constrain_norm=2.0)
    assert np.allclose(np.linalg.norm(norm.trajectory, axis=2), 2.0, atol=1e-5)
    # the same seed gives the random and the norm arm the same initial directions
    assert np.allclose(g.turn_angles(random.trajectory[0], norm.trajectory[0]), 0, atol=1e-3)
    assert random.test_embedding.shape == (len(split), 2)
    with pytest.raises(ValueError, match="unknown arm"):
        g.train_arm("bogus", 0, split, split, config)


def test_models_split_features_and_head():
    model = Embed2dCNN(classes=10)
    x = torch.rand(3, 1, 28, 28)
    assert model.features(x).shape == (3, 2)
    assert torch.allclose(model(x), model.head(model.features(x)))
    assert model.head.bias is None
    with pytest.raises(ValueError, match="28x28"):
        model(torch.rand(1, 1, 32, 32))
    with pytest.raises(ValueError, match="positive"):
        NormConstrainedLinear(2, 10, norm=0)
