"""ASV initialisation (asv_init): initialisers, layer tracing, signal recording, plain networks, image folders,
the notebook's one call `run(Params)` and `claims.decide(rows, params)`."""
import math
from dataclasses import asdict, fields, replace
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from lastlayer.data import DataError, Split
from lastlayer.augment import RandomResizedCrop
from lastlayer.init import METHODS, initialize, pool_gamma, pool_tau, std_table, trace, windowed_max_gamma
from lastlayer.book.runner import notebook_parameters
from lastlayer.papers.asv_init import GridRow, Params, PooledRow, claims, figures, run
from lastlayer.papers.asv_init.experiments import (TABLE2_SEED_OFFSET, experiment_seeds, gamma_check, load_data,
                                                   train_with_init, variance_picture)
from lastlayer.papers.asv_init.reference import F34_STD_COLUMNS, F34_STDS
from lastlayer.models import create_model
from lastlayer.models.plain import f34
from lastlayer.signal import jumps, pool_gamma_mc, signal_variances
from lastlayer.training.trainer import TrainConfig

F34_NOTES, COLUMNS = F34_STDS, F34_STD_COLUMNS  # the formulas' check table (reference.py)
NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "asv_init.ipynb"


def _params(**overrides) -> Params:
    """The notebook's defaults (its parameters cell), with `overrides`."""
    return replace(Params(**{k: p.default for k, p in notebook_parameters(NOTEBOOK).items()}), **overrides)


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
    assert len(prof.layers) == len(prof.forward) == len(prof.backward) == len(prof.tau) == len(prof.gamma) == 14
    assert math.isnan(prof.tau[-1]) and math.isnan(prof.gamma[-1])
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
    with pytest.raises(DataError, match=r"car.*train.*not found.*hecwitane/ASV-pub"):
        load_data("car", image_root=tmp_path)


def test_image_folder_loads_tensors(tmp_path):
    from PIL import Image
    for c, colour in (("a", (255, 0, 0)), ("b", (0, 0, 255))):
        (tmp_path / "toy" / "val" / c).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (40 + 10 * i, 30), colour).save(tmp_path / "toy" / "val" / c / f"{i}.png")
    (tmp_path / "toy" / "train").mkdir()
    import shutil
    shutil.copytree(tmp_path / "toy" / "val", tmp_path / "toy" / "train", dirs_exist_ok=True)
    _, split = load_data("toy", image_root=tmp_path, image_size=16)
    split = split.standardize((-1.0, 2.0))  # undo load_data's (x - 0.5) / 0.5
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


# ---------------------------------------------------------------- γ and τ of real windows, measured

@pytest.mark.parametrize("k", [2, 3, 4])
def test_measured_gamma_of_disjoint_windows_is_the_papers(k):
    # size divisible by k: every input lies in exactly one window of k*k elements
    mc = torch.tensor(pool_gamma_mc(lambda v: F.max_pool2d(v, k), size=12 * k, repeats=12,
                                    generator=torch.Generator().manual_seed(k)))
    se = float(mc.std() / math.sqrt(len(mc)))
    assert abs(float(mc.mean()) - pool_gamma("max", k * k)) < 4 * se + 1e-4
    assert windowed_max_gamma(12 * k, k) == pytest.approx(pool_gamma("max", k * k), rel=1e-12)


def test_overlapping_windows_pass_more_gradient():
    # F34's stem pool: 3x3, stride 2, pad 1 on 112x112 -> about 1/4, not (1 - 2^-9)/9
    assert windowed_max_gamma(112, 3, 2, 1) == pytest.approx(0.2494, abs=1e-3)
    mc = pool_gamma_mc(lambda v: F.max_pool2d(v, 3, 2, 1), size=28, repeats=8,
                       generator=torch.Generator().manual_seed(0))
    assert sum(mc) / len(mc) == pytest.approx(windowed_max_gamma(28, 3, 2, 1), rel=0.02)
    check = gamma_check(((3, 2, 1),), size=20, repeats=4)
    assert check.measured[0] == pytest.approx(check.windows[0], rel=0.03) and check.paper[0] < 0.5 * check.windows[0]


def test_profile_measures_tau_and_gamma_of_a_relu():
    # a wide linear-ReLU pair on Gaussian inputs: tau and gamma of a ReLU alone are 1/2
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 4))
    initialize(model, "kaiming_forward")
    prof = signal_variances(model, torch.randn(512, 256))
    assert prof.tau[0] == pytest.approx(0.5, rel=0.05) and prof.gamma[0] == pytest.approx(0.5, rel=0.05)


