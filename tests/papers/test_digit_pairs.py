from dataclasses import replace
import pytest
import torch
import torch.nn.functional as F

from lastlayer.data import load
from lastlayer.models import create_model
from lastlayer.models.pairnet import PairNet, SiameseNet, pair_objective, siamese_objective
from lastlayer.papers.digit_pairs.rounds import RoundRow, build, digit_pairs, to_pairs, train_rounds
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
    for name in ("pairnet", "siamese"):
        model = create_model(name, num_classes=2, c1=8, c2=8, hidden=16, batch_norm=bn, skip=skip)
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


def test_build_makes_the_kinds_through_the_registry():
    torch.manual_seed(0)
    pair, _ = build("pair", 8, 8, 16)
    torch.manual_seed(0)
    assert isinstance(pair, PairNet) and torch.equal(pair.head.weight, PairNet(8, 8, 16).head.weight)
    for kind in ("siamese2", "siamese10"):
        model, objective = build(kind, 8, 8, 16, batch_norm=False)
        assert isinstance(model, SiameseNet) and model.head.out_features == 2 and callable(objective)


def test_unknown_kind_and_readout():
    with pytest.raises(ValueError, match="unknown model kind"):
        build("triplet")
    with pytest.raises(ValueError, match="readout"):
        siamese_objective(readout="max")


def test_train_rounds_learns_and_records_divergence(data_root):
    r = train_rounds("siamese10", rounds=2, n_pairs=200, epochs=3, c1=8, c2=8, hidden=16, lr=0.25, root=data_root,
                     experiment="fig1b", varied="lr")
    assert len(r.test_acc) == 2 and r.mean > 0.6 and r.diverged == 0
    rows = r.rows()
    assert all(isinstance(row, RoundRow) for row in rows) and [row.seed for row in rows] == [0, 1]
    assert rows[1].experiment == "fig1b" and rows[1].varied == "lr" and rows[1].n_pairs == 200
    assert rows[1].epochs == 3 and rows[1].test_acc == r.test_acc[1] and not rows[1].diverged
    class Poison(Callback):  # a NaN weight makes the first loss NaN
        def on_train_start(self, model, optimizer):
            next(model.parameters()).data.fill_(float("nan"))

    bad = train_rounds("pair", rounds=2, n_pairs=100, epochs=1, c1=8, c2=8, hidden=16, root=data_root,
                       callbacks=lambda r: [Poison()] if r == 0 else [], on_nonfinite="record")
    assert bad.diverged == 1 and bad.mean == bad.test_acc[1]
    assert [row.diverged for row in bad.rows()] == [True, False]
    with pytest.raises(NonFiniteLossError, match="epoch 1, batch 1"):
        train_rounds("pair", rounds=1, n_pairs=100, epochs=1, c1=8, c2=8, hidden=16, root=data_root,
                     callbacks=lambda r: [Poison()])


def test_run_trains_every_experiment_once_and_decides(data_root):
    """`run` at a tiny size: Table I, each sweep's values other than Table I's, Figure 2 with and without
    batch norm; the rows decide every claim."""
    from lastlayer.papers.digit_pairs import GradientRow, Params, claims, run
    p = Params(seed=0, device="cpu", n_pairs=60, epochs=1, batch_size=30, rounds=2, c1=4, c2=4, hidden=8,
               lr_pair=1.0, lr_siamese=0.25, w_aux=10 ** -0.5, bn_skip_combos=[[False, False], [True, False]],
               bn_skip_rounds=2, grid_lrs=[0.1, 1.0], lr_rounds=2, aux_weights=[0.0, 10 ** -0.5], aux_rounds=2,
               size_values=[4, 8], hidden_values=[8, 16], size_rounds=2, grad_batches=3, grad_rounds=2,
               siamese_grad_rounds=1)
    runs = run(p)
    rounds = [r for r in runs.rows if isinstance(r, RoundRow)]
    settings = sorted({(r.experiment, r.kind, r.varied, r.lr, r.batch_norm, r.skip, r.w_aux, r.c1, r.c2, r.hidden)
                       for r in rounds})
    w = 10 ** -0.5
    assert settings == sorted([("table1", "pair", "", 1.0, True, False, w, 4, 4, 8),
                               ("table1", "siamese2", "", 0.25, True, False, w, 4, 4, 8),
                               ("table1", "siamese10", "", 0.25, True, False, w, 4, 4, 8),
                               *[("fig1a", k, "batch_norm,skip", lr, False, False, w, 4, 4, 8)
                                 for k, lr in (("pair", 1.0), ("siamese2", 0.25), ("siamese10", 0.25))],
                               ("fig1b", "pair", "lr", 0.1, True, False, w, 4, 4, 8),
                               *[("fig1b", k, "lr", lr, True, False, w, 4, 4, 8)
                                 for k in ("siamese2", "siamese10") for lr in (0.1, 1.0)],
                               ("fig1c", "siamese2", "w_aux", 0.25, True, False, 0.0, 4, 4, 8),
                               ("fig1d", "pair", "c1", 1.0, True, False, w, 8, 4, 8),
                               ("fig1d", "pair", "c2", 1.0, True, False, w, 4, 8, 8),
                               ("fig1d", "pair", "hidden", 1.0, True, False, w, 4, 4, 16)])
    assert len(rounds) == 2 * len(settings) and {(r.n_pairs, r.epochs, r.batch_size) for r in rounds} == {(60, 1, 30)}
    assert [r.experiment for r in rounds[:6]] == ["table1"] * 6  # in the notebook's order
    grads = [r for r in runs.rows if isinstance(r, GradientRow) and r.experiment == "fig2"]
    assert [(r.kind, r.batch_norm, r.round) for r in grads] == [("pair", True, 0), ("pair", True, 1),
                                                                ("pair", False, 0), ("pair", False, 1)]
    siamese = [r for r in runs.rows if isinstance(r, GradientRow) and r.experiment == "fig2-siamese"]
    assert [(r.kind, r.batch_norm, r.round) for r in siamese] == [
        (k, bn, 0) for k in ("siamese2", "siamese10") for bn in (True, False)]
    assert set(runs.siamese_grads) == {(k, bn) for k in ("siamese2", "siamese10") for bn in (True, False)}
    assert all(r.batches == 3 for r in grads if r.outcome != "diverged")
    assert list(runs.table) == ["pair", "siamese2", "siamese10"] and set(runs.grads) == {True, False}
    assert all(len(h["test_acc"]) == 1 for h in runs.table["pair"].histories)  # Table I keeps its curves
    out = claims.decide(runs.rows, p)
    assert [c.id for c, _, _ in out] == [c.id for c in claims.CLAIMS]
    v = {c.id: d.verdict for c, d, _ in out}
    assert v["best-lr"] == "not testable"  # no rounds at lr 0.25 for pair
    assert v["siamese-gradients"] != "not testable" and v["siamese-bn-keeps-gradients"] != "not testable"
    assert run(replace(p, siamese_grad_rounds=0)).siamese_grads == {}
