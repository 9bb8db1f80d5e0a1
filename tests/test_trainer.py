import pytest
import torch
import torch.nn as nn

from lastlayer.data import Split
from lastlayer.training.callbacks import GradientNorms
from lastlayer.training.trainer import (Callback, NonFiniteLossError, TrainConfig, evaluate, fit, make_optimizer,
                                        resolve_device, seed_everything, uses_channels_last)


def blobs(n=400, seed=0):
    """Two Gaussian blobs in 2-D: a problem any classifier learns in a few epochs."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 2, generator=g) * 0.5 + (y[:, None] * 2 - 1) * 1.5
    return Split(x, y)


def mlp():
    return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))


def test_fit_learns_a_tiny_problem():
    seed_everything(0)
    result = fit(mlp(), blobs(), blobs(seed=1), TrainConfig(epochs=5, batch_size=32, lr=0.1))
    h = result.history
    assert h["test_acc"][-1] > 0.95 and h["train_loss"][-1] < h["train_loss"][0]
    assert len(h["test_acc"]) == len(h["seconds"]) == 5 and h["examples"] == [400] * 5


def test_same_seed_same_numbers():
    runs = []
    for _ in range(2):
        seed_everything(3)
        runs.append(fit(mlp(), blobs(), blobs(seed=1), TrainConfig(epochs=2, seed=3)).history["train_loss"])
    assert runs[0] == runs[1]
    seed_everything(3)
    other = fit(mlp(), blobs(), None, TrainConfig(epochs=2, seed=4)).history["train_loss"]
    assert other != runs[0]


def test_non_finite_loss_names_epoch_and_batch():
    class Explode(Callback):
        def filter_batch(self, model, x, y, epoch):
            return (x * float("inf") if epoch == 1 else x), y

    seed_everything(0)
    with pytest.raises(NonFiniteLossError, match="epoch 2, batch 1"):
        fit(mlp(), blobs(), None, TrainConfig(epochs=3, batch_size=100), callbacks=[Explode()])


def test_deferred_check_names_the_first_bad_batch(monkeypatch):
    """The GPU path (one check per epoch, no host sync per step) reports the same epoch and batch."""
    from lastlayer.training import trainer

    class ExplodeFromBatch3(Callback):
        def __init__(self):
            self.batch = 0

        def filter_batch(self, model, x, y, epoch):
            self.batch += 1
            return (x * float("inf") if epoch == 0 and self.batch >= 3 else x), y

    monkeypatch.setattr(trainer, "defer_checks", lambda device: True)
    seed_everything(0)
    with pytest.raises(NonFiniteLossError, match="epoch 1, batch 3"):
        fit(mlp(), blobs(), None, TrainConfig(epochs=2, batch_size=50), callbacks=[ExplodeFromBatch3()])


def test_bf16_autocast_and_channels_last_train():
    """The GPU options run on any device and still learn (their numerics differ from fp32 by design)."""
    seed_everything(0)
    conv = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (300,), generator=g)
    x = torch.randn(300, 1, 4, 4, generator=g) * 0.3 + y[:, None, None, None].float()
    data = Split(x, y)
    result = fit(conv, data, data, TrainConfig(epochs=10, batch_size=30, lr=0.1, momentum=0.9, amp="bf16", channels_last=True))
    assert result.history["test_acc"][-1] > 0.9
    with pytest.raises(ValueError, match="amp"):
        fit(conv, data, None, TrainConfig(epochs=1, amp="fp8"))


def test_channels_last_changes_only_the_rounding_and_gives_the_model_back():
    """The NHWC layout (the CPU default for image batches) trains the same function as NCHW, up to the order of
    floating-point sums, and the caller gets its model back in the default layout."""
    g = torch.Generator().manual_seed(1)
    data = Split(torch.randn(256, 3, 8, 8, generator=g), torch.randint(0, 4, (256,), generator=g))
    losses, seen = {}, {}

    class Layout(Callback):
        def after_backward(self, model, epoch, batch):
            seen[layout] = model[0].weight.is_contiguous(memory_format=torch.channels_last)

    for layout in (False, True, None):
        torch.manual_seed(0)
        net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                            nn.Linear(8 * 3 * 3, 4))
        result = fit(net, data, data, TrainConfig(epochs=2, batch_size=32, lr=0.05, channels_last=layout,
                                                  device="cpu"), callbacks=[Layout()])
        losses[layout] = result.history["train_loss"] + result.history["test_loss"]
        assert net[0].weight.is_contiguous()
    assert seen == {False: False, True: True, None: True}  # None: NHWC on a CPU
    assert losses[True] == losses[None]
    assert losses[True] == pytest.approx(losses[False], rel=1e-4)
    assert not uses_channels_last(TrainConfig(), torch.device("cpu"), torch.zeros(4, 2))  # not images
    assert not uses_channels_last(TrainConfig(), torch.device("cuda"), torch.zeros(1, 1, 2, 2))  # fp32 on CUDA


def test_filter_batch_drops_examples():
    class DropHalf(Callback):
        def filter_batch(self, model, x, y, epoch):
            return x[::2], y[::2]

    result = fit(mlp(), blobs(100), None, TrainConfig(epochs=2, batch_size=10), callbacks=[DropHalf()])
    assert result.history["examples"] == [50, 50]


def test_any_optimizer_and_scheduler():
    seed_everything(0)
    result = fit(mlp(), blobs(), blobs(1), TrainConfig(epochs=3, optimizer="adam", lr=0.01),
                 scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5))
    assert result.history["lr"] == [0.01, 0.005, 0.0025]
    plateau = fit(mlp(), blobs(), blobs(1), TrainConfig(epochs=2, lr=0.1),
                  scheduler=lambda opt: torch.optim.lr_scheduler.ReduceLROnPlateau(opt, "max"))
    assert len(plateau.history["lr"]) == 2
    with pytest.raises(ValueError, match="unknown optimizer 'lbfgs'"):
        make_optimizer(mlp().parameters(), TrainConfig(optimizer="lbfgs"))


def test_frozen_parameters_are_left_out_of_the_optimizer():
    model = mlp()
    model[0].weight.requires_grad_(False)
    before = model[0].weight.clone()
    fit(model, blobs(), None, TrainConfig(epochs=1))
    assert torch.equal(model[0].weight, before)


def test_evaluate_restores_the_mode():
    model = mlp().train()
    loss, acc = evaluate(model, blobs())
    assert model.training and 0 <= acc <= 1 and loss > 0


def test_gradient_norms_per_layer_per_batch():
    rec = GradientNorms(max_batches=7)
    fit(mlp(), blobs(100), None, TrainConfig(epochs=2, batch_size=20), callbacks=[rec])
    assert set(rec.norms) == {"0", "2"} and all(len(v) == 7 for v in rec.norms.values())
    assert all(v > 0 for v in rec.norms["0"])


def test_device_auto_is_a_real_device():
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    assert resolve_device("cpu") == torch.device("cpu")
