import pytest
import torch
import torch.nn.functional as F

from lastlayer.data import load
from lastlayer.models.pairnet import PairNet, SiameseNet, pair_objective, siamese_objective
from lastlayer.papers.digit_pairs.experiments import build, digit_pairs, to_pairs, train_rounds
from lastlayer.training.trainer import Callback, NonFiniteLossError


def test_pairs_shapes_and_target_rule(data_root):
    ps = digit_pairs(300, seed=1, root=data_root)
    assert ps.train.x.shape == (300, 2, 14, 14) and ps.test.x.shape == (300, 2, 14, 14)
    y = ps.train.y
    assert y.shape == (300, 3)
    assert torch.equal(y[:, 0], (y[:, 1] <= y[:, 2]).long())
    assert float(ps.train.x.max()) > 1  # raw 0-255 values, as the course's generator gives


def test_pairs_are_pooled_mnist_images_used_once(data_root):
    train = load("mnist", "train", root=data_root, raw=True)
    pooled = F.avg_pool2d(train.x, 2).flatten(1)
    ps = digit_pairs(200, seed=3, root=data_root)
    firsts, seconds = ps.train.x[:, 0].flatten(1), ps.train.x[:, 1].flatten(1)
    # locate every image of every pair in the pooled training set
    index = [int(torch.nonzero((pooled == img).all(1))[0]) for img in torch.cat((firsts, seconds))]
    assert len(set(index)) == 400  # no image reused
    labels = train.y[torch.tensor(index)].view(2, 200).T
    assert torch.equal(labels, ps.train.y[:, 1:])


def test_train_and_test_come_from_their_own_splits(data_root):
    test = load("mnist", "test", root=data_root, raw=True)
    pooled_test = F.avg_pool2d(test.x, 2).flatten(1)
    ps = digit_pairs(50, seed=0, root=data_root)
    in_test = lambda img: bool((pooled_test == img).all(1).any())
    assert all(in_test(img) for img in ps.test.x[:, 0].flatten(1))
    assert not any(in_test(img) for img in ps.train.x[:, 0].flatten(1)[:20])


def test_same_seed_same_pairs_other_seed_other_pairs(data_root):
    a, b, c = (digit_pairs(100, s, root=data_root) for s in (5, 5, 6))
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)
    assert not torch.equal(a.train.x, c.train.x)


def test_too_many_pairs_is_a_clear_error():
    x, y = torch.zeros(10, 1, 28, 28), torch.zeros(10, dtype=torch.long)
    with pytest.raises(ValueError, match="need 12 images"):
        to_pairs(x, y, 6, torch.Generator())


def test_normalized_uses_training_statistics(data_root):
    ps = digit_pairs(100, 0, root=data_root).normalized()
    assert abs(float(ps.train.x.mean())) < 1e-4 and abs(float(ps.train.x.std()) - 1) < 1e-4
    assert abs(float(ps.test.x.mean())) > 1e-4  # test standardised with the train statistics, not its own


@pytest.mark.parametrize("bn,skip", [(True, False), (False, True), (True, True)])
def test_models_expose_features_and_head(bn, skip):
    x = torch.randn(5, 2, 14, 14)
    for model in (PairNet(8, 8, 16, bn, skip), SiameseNet(8, 8, 16, bn, skip)):
        model.eval()
        assert torch.allclose(model(x), model.head(model.features(x)))
        assert model(x).shape == (5, 2)
    assert SiameseNet(8, 8, 16).digit_logits(x).shape == (5, 2, 10)


def test_siamese_branch_is_shared_between_the_digits():
    model = SiameseNet(8, 8, 16).eval()
    x = torch.randn(3, 2, 14, 14)
    swapped = x.flip(1)
    assert torch.allclose(model.digit_logits(x), model.digit_logits(swapped).flip(1))


def test_siamese10_reads_out_by_comparing_digits():
    model = SiameseNet(8, 8, 16)
    x = torch.randn(4, 2, 14, 14)
    with torch.no_grad():
        digit = model.digit_logits(x).argmax(2)
    target = (digit[:, 0] <= digit[:, 1]).long()
    y = torch.cat((target[:, None], digit), 1)
    _, correct = siamese_objective(0.0, 1.0, "digits")(model, x, y)
    assert int(correct) == 4
    _, correct = siamese_objective(0.0, 1.0, "digits")(model, x, torch.cat(((1 - target)[:, None], digit), 1))
    assert int(correct) == 0


def test_auxiliary_weight_enters_the_loss():
    torch.manual_seed(0)
    model, x = SiameseNet(8, 8, 16), torch.randn(6, 2, 14, 14)
    y = torch.tensor([[1, 2, 3]] * 6)
    l0, _ = siamese_objective(1.0, 0.0)(model, x, y)
    l1, _ = siamese_objective(1.0, 1.0)(model, x, y)
    l_pair, _ = pair_objective(lambda t: model(t), x, y)
    assert torch.allclose(l0, l_pair) and l1.item() > l0.item()


def test_unknown_kind_and_readout():
    with pytest.raises(ValueError, match="unknown model kind"):
        build("triplet")
    with pytest.raises(ValueError, match="readout"):
        siamese_objective(readout="max")


def test_train_rounds_learns_and_records_divergence(data_root):
    r = train_rounds("siamese10", rounds=2, n=200, epochs=3, c1=8, c2=8, hidden=16, lr=0.25, root=data_root)
    assert len(r.test_acc) == 2 and r.mean > 0.6 and r.diverged == 0
    class Poison(Callback):  # a NaN weight makes the first loss NaN
        def on_train_start(self, model, optimizer):
            next(model.parameters()).data.fill_(float("nan"))

    bad = train_rounds("pair", rounds=2, n=100, epochs=1, c1=8, c2=8, hidden=16, root=data_root,
                       callbacks=lambda r: [Poison()] if r == 0 else [], on_nonfinite="record")
    assert bad.diverged == 1 and bad.mean == bad.test_acc[1]
    with pytest.raises(NonFiniteLossError, match="epoch 1, batch 1"):
        train_rounds("pair", rounds=1, n=100, epochs=1, c1=8, c2=8, hidden=16, root=data_root,
                     callbacks=lambda r: [Poison()])
