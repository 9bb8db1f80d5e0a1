"""A learning rate that must diverge is reported as diverged, never as a model that trained.

With the digit-pair model, one step at lr 1e10 leaves finite weights and a finite training loss, but the test
outputs are NaN: the next loss would show it, the last step of a run has no next loss, and an accuracy can still
be counted from NaN logits. The trainer checks the state after every epoch, so a one-epoch run raises too."""
import math

import pytest

from lastlayer.papers.digit_pairs.rounds import build, digit_pairs, train_rounds
from lastlayer.training.trainer import NonFiniteLossError, TrainConfig, fit, seed_everything


@pytest.mark.parametrize("lr", [1e10, 1e30])
def test_a_diverging_learning_rate_raises_even_on_the_last_step(data_root, lr):
    data = digit_pairs(100, 0, root=data_root).normalized()
    seed_everything(0)
    model, objective = build("pair", 16, 16, 32, True, False, 0.3)
    with pytest.raises(NonFiniteLossError, match="non-finite .* after epoch 1"):
        fit(model, data.train, data.test, TrainConfig(epochs=1, batch_size=100, lr=lr), objective=objective)


@pytest.mark.parametrize("grouped", [False, True])
def test_diverged_rounds_are_recorded_as_diverged(data_root, grouped):
    """What `-p lr_pair 1.0e30` runs: the Table I pair rounds, recorded (NaN accuracies), in both code paths."""
    kw = dict(rounds=2, n_pairs=100, epochs=1, batch_size=100, c1=8, c2=8, hidden=16, root=data_root,
              grouped=grouped)
    sane = train_rounds("pair", lr=0.1, on_nonfinite="record", **kw)
    assert all(0 <= a <= 1 for a in sane.test_acc)
    wild = train_rounds("pair", lr=1e30, on_nonfinite="record", **kw)
    assert all(math.isnan(a) for a in wild.test_acc + wild.train_acc)
    with pytest.raises(NonFiniteLossError):
        train_rounds("pair", lr=1e30, on_nonfinite="raise", **kw)