def test_variance_picture_rows_on_a_small_plain_net():
    curves, pooled = variance_picture("f14_narrow", lambda s: torch.randn(4, 1, 28, 28), (1, 28, 28), 10, draws=2,
                                      methods=("asv_forward", "asv_backward"))
    assert len(curves) == 2 * 2 * 14 and {r.layer for r in pooled} == {1, 13}
    assert all(isinstance(r, PooledRow) and r.experiment == "variance picture" for r in pooled)
    stem = [r for r in pooled if r.layer == 1][0]
    assert stem.gamma_windows > stem.gamma_formula  # the stem's 3x3 stride-2 windows overlap
    assert stem.gamma == pytest.approx(stem.gamma_windows, rel=0.15)


def test_params_are_the_parameters_cell():
    assert [f.name for f in fields(Params)] == list(notebook_parameters(NOTEBOOK))


TINY = dict(signal_model="f14_narrow", signal_size=28, signal_batch=2, signal_seeds=2, signal_data_batch=8,
            train_size=32, val_size=32, batch_size=32, epochs=1, lrs=[1e-3], optimizers=["adam"],
            optimizer_lrs=[1e-3], n_seeds=2, table2_seeds=2, device="cpu")


def test_run_at_a_tiny_size_gives_rows_the_claims_decide(monkeypatch):
    monkeypatch.setenv("LASTLAYER_CACHE", "off")
    params = _params(**TINY)
    runs = run(params)
    picture = [r for r in runs.rows if isinstance(r, PooledRow)]
    grid = [r for r in runs.rows if isinstance(r, GridRow)]
    assert len(picture) == 5 * 2 * 2 and len(grid) == len(runs.rows) - len(picture) == 3 * 5 * 2
    assert {r.experiment for r in grid} == {"table1", "table2", "table3"} and {r.dataset for r in grid} == {"fashion_mnist"}
    assert runs.metrics == {"runs": 30, "diverged_runs": sum(r.diverged for r in grid)}
    assert len(runs.table1) == len(runs.table2) == len(runs.table3) == 10 and set(runs.f34_pooled.layer) == {1, 13}
    # Table 2: Table 1's Adam grid on Table 3's network, on seeds no other table trained
    assert set(runs.table2.model) == {params.table3_model} and set(runs.table2.optimizer) == {"adam"}
    assert set(runs.table2.seed) == set(experiment_seeds(params)["table2"]) == {params.seed + 1000, params.seed + 1001}
    assert not set(runs.table2.seed) & (set(runs.table1.seed) | set(runs.table3.seed))
    assert set(runs.cpu_pooled.network) == {"f14_narrow"} and len(runs.f34_stds) == 34 and len(runs.gamma) == 4
    decided = claims.decide(runs.rows, params)
    assert [c.id for c, _, _ in decided] == [c.id for c in claims.CLAIMS]
    v = {c.id: d.verdict for c, d, _ in decided}
    assert v["asv-backward-best-adam-paper"] == v["asv-best-optimizers-paper"] == "not testable"
    assert v["asv-backward-best-adam-f50-paper"] == "not testable"
    assert all(v[c.id] != "not testable" for c in claims.CLAIMS
               if not c.id.endswith("-paper") and c.rule != "not testable")


# ---------------------------------------------------------------- claims on synthetic runs

