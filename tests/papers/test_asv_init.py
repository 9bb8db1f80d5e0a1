"""ASV initialisation (asv_init): initialisers, layer tracing, signal recording, plain networks, image folders."""
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from lastlayer.data import DataError, Split
from lastlayer.imagefolder import RandomResizedCrop, load_image_folder
from lastlayer.init import METHODS, initialize, pool_gamma, pool_tau, std_table, trace
from lastlayer.papers.asv_init.experiments import train_with_init
from lastlayer.models import create_model
from lastlayer.models.plain import f34
from lastlayer.signal import jumps, signal_variances
from lastlayer.training.trainer import TrainConfig

# The notes' F34 table (10 classes, 224x224): layer -> (Kaiming fwd, Kaiming bwd, ASV fwd, ASV bwd)
F34_NOTES = {
    1: (0.1166, 0.0253, 0.0831, 0.1081), 2: (0.0589, 0.0589, 0.0263, 0.0596),
    **{l: (0.0589, 0.0589, 0.0596, 0.0596) for l in range(3, 8)}, 8: (0.0589, 0.0417, 0.0596, 0.0843),
    **{l: (0.0417, 0.0417, 0.0427, 0.0427) for l in range(9, 16)}, 16: (0.0417, 0.0295, 0.0427, 0.0604),
    **{l: (0.0295, 0.0295, 0.0309, 0.0309) for l in range(17, 28)}, 28: (0.0295, 0.0208, 0.0309, 0.0437),
    **{l: (0.0208, 0.0208, 0.0230, 0.0230) for l in range(29, 33)}, 33: (0.0208, 0.0208, 0.0230, 0.0691),
    34: (0.0625, 0.4472, 0.1084, 0.3162),
}
COLUMNS = ("kaiming_forward", "kaiming_backward", "asv_forward", "asv_backward")


@pytest.fixture(scope="module")
def f34_stds():
    return std_table(f34(), (3, 224, 224))


@pytest.mark.parametrize("column", COLUMNS)
def test_f34_stds_match_the_notes_table(f34_stds, column):
    assert len(f34_stds) == 34
    ours = f34_stds[column]
    for layer, expected in F34_NOTES.items():
        # the notes print 3-4 significant digits: agree to half a unit of the last printed digit
        assert abs(ours[layer] - expected[COLUMNS.index(column)]) <= 0.5e-4 + 1e-9, (layer, ours[layer])


def test_f34_layer33_asv_backward_is_capped():
    uncapped = std_table(f34(), (3, 224, 224), cap=None)["asv_backward"]
    assert uncapped[33] == pytest.approx(1.128, abs=5e-4)


def test_f34_structure_and_parameter_count():
    model = f34()
    assert sum(p.numel() for p in model.parameters()) == 21_108_362
    layers = trace(model, (3, 224, 224))
    assert [(i + 1, l.pool, l.T) for i, l in enumerate(layers) if l.pool] == [(1, "max", 9), (33, "avg", 49)]
    assert layers[-1].kind == "linear" and not layers[-1].relu


@pytest.mark.parametrize("T, max_tau, max_gamma, avg_tau, avg_gamma", [
    (4, 1.5438, 0.2344, 0.2444, 0.03125), (9, 2.5626, 0.1109, 0.1970, 0.00617), (49, 5.2397, 0.0204, 0.1661, 0.000208)])
def test_pooling_tau_gamma_check_values(T, max_tau, max_gamma, avg_tau, avg_gamma):
    assert pool_tau("max", T) == pytest.approx(max_tau, abs=1e-4)
    assert pool_gamma("max", T) == pytest.approx(max_gamma, abs=1e-4)
    assert pool_tau("avg", T) == pytest.approx(avg_tau, abs=1e-4)
    assert pool_gamma("avg", T) == pytest.approx(avg_gamma, rel=2e-3)


def test_tau_gamma_without_pooling():
    assert pool_tau(None) == pool_gamma(None) == 0.5
    assert pool_tau(None, relu=False) == pool_gamma(None, relu=False) == 1.0
    with pytest.raises(ValueError, match="without ReLU"):
        pool_tau("max", 4, relu=False)
    with pytest.raises(ValueError, match="unknown pooling"):
        pool_gamma("median", 4)


def test_asv_equals_kaiming_with_stride_1_no_boundary_relu_only():
    # 1x1 convs and linear layers have no boundary in either direction; a valid 3x3 conv none forward
    model = nn.Sequential(nn.Conv2d(3, 8, 1), nn.ReLU(), nn.Conv2d(8, 16, 3), nn.ReLU(), nn.Conv2d(16, 12, 1),
                          nn.ReLU(), nn.Flatten(), nn.Linear(12 * 6 * 6, 20), nn.ReLU(), nn.Linear(20, 5))
    t = std_table(model, (3, 8, 8))
    # forward: every layer after the first (the input has tau_0 = 1, not 1/2)
    for l in (2, 3, 4, 5):
        assert t.asv_forward[l] == pytest.approx(t.kaiming_forward[l], rel=1e-12)
    # backward: every layer followed by a ReLU, except the 3x3 conv (its input border has fewer fan-outs)
    for l in (1, 3, 4):
        assert t.asv_backward[l] == pytest.approx(t.kaiming_backward[l], rel=1e-12)
    assert t.asv_backward[2] > t.kaiming_backward[2]   # fewer real connections -> larger std
    assert t.asv_backward[5] == pytest.approx(math.sqrt(20 / (1.0 * 20 * 5)))  # last layer: gamma = 1


@pytest.mark.parametrize("kernel, stride, padding, dilation, size", [(7, 2, 3, 1, 23), (3, 2, 1, 1, 10),
                                                                      (3, 1, "same", 2, 9), (5, 3, 0, 1, 17)])
def test_connections_counted_exactly(kernel, stride, padding, dilation, size):
    conv = nn.Conv2d(4, 6, kernel, stride=stride, padding=padding, dilation=dilation)
    layer = trace(nn.Sequential(conv), (4, size, size + 3))[0]
    ones = torch.ones(1, 4, size, size + 3, dtype=torch.float64)
    taps = F.conv2d(ones, torch.ones(1, 4, kernel, kernel, dtype=torch.float64), None, stride, padding, dilation)
    assert layer.eps == int(taps.sum()) * 6
    assert layer.m_in == 4 * size * (size + 3) and layer.m_out == 6 * taps.shape[-2] * taps.shape[-1]


def test_functional_relu_and_pooling_are_seen():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2, self.fc = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 4, 1), nn.Linear(4, 3)

        def forward(self, x):
            h = F.relu(F.max_pool2d(self.conv1(x), 2))  # max-pool then ReLU: the same as ReLU then max-pool
            h = torch.relu(self.conv2(h)).mean((2, 3))  # global average pooling as a mean
            return self.fc(h)

    layers = trace(Net(), (1, 8, 8))
    assert [(l.name, l.relu, l.pool, l.T) for l in layers] == [
        ("conv1", True, "max", 4), ("conv2", True, "avg", 16), ("fc", False, None, 1)]
    with pytest.raises(ValueError, match="two poolings after '0'"):
        trace(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.AvgPool2d(2)), (1, 10, 10))


@pytest.mark.parametrize("kwargs, message", [({"batch_norm": True}, "batch_norm"),
                                             ({"batch_norm": False, "skip": True}, "residual")])
def test_asv_rejects_what_its_theory_does_not_cover(kwargs, message):
    with pytest.raises(ValueError, match=message):
        initialize(create_model("pairnet", **kwargs), "asv_forward", (2, 14, 14))


def test_asv_rejects_pooling_without_relu():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2 * 3 * 3, 2))
    with pytest.raises(ValueError, match="pooling without ReLU"):
        initialize(model, "asv_backward", (1, 8, 8))


@pytest.mark.parametrize("method", METHODS)
def test_initialize_draws_the_planned_stds(method):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(64 * 8 * 8, 100))
    nn.init.constant_(model[0].bias, 1.0)
    stds = initialize(model, method, (3, 16, 16))
    assert set(stds) == {"0", "4"}
    for name, module in (("0", model[0]), ("4", model[4])):
        assert module.weight.std().item() == pytest.approx(stds[name], rel=0.05)
        assert module.bias.abs().max().item() == 0


def test_initialize_bad_input():
    model = nn.Sequential(nn.Linear(4, 2))
    with pytest.raises(ValueError, match="unknown initialisation"):
        initialize(model, "lecun")
    with pytest.raises(ValueError, match="needs input_shape"):
        initialize(model, "asv_forward")
    with pytest.raises(ValueError, match="input_shape"):
        initialize(model, "asv_forward", (0,))