def _pooled(asv_fwd=0.0, asv_bwd=0.0, classical=3.0, stem_gap=0.0, tau_log2=0.0, draws=8, noise=0.05, seed=0):
    """Fake variance-picture rows: ASV methods jump by asv_*, the classical methods by `classical`."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for m in METHODS:
        for d in range(draws):
            e = lambda: float(torch.randn((), generator=g)) * noise
            for layer, pool in ((1, "max 9"), (33, "avg 49")):
                fwd = asv_fwd if m == "asv_forward" else (classical if m in claims.CLASSICAL else 2.0)
                bwd = asv_bwd if m == "asv_backward" else (classical if m in claims.CLASSICAL else 2.0)
                rows.append(PooledRow("variance picture", "f34", m, d, layer, pool, fwd_jump=fwd + e(),
                                      bwd_jump=bwd + e(), fwd_pred=0.0, bwd_pred=0.0, bwd_pred_windows=bwd - stem_gap,
                                      tau=0.166 * 2 ** (tau_log2 + e()), tau_formula=0.166, gamma=0.25,
                                      gamma_formula=0.11, gamma_windows=0.25))
    return rows


def _runs(best="asv_backward", gap=0.1, datasets=("fashion_mnist",), model="f14_narrow", optimizers=("adam",),
          seeds=5, seed=0, noise=0.01, table="table1"):
    g = torch.Generator().manual_seed(seed)
    rows = []
    for d in datasets:
        for o in optimizers:
            for m in METHODS:
                for lr in (1e-4, 1e-3):
                    for s in range(seeds):
                        acc = 0.6 + (gap if m == best else 0.0) - (0.05 if lr == 1e-4 else 0.0)
                        acc += noise * float(torch.randn((), generator=g))
                        rows.append(GridRow(table, d, model, m, o, lr, s, peak_acc=acc, final_acc=acc, epochs_done=1,
                                            diverged=False))
    return rows


def _t3(**kw):
    return _runs(**{"best": "asv_forward", "model": "f20_narrow", "optimizers": ("sgd", "adam"), **kw,
                    "table": "table3"})


def _t2(**kw):
    """Table 2 rows: ASV backward ahead by twice the smallest lead that counts unless told otherwise."""
    return _runs(**{"gap": 2 * claims.T2_MIN_EFFECT, "model": "f20_narrow", **kw, "table": "table2"})


def _decide(pooled=None, t1=None, t3=None, t2=None, **params):
    rows = [*(_pooled() if pooled is None else pooled), *(_runs() if t1 is None else t1),
            *(_t2() if t2 is None else t2), *(_t3() if t3 is None else t3)]
    return claims.decide(rows, _params(**params))


def _verdicts(*args, **params):
    return {c.id: d.verdict for c, d, _ in _decide(*args, **params)}


def test_claims_are_declared_once_with_their_settings():
    assert len(claims.BY_ID) == len(claims.CLAIMS)
    assert {c.setting.split(":")[0] for c in claims.CLAIMS} == {"proxy", "extension", "paper setup"}


def test_decide_on_runs_that_agree_with_the_paper():
    v = _verdicts()
    assert v == {"forward-variance-pooling": "reproduced", "backward-variance-pooling": "reproduced",
                 "classical-jump-more": "reproduced", "stem-pool-jump-windows": "reproduced",
                 "global-pool-tau": "reproduced", "asv-backward-best-adam": "reproduced",
                 "asv-backward-best-adam-paper": "not testable", "asv-best-optimizers": "reproduced",
                 "asv-best-optimizers-paper": "not testable", "asv-backward-best-adam-f50": "reproduced",
                 "asv-backward-best-adam-f50-paper": "not testable"}


def test_decide_on_runs_that_contradict_the_paper():
    v = _verdicts(_pooled(asv_fwd=2.5, asv_bwd=-8.0, classical=0.0, stem_gap=1.2, tau_log2=1.0),
                  _runs(best="kaiming_forward"), _t3(best="xavier", optimizers=("adam",)),
                  _t2(best="kaiming_backward", gap=0.1))
    assert all(v[c] == "not reproduced" for c in ("forward-variance-pooling", "backward-variance-pooling",
                                                 "classical-jump-more", "stem-pool-jump-windows", "global-pool-tau",
                                                 "asv-backward-best-adam", "asv-best-optimizers",
                                                 "asv-backward-best-adam-f50"))


def test_one_margin_for_every_variance_claim_and_a_smallest_effect_for_every_comparison():
    variance = [c for c in claims.CLAIMS if c.rule == "equivalence"]
    assert {c.id for c in variance} == {"forward-variance-pooling", "backward-variance-pooling",
                                        "stem-pool-jump-windows", "global-pool-tau"}
    assert {c.parameters["margin"] for c in variance} == {claims.VARIANCE_MARGIN}
    assert claims.BY_ID["classical-jump-more"].parameters["min_effect"] == claims.VARIANCE_MARGIN
    compared = [c for c in claims.CLAIMS if c.rule in ("direction", "best_setting")]
    assert len(compared) == 7 and all(c.parameters["min_effect"] > 0 and c.revised for c in compared)
    # fractions, as the rules see them: below the smallest published advantage of each table
    t1 = [c.parameters["min_effect"] for c in compared if c.id in ("asv-backward-best-adam", "asv-backward-best-adam-paper")]
    t2 = [c.parameters["min_effect"] for c in compared if c.id.startswith("asv-backward-best-adam-f50")]
    t3 = [c.parameters["min_effect"] for c in compared if c.id.startswith("asv-best-optimizers")]
    assert t1 == [pytest.approx(min(claims.T1_MARGINS.values()) / 2)] * 2 and 0 < t1[0] < 0.01
    assert t2 == [pytest.approx((80.77 - 71.23) / 100 / 2)] * 2
    assert t3 == [pytest.approx(claims.T3_MARGINS["adam"] / 2)] * 2 and 0 < t3[0] < 0.02


def test_a_variance_off_by_a_factor_2_is_not_kept():
    v = _verdicts(_pooled(asv_fwd=1.0, asv_bwd=-1.0, stem_gap=1.0, tau_log2=1.0))
    assert all(v[c] == "not reproduced" for c in ("forward-variance-pooling", "backward-variance-pooling",
                                                 "stem-pool-jump-windows", "global-pool-tau"))


def test_effects_smaller_than_the_smallest_that_counts_are_not_reproduced():
    small = claims.VARIANCE_MARGIN / 2  # classical methods jump more than ASV, but by less than the margin
    out = {c.id: d for c, d, _ in _decide(pooled=_pooled(classical=small, noise=0.01))}
    assert out["classical-jump-more"].verdict == "not reproduced"
    assert all(p.interval[1] < claims.VARIANCE_MARGIN and p.interval[0] > 0 for p in out["classical-jump-more"].parts)
    # ASV best, each interval above 0, but by less than half the smallest published margin: not the paper's effect
    t1 = _runs(gap=claims.T1_MIN_EFFECT / 4, noise=0.0005, seeds=8)
    t3 = _t3(gap=claims.T3_MIN_EFFECT / 4, noise=0.0005, seeds=8)
    out = {c.id: d for c, d, _ in _decide(t1=t1, t3=t3)}
    for cid in ("asv-backward-best-adam", "asv-best-optimizers"):
        parts = out[cid].parts or (out[cid],)
        assert out[cid].verdict == "not reproduced" and all(p.interval[0] > 0 for p in parts), cid


def test_table2_is_decided_as_table1_with_its_own_smallest_lead():
    proxy, paper = claims.BY_ID["asv-backward-best-adam-f50"], claims.BY_ID["asv-backward-best-adam-f50-paper"]
    adam = claims.BY_ID["asv-backward-best-adam"]
    for c in (proxy, paper):
        assert c.rule == adam.rule == "best_setting" and "80.77" in c.paper and c.unit == "points"
        assert c.parameters == {"claimed": ["asv_backward"], "min_effect": claims.T2_MIN_EFFECT, "alpha": 0.05}
    assert proxy.setting.startswith("proxy: ") and "F50" in proxy.setting and paper.setting == "paper setup"
    assert "not run" not in claims.TABLE2_REASON and "table2_seeds" in claims.TABLE2_REASON


def _table2(t2, **params):
    out = {c.id: (d, ours) for c, d, ours in _decide(t2=t2, **params)}
    return out["asv-backward-best-adam-f50"], out["asv-backward-best-adam-f50-paper"]


def test_table2_reproduced_when_asv_backward_leads_by_far_more_than_the_smallest_lead():
    (d, ours), (paper, _) = _table2(_t2(gap=4 * claims.T2_MIN_EFFECT, seeds=3))
    assert d.verdict == "reproduced" and d.interval[0] > claims.T2_MIN_EFFECT and d.n == 3
    assert ours.startswith("fashion_mnist: best ASV (backward)") and "0 of 30 runs diverged" in ours
    assert paper.verdict == "not testable" and "image folders are not available" in paper.detail


@pytest.mark.parametrize("case", ["another method leads", "all equal"])
def test_table2_not_reproduced_when_asv_backward_does_not_lead_by_the_papers_half(case):
    t2 = _t2(best="kaiming_backward", gap=0.1) if case == "another method leads" else _t2(gap=0.0, noise=0.005)
    (d, _), _ = _table2(t2)
    assert d.verdict == "not reproduced", d.detail
    assert d.interval[1] < claims.T2_MIN_EFFECT
    if case == "all equal":  # a tie: the interval straddles 0, so only the smallest lead that counts decides it
        assert d.interval[0] < 0 < d.interval[1]


def test_table2_not_testable_without_its_rows():
    (d, ours), (paper, _) = _table2([])
    assert d.verdict == "not testable" and d.detail == claims.T2_NOT_RUN and "table2_seeds is 0" in d.detail
    assert ours is None and paper.verdict == "not testable"


def test_table2_on_f50_and_car_moves_the_verdict_to_the_paper_row():
    (d, _), (paper, ours) = _table2(_t2(datasets=("car",), model="f50"), table3_dataset="car", table3_model="f50")
    assert paper.verdict == "reproduced" and ours.startswith("car: ")
    assert d.verdict == "not testable" and "paper's setup itself" in d.detail


def test_table2_seeds_are_disjoint_from_every_other_experiments():
    for overrides in ({}, dict(seed=0, n_seeds=3, signal_seeds=8, table2_seeds=3),
                      dict(n_seeds=TABLE2_SEED_OFFSET, signal_seeds=TABLE2_SEED_OFFSET, table2_seeds=50)):
        seeds = experiment_seeds(_params(**overrides))
        table2 = set(seeds.pop("table2"))
        assert len(table2) == _params(**overrides).table2_seeds
        assert not table2 & set().union(*seeds.values()), overrides
    assert experiment_seeds(_params(table2_seeds=0))["table2"] == []
    with pytest.raises(ValueError, match="overlap"):
        experiment_seeds(_params(n_seeds=TABLE2_SEED_OFFSET + 1))


def test_decide_one_bad_pooled_layer_makes_partly():
    pooled = [r if not (r.method == "asv_forward" and r.layer == 33) else replace(r, fwd_jump=3.0 + r.fwd_jump)
              for r in _pooled()]
    assert _verdicts(pooled)["forward-variance-pooling"] == "partly"


def test_decide_parts_are_labelled_and_a_single_part_is_shown_as_itself():
    out = {c.id: (d, ours) for c, d, ours in _decide()}
    d, ours = out["forward-variance-pooling"]
    assert [p.label for p in d.parts] == ["layer 1 (max 9)", "layer 33 (avg 49)"] and d.estimate is None
    assert ours.startswith("layer 1 (max 9): ") and "reproduced" in ours
    assert len(out["classical-jump-more"][0].parts) == 12
    assert [p.label for p in out["asv-best-optimizers"][0].parts] == ["sgd", "adam"]
    single = out["asv-backward-best-adam"][0]  # one dataset: its own estimate and interval, not a combination
    assert single.label == "fashion_mnist" and single.estimate is not None and not single.parts


@pytest.mark.parametrize("cid, table", [("asv-backward-best-adam", "t1"), ("asv-backward-best-adam-f50", "t2")])
def test_decide_scores_each_seed_at_its_best_learning_rate(cid, table):
    import pandas as pd
    runs = _runs(gap=0.0, seeds=3, noise=0.05, table={"t1": "table1", "t2": "table2"}[table])
    best = pd.DataFrame(map(asdict, runs)).groupby(["method", "seed"]).peak_acc.max().groupby("method").mean()
    (d,) = [d for c, d, _ in _decide(**{table: runs}) if c.id == cid]
    assert d.estimate == pytest.approx(best["asv_backward"] - best.drop("asv_backward").max(), abs=1e-5)
    assert d.n == 3


def test_decide_paper_data_moves_the_verdict_to_the_paper_row():
    t1 = _runs(datasets=("car", "food", "fungi"), model="f34")
    t3 = _t3(datasets=("car",), model="f50")
    out = {c.id: (d.verdict, ours) for c, d, ours in _decide(t1=t1, t3=t3, datasets=["car", "food", "fungi"],
                                                            model="f34", table3_dataset="car", table3_model="f50")}
    assert out["asv-backward-best-adam-paper"][0] == "reproduced" and "fungi" in out["asv-backward-best-adam-paper"][1]
    assert out["asv-backward-best-adam"][0] == out["asv-best-optimizers"][0] == "not testable"
    assert out["asv-best-optimizers-paper"][0] == "reproduced"


def test_diverged_runs_are_counted_in_the_ours_line():
    t1 = [replace(r, diverged=True, peak_acc=0.1) if r.method == "xavier" else r for r in _runs()]
    ours = {c.id: o for c, _, o in _decide(t1=t1)}
    assert "10 of 50 runs diverged" in ours["asv-backward-best-adam"]


def test_decide_with_an_arm_missing_is_not_testable_with_a_reason():
    no_asv = [r for r in _runs() if r.method != "asv_backward"]
    out = {c.id: (d, ours) for c, d, ours in _decide(t1=no_asv, t3=[])}
    d, ours = out["asv-backward-best-adam"]
    assert d.verdict == "not testable" and "asv_backward" in d.detail and ours is None
    d, _ = out["asv-best-optimizers"]
    assert d.verdict == "not testable" and "no part" in d.detail
    assert out["forward-variance-pooling"][0].verdict == "reproduced"
    out = {c.id: d for c, d, _ in _decide(pooled=[r for r in _pooled() if r.method != "xavier"])}
    assert out["classical-jump-more"].verdict == "inconclusive"  # 8 parts hold; Xavier's 4 are not testable
    assert sum(p.verdict == "not testable" for p in out["classical-jump-more"].parts) == 4
    out = {c.id: d for c, d, _ in _decide(pooled=[])}
    assert all(out[c].verdict == "not testable" and out[c].detail for c in (
        "forward-variance-pooling", "backward-variance-pooling", "classical-jump-more", "stem-pool-jump-windows",
        "global-pool-tau"))


# ---------------------------------------------------------------- figure helpers on fake data

def test_figure_helpers_on_fake_data():
    import matplotlib
    matplotlib.use("Agg")
    import pandas as pd
    pooled = pd.DataFrame(map(asdict, _pooled(draws=3)))
    curves = pd.DataFrame([dict(method=m, draw=d, l=l, forward=0.1 * l, backward=-0.1 * l)
                           for m in METHODS for d in range(2) for l in range(1, 35)])
    jt = figures.jump_table(pooled)
    assert jt.shape == (4, 5) and "±" in jt.iloc[0, 0] and "(" in jt.iloc[0, 0]
    assert jt.loc[("forward", "1 (max 9)"), "Xavier"].startswith("+3.0")  # a change in log2 keeps its sign
    th = figures.theory_table(pooled)
    assert list(th.index) == ["1 (max 9)", "33 (avg 49)"] and th.shape[1] <= 7
    t1, t3 = (pd.DataFrame(map(asdict, rows)) for rows in (_runs(seeds=3), _runs(optimizers=("sgd", "adam"), seeds=3)))
    table = figures.table1(t1)
    assert float(table.loc["ours: fashion_mnist", "ASV (backward)"].split(" ± ")[0]) == pytest.approx(70, abs=2)
    assert table.loc["paper: car", "ASV (backward)"] == "81.49"
    assert figures.table3(t3).loc["sgd (lr 0.0001)", "Xavier"].endswith("/ 15.78")
    t2 = pd.DataFrame(map(asdict, _t2(seeds=3)))
    table = figures.table2(t2)
    assert list(table.index) == ["ours: fashion_mnist", "paper: car"] and table.loc["paper: car", "ASV (backward)"] == "80.77"
    assert list(figures.table2(pd.DataFrame()).index) == ["paper: car"] and figures.plot_table1(pd.DataFrame(), "t") is None
    for fig in (figures.plot_picture(curves, [1, 33], "t"), figures.plot_table1(t1, "t"), figures.plot_table1(t2, "t"),
                figures.plot_table3(t3, "t")):
        assert fig.axes and fig.get_size_inches()[0] <= 10
        matplotlib.pyplot.close(fig)
    g = figures.gamma_table(pd.DataFrame([dict(kernel=3, stride=2, padding=1, measured=0.25, se=0.001, paper=0.11,
                                               windows=0.249)]))
    assert g.loc["3x3, stride 2, pad 1", "γ Monte Carlo"] == "0.2500 ± 0.0010"
    numbers = figures.picture_numbers(pooled)
    assert numbers["gamma-ratio"] == pytest.approx(0.25 / 0.11) and numbers["tau-log2"] == pytest.approx(0, abs=0.1)


def test_std_check_against_the_reference_table(f34_stds):
    assert figures.std_check_max_diff(f34_stds) <= 0.5e-4 + 1e-9
    assert figures.std_check(f34_stds).loc[34, "ASV (backward)"] == "0.3162 / 0.3162"