def test_trace_leaves_the_model_alone():
    model = create_model("f14_narrow")
    model.train()
    before = [p.detach().clone() for p in model.parameters()]
    trace(model, (1, 28, 28))
    assert model.training
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_signal_variances_records_every_weight_layer():
    torch.manual_seed(0)
    model = create_model("f14_narrow")
    model.train()
    x = torch.randn(8, 1, 28, 28)
    prof = signal_variances(model, x)
    assert len(prof.layers) == len(prof.forward) == len(prof.backward) == 14
    assert prof.layers[0] == "body.0" and prof.layers[-1] == "head"
    assert all(v > 0 and math.isfinite(v) for v in prof.forward + prof.backward)
    assert model.training and all(p.grad is None for p in model.parameters())
    # the first forward variance is that of the first conv's output, recomputed here
    assert prof.forward[0] == pytest.approx(model.body[0](x).double().var().item(), rel=1e-6)


def test_asv_forward_keeps_the_signal_of_a_wide_linear_relu_stack():
    torch.manual_seed(0)
    model = nn.Sequential(*[m for _ in range(6) for m in (nn.Linear(512, 512), nn.ReLU())], nn.Linear(512, 10))
    initialize(model, "asv_forward", (512,))
    prof = signal_variances(model, torch.randn(256, 512))
    assert max(abs(math.log2(v)) for v in prof.forward) < 0.5
    initialize(model, "xavier", (512,))
    assert abs(math.log2(signal_variances(model, torch.randn(256, 512)).forward[-1])) > 3


def test_jumps():
    assert jumps([1.0, 4.0, 2.0], [0]) == [2.0]
    assert jumps([1.0, 4.0, 2.0], [1], "backward") == [1.0]
    with pytest.raises(ValueError):
        jumps([1.0, 2.0], [1])


@pytest.mark.parametrize("name, shape", [("f14_narrow", (1, 28, 28)), ("f20_narrow", (1, 28, 28)), ("f50", (3, 32, 32))])
def test_plain_models_expose_features_and_head(name, shape):
    model = create_model(name, num_classes=7, in_channels=shape[0]).eval()
    x = torch.randn(2, *shape)
    assert torch.allclose(model(x), model.head(model.features(x)))
    assert model(x).shape == (2, 7)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def test_image_folder_missing_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match=r"car.*train.*not found"):
        load_image_folder("car", "train", root=tmp_path)


def test_image_folder_loads_tensors(tmp_path):
    from PIL import Image
    for c, colour in (("a", (255, 0, 0)), ("b", (0, 0, 255))):
        (tmp_path / "toy" / "val" / c).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (40 + 10 * i, 30), colour).save(tmp_path / "toy" / "val" / c / f"{i}.png")
    split = load_image_folder("toy", "val", root=tmp_path, size=16)
    assert split.x.shape == (4, 3, 16, 16) and split.x.dtype == torch.float32
    assert split.y.tolist() == [0, 0, 1, 1] and split.classes == ["a", "b"]
    assert split.x[0, 0].min() == 1.0 and split.x[3, 2].min() == 1.0 and split.x[3, 0].max() == 0.0
    x, y = RandomResizedCrop(seed=0).filter_batch(None, split.x, split.y, 0)
    assert x.shape == split.x.shape and torch.equal(y, split.y)


def test_a_diverging_run_is_flagged_not_raised():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 1, 28, 28, generator=g)
    data = Split(x, torch.randint(0, 10, (64,), generator=g), list("0123456789"))
    poisoned = Split(x.clone().fill_(float("nan")), data.y, data.classes)  # a non-finite loss at the first batch
    config = TrainConfig(epochs=2, batch_size=32, optimizer="adam", lr=1e-3, device="cpu")
    run = train_with_init(lambda: create_model("f14_narrow"), "asv_backward", poisoned, data, config)
    assert run.diverged and run.epochs_done == 0 and run.peak_acc == pytest.approx(0.1)
    run = train_with_init(lambda: create_model("f14_narrow"), "asv_backward", data, data, config)
    assert not run.diverged and run.epochs_done == 2 and run.peak_acc >= run.final_acc
