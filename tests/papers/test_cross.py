"""The chapter across the papers: its declared uses and their fingerprint, the long-tail heads, selective backprop
and the skipping study, the claims' decisions and the figure helpers (on toy data: seconds, not minutes)."""
from dataclasses import replace
from types import SimpleNamespace

import matplotlib
matplotlib.use("Agg")
import numpy as np
import pytest
import torch
import yaml

from lastlayer.book import runner
from lastlayer.book.registry import PaperError, find_papers, get_paper, read_paper
from lastlayer.data import Split
from lastlayer.heads import ClassifierHead, NormConstrainedLinear
from lastlayer.papers import cross
from lastlayer.papers.cross import claims, figures, long_tail as lt, skipping as sk, uses
from lastlayer.provenance import PACKAGE_DIR
from lastlayer.training.trainer import TrainConfig

ROOT = PACKAGE_DIR.parent


def toy_split(per_class=(12, 8, 6, 4), size=28, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.cat([torch.full((n,), k) for k, n in enumerate(per_class)])
    x = torch.rand(len(y), 1, size, size, generator=g) + y[:, None, None, None] * 0.3  # classes tell apart a little
    return Split(x, y, [str(k) for k in range(len(per_class))])


# --- the declared uses ----------------------------------------------------------------------------------------

def test_the_chapter_declares_the_papers_it_builds_on():
    info = get_paper("cross", ROOT)
    assert info.is_cross and set(info.uses) == set(uses.USES)
    assert list(find_papers(ROOT))[-1] == "cross"  # after the papers it builds on
    assert not any(find_papers(ROOT)[u].is_cross for u in info.uses)


def test_uses_must_name_other_papers(tmp_path):
    folder = tmp_path / "x"
    folder.mkdir()
    meta = yaml.safe_load((ROOT / "lastlayer/papers/cross/paper.yml").read_text())
    (folder / "paper.yml").write_text(yaml.safe_dump({**meta, "uses": "geometry"}))
    with pytest.raises(PaperError, match="uses must be a list"):
        read_paper(folder)
    (folder / "paper.yml").write_text(yaml.safe_dump({**meta, "uses": ["x"]}))
    with pytest.raises(PaperError, match="uses must be a list"):
        read_paper(folder)  # itself


def _copy_package(tmp_path):
    """A copy of the library's .py files under tmp_path/lastlayer, to change without touching the real ones."""
    pkg = tmp_path / "lastlayer"
    for f in PACKAGE_DIR.rglob("*.py"):
        if "__pycache__" not in f.parts:
            target = pkg / f.relative_to(PACKAGE_DIR)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(f.read_bytes())
    return pkg


def test_the_fingerprint_changes_with_every_used_package_and_only_with_them(tmp_path):
    pkg = _copy_package(tmp_path)
    before = uses.fingerprint(package_dir=pkg)
    assert before == uses.fingerprint(package_dir=PACKAGE_DIR)  # the same files, the same fingerprint
    files = uses.used_files(package_dir=pkg)
    assert {f.relative_to(pkg).parts[1] for f in files} == set(uses.USES)
    for used in uses.USES:
        f = pkg / "papers" / used / "__init__.py"
        original = f.read_bytes()
        f.write_bytes(original + b"\n# changed\n")
        assert uses.fingerprint(package_dir=pkg) != before, used
        f.write_bytes(original)
    (pkg / "papers" / "fixed_classifier" / "__init__.py").write_bytes(b"# not a used package\n")
    (pkg / "papers" / "cross" / "claims.py").write_bytes(b"# its own package: in every cache key already\n")
    assert uses.fingerprint(package_dir=pkg) == before


def test_the_input_hash_covers_the_used_packages(tmp_path):
    pkg = _copy_package(tmp_path)
    files = {f.relative_to(pkg).as_posix() for f in runner.hashed_files("cross", pkg, uses.USES)}
    assert "papers/geometry/experiments.py" in files and "papers/cross/claims.py" in files
    assert "papers/fixed_classifier/experiments.py" not in files and not any(f.startswith("book/") for f in files)
    assert runner.hashed_files("geometry", pkg) == runner.hashed_files("geometry", pkg, ())
    assert set(runner._uses("cross", ROOT)) == set(uses.USES) and runner._uses("geometry", ROOT) == ()
    assert runner._uses("no_such_paper", ROOT) == ()


# --- study 1 --------------------------------------------------------------------------------------------------

def test_arms_and_their_names():
    assert lt.arms(["learned", "cosine"], [1.0, 20.0]) == [("learned", 1.0), ("cosine", 1.0), ("cosine", 20.0)]
    assert lt.arm_name("cosine_fixed", 20.0) == "cosine_fixed S=20" and lt.arm_name("norm", 1.0) == "norm"
    with pytest.raises(ValueError, match="unknown head"):
        lt.arms(["dot"], [1.0])


def test_simplex_directions_are_as_far_apart_as_they_can_be():
    d = lt.simplex_directions(10, 16, seed=3)
    cos = d @ d.T
    assert np.allclose(np.diag(cos), 1) and np.allclose(cos[~np.eye(10, dtype=bool)], -1 / 9)
    assert not np.allclose(d, lt.simplex_directions(10, 16, seed=4))
    circle = lt.simplex_directions(10, 2, seed=3)
    assert circle.shape == (10, 2) and np.allclose(np.linalg.norm(circle, axis=1), 1)
    with pytest.raises(ValueError, match="need 2 or at least 9"):
        lt.simplex_directions(10, 5, seed=0)


def test_the_guided_layout_keeps_geometrys_circle_in_more_dimensions():
    counts = np.array([50, 40, 30, 20, 10])
    g = lt.guided_layout(counts, 8)
    assert g.shape == (5, 8) and np.allclose(g[:, 2:], 0) and np.allclose(np.linalg.norm(g, axis=1), 1)
    assert np.allclose(lt.guided_layout(counts, 2), g[:, :2])


def test_every_head_is_built_on_the_same_backbone_draw():
    counts = np.array([12, 8, 6, 4])
    models = {h: lt.make_model(h, 4, 4, counts, seed=5, scale=20.0) for h in lt.HEADS}
    bodies = [m.body.state_dict() for m in models.values()]
    assert all(torch.equal(bodies[0][k], b[k]) for b in bodies[1:] for k in bodies[0])
    assert isinstance(models["norm"].head, NormConstrainedLinear)
    assert isinstance(models["learned"].head, torch.nn.Linear)
    for h in lt.FIXED:
        assert isinstance(models[h].head, ClassifierHead) and not list(models[h].head.parameters()), h
    assert models["cosine"].head.kind == "cosine" and models["cosine"].head.scale == 20.0
    assert list(models["cosine"].head.parameters())
    w = models["fixed_spaced"].head.weight
    assert torch.allclose(w @ w.T, torch.as_tensor(lt.simplex_directions(4, 4, 5) @ lt.simplex_directions(4, 4, 5).T,
                                                   dtype=w.dtype), atol=1e-6)
    assert torch.allclose(models["fixed_guided"].head.weight[:, 2:], torch.zeros(4, 2))


def test_class_recalls():
    r = lt.class_recalls(np.array([0, 0, 1, 2, 2]), np.array([0, 1, 1, 2, 2]), 4)
    assert r[:3].tolist() == [1.0, 0.5, 1.0] and np.isnan(r[3])


def test_train_head_and_the_study_on_toy_data(monkeypatch):
    train, test = toy_split(), toy_split((5, 5, 5, 5), seed=1)
    config = TrainConfig(epochs=1, batch_size=16, lr=1e-3, optimizer="adam", device="cpu")
    row = lt.train_head("toy", 4, "cosine_fixed", 20.0, 0, train, test, config, code="abc")
    assert row.arm == "cosine_fixed S=20" and len(row.recall_by_rank) == 4 and 0 <= row.worst_class_acc <= 1
    assert row.balanced_acc == pytest.approx(np.mean(row.recall_by_rank))
    assert row.lost == sum(r < 0.25 for r in row.recall_by_rank)
    monkeypatch.setenv("LASTLAYER_CACHE", "off")
    monkeypatch.setattr(lt, "long_tail_data", lambda *a, **k: (train, test, None))
    rows, counts = lt.long_tail_study(["toy"], [2], ["learned", "fixed_guided"], [1.0], [0, 1], config)
    assert [(r.head, r.seed) for r in rows] == [("learned", 0), ("learned", 1), ("fixed_guided", 0), ("fixed_guided", 1)]
    assert counts["toy"].tolist() == [12, 8, 6, 4]


# --- study 3 --------------------------------------------------------------------------------------------------

def test_selective_backprop_keeps_the_largest_losses():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    x = torch.randn(10, 4)
    y = torch.randint(0, 2, (10,))
    cb = sk.SelectiveBackprop([0.3, 0.5])
    cb.on_train_start(model, None)
    kx, ky = cb.filter_batch(model, x, y, epoch=0)
    losses = torch.nn.functional.cross_entropy(model(x), y, reduction="none")
    kept = losses.topk(7).indices.sort().values
    assert torch.equal(kx, x[kept]) and torch.equal(ky, y[kept])
    assert len(cb.filter_batch(model, x, y, epoch=5)[0]) == 5  # the last share for later epochs
    history = {}
    cb.on_epoch_end(model, 0, history)
    assert history == {"cache_hits": [8], "images_trained": [12]}
    with pytest.raises(ValueError, match="share"):
        sk.SelectiveBackprop([1.0])


def _settings():
    return sk.Settings(lr=0.05, optimizer="sgd", momentum=0.5, layer="conv1", compare=">=", update="after",
                       target_acc=0.3, device="cpu")


def test_train_selective_and_the_skipping_study_on_toy_data(monkeypatch):
    train, test = toy_split((20, 20, 20, 20)), toy_split((5, 5, 5, 5), seed=1)
    config = TrainConfig(epochs=2, batch_size=16, lr=0.05, optimizer="sgd", momentum=0.5, seed=3, device="cpu")
    out = sk.train_selective(train, test, config, [0.25], code="abc")
    assert out["history"]["images_trained"] == [60, 60] and 0 <= out["train_acc"] <= 1
    monkeypatch.setenv("LASTLAYER_CACHE", "off")
    monkeypatch.setattr(sk, "load_subsets", lambda *a, **k: (train, test))
    rows, histories = sk.skipping_study(["toy"], [0.3], [0, 1], _settings(), n_train=80, n_test=20, batch_size=16,
                                        epochs=2)
    assert [(r.trainer, r.seed) for r in rows] == [(t, s) for s in (0, 1) for t in sk.TRAINERS]
    for s in (0, 1):
        mine = {r.trainer: r for r in rows if r.seed == s}
        # the skipping trainers train as many images, epoch by epoch: the cache's share, rounded per batch
        assert mine["random"].images_trained == mine["selective"].images_trained
        assert abs(mine["random"].images_trained - mine["caching"].images_trained) <= 2 * 5  # 5 batches, 2 epochs
        assert mine["normal"].images_trained == 160
        assert all(r.equal_time == min(mine[t].seconds for t in sk.SKIPPING) for r in mine.values())
    assert set(histories) == {("toy", t, s) for t in sk.TRAINERS for s in (0, 1)}


# --- the claims -----------------------------------------------------------------------------------------------

def tail_row(head, seed, acc, scale=1.0, dataset="mnist", dim=2, worst=0.1, lost=1):
    return lt.TailRow(dataset, dim, head, scale, seed, balanced_acc=acc, worst_class_acc=worst, lost=lost,
                      recall_by_rank=[acc] * 10)


def skip_row(trainer, seed, acc, seconds=10.0, to_target=5.0, at_equal=0.8, dataset="mnist"):
    return sk.SkipRow(dataset, trainer, seed, epochs=5, images_trained=100, seconds=seconds, test_acc=acc, target=0.8,
                      seconds_to_target=to_target, equal_time=8.0, acc_at_equal_time=at_equal)


def synthetic_rows(fixed_gain=0.0, cache_speed=1.0, seeds=range(8)):
    rng = np.random.default_rng(0)
    rows = []
    for s in seeds:
        base = 0.6 + 0.002 * rng.standard_normal()
        for dim in (2, 16):
            for head, scale in lt.arms(lt.HEADS, [1.0, 20.0]):
                fixed = lt.arm_name(head, scale) in claims.FIXED_ARMS
                acc = base + (fixed_gain if head == "fixed_guided" else 0) + 0.002 * rng.standard_normal()
                rows.append(tail_row(head, s, acc, scale, dim=dim, lost=0 if head == "fixed_guided" else 2,
                                     worst=0.3 if fixed else 0.1 + 0.01 * rng.standard_normal()))
        for t in sk.TRAINERS:
            rows.append(skip_row(t, s, 0.9 + 0.01 * rng.standard_normal(),
                                 to_target=(5 * cache_speed if t == "caching" else 5.0) * (1 + 0.01 * rng.random())))
    return rows


def test_the_claims_reach_both_exits():
    params = SimpleNamespace()
    good = {c["id"] if isinstance(c, dict) else c.id: d.verdict
            for c, d, _ in claims.decide(synthetic_rows(fixed_gain=0.05, cache_speed=0.5), params)}
    assert good["tail-fixed-best-accuracy"] == "reproduced" and good["tail-guided-fewest-lost"] == "reproduced"
    assert good["tail-fixed-best-worst-class"] == "reproduced" and good["skip-cache-fastest"] == "reproduced"
    bad = {c.id: d.verdict for c, d, _ in claims.decide(synthetic_rows(fixed_gain=-0.1, cache_speed=2.0), params)}
    assert bad["tail-fixed-best-accuracy"] == "not reproduced" and bad["skip-cache-fastest"] == "not reproduced"
    assert bad["skip-cache-beats-random"] == "not reproduced"  # equal within noise: below the smallest effect


def test_every_claim_is_an_extension_with_a_smallest_effect():
    for c in claims.CLAIMS:
        assert c.setting == "extension" and c.why
        assert c.parameters.get("min_effect", 0) > 0 or c.parameters.get("margin", 0) > 0, c.id


def test_claims_missing_runs_are_not_testable():
    rows = [tail_row("learned", 0, 0.5), tail_row("learned", 1, 0.5)]
    decided = {c.id: d for c, d, _ in claims.decide(rows, SimpleNamespace())}
    assert decided["tail-fixed-best-accuracy"].verdict == "not testable"
    assert "not run" in decided["tail-fixed-best-accuracy"].detail
    assert decided["skip-cache-fastest"].verdict == "not testable"


def test_time_to_target_counts_a_miss_and_times_are_relative_to_normal():
    runs = claims.skip_runs([skip_row("normal", 0, 0.9, to_target=4.0), skip_row("caching", 0, 0.9,
                                                                                to_target=float("nan"))])["mnist"]
    assert claims.time_to_target(runs, "caching") == {0: 12.0}  # 10 s of training plus one mean epoch (2 s)
    assert claims.relative_times(runs)["caching"].tolist() == [3.0]
    x, y = claims.paired(runs, "caching", "normal", "test_acc")
    assert x.tolist() == y.tolist() == [0.9]


# --- figures and the text -------------------------------------------------------------------------------------

def test_figures_tables_and_findings_run_on_the_rows():
    rows = synthetic_rows(seeds=range(3))
    decided = [claim.entry(d, o) for claim, d, o in claims.decide(rows, SimpleNamespace())]
    assert figures.plot_recall_by_rank(rows) is not None
    assert len(figures.tail_table(rows)) == 2 * len(lt.arms(lt.HEADS, [1.0, 20.0]))
    histories = {("mnist", t, s): {"seconds": [1.0, 1.0], "test_acc": [0.5, 0.9]} for t in sk.TRAINERS for s in range(3)}
    assert figures.plot_skipping(rows, histories) is not None
    assert list(figures.skip_table(rows).trainer) == [figures.TRAINER_LABELS[t] for t in sk.TRAINERS]
    n = figures.numbers(rows, decided)
    assert n["tail-seeds"] == 3 and n["skip-seeds"] == 3 and n["verdict-skip-cache-fastest"]
    text = figures.findings(rows, decided)
    assert "Which last layer" in text and "cheaper ways" in text and "tail-fixing-no-harm" in text
    assert figures.arm_label("cosine_fixed S=20") == "cosine, fixed, S=20"


def test_run_checks_one_target_per_data_set():
    fields = {f: None for f in cross.Params.__dataclass_fields__}
    params = cross.Params(**{**fields, "skip_datasets": ["mnist", "fashion_mnist"], "skip_targets": [0.9]})
    with pytest.raises(ValueError, match="one target accuracy per data set"):
        cross.run(params)


# --- study 2 --------------------------------------------------------------------------------------------------

def test_the_networks_data_and_their_pooled_layers(monkeypatch):
    from lastlayer.papers.cross import initialisers as ini
    pairs = SimpleNamespace(normalized=lambda: SimpleNamespace(
        train=Split(torch.rand(8, 2, 14, 14), torch.randint(0, 2, (8, 3)), ["greater", "less or equal"]),
        test=Split(torch.rand(6, 2, 14, 14), torch.randint(0, 2, (6, 3)), ["greater", "less or equal"])))
    monkeypatch.setattr(ini, "digit_pairs", lambda n, seed, n_test=None: pairs)
    train, val = ini.network_data("pairnet", 8, 6, 0)
    assert train.y.shape == (8,) and val.x.shape == (6, 2, 14, 14)  # the pair's target only
    assert ini.pooled_layers("pairnet", train) == 1 and ini.pooled_layers("siamese", train) == 1
    digits = toy_split()
    assert ini.pooled_layers("basenet", digits) == 2 and ini.pooled_layers("embed2d_cnn", digits) == 0
    assert not ini.maker("pairnet", train)().body.bn1.__class__.__name__.startswith("BatchNorm")
    with pytest.raises(ValueError, match="unknown network"):
        ini.network_data("f34", 8, 6, 0)
    x = torch.arange(20.0)
    assert torch.equal(ini.batch_of(x, 5, 1), ini.batch_of(x, 5, 1)) and len(ini.batch_of(x, 5, 2)) == 5


def test_the_jump_picture_and_the_study_on_toy_data(monkeypatch):
    from lastlayer.papers.cross import initialisers as ini
    digits, val = toy_split((10, 10, 10, 10)), toy_split((5, 5, 5, 5), seed=1)
    curves, rows = ini.jump_picture("basenet", digits, draws=2, batch=8)
    assert len(rows) == 5 * 2 * 2 and {r.method for r in rows} == set(ini.METHODS)
    assert set(curves.columns) >= {"network", "method", "draw", "l", "forward", "backward"}
    monkeypatch.setenv("LASTLAYER_CACHE", "off")
    monkeypatch.setattr(ini, "network_data", lambda *a: (digits, val))
    rows, _ = ini.initialiser_study(["basenet"], [1e-3, 1e-2], [100], [0, 1], n_train=40, n_val=20, epochs=1,
                                    batch_size=16, draws=1, signal_batch=8)
    init = [r for r in rows if isinstance(r, ini.InitRow)]
    assert len([r for r in init if r.role == "select"]) == 5 * 2 and len([r for r in init if r.role == "eval"]) == 5 * 2
    chosen = ini.best_rates(init)
    assert all(r.lr == chosen["basenet", r.method] for r in init if r.role == "eval")


def test_best_rates_prefer_the_best_mean_and_then_the_smaller_rate():
    from lastlayer.papers.cross.initialisers import InitRow, best_rates
    row = lambda lr, acc, role="select": InitRow("n", role, "xavier", lr, 0, acc, False, 1)
    assert best_rates([row(0.1, 0.5), row(0.01, 0.7), row(0.001, 0.7), row(1.0, 0.9, "eval")]) == {("n", "xavier"): 0.001}


def test_the_asv_claims_read_the_evaluation_runs_and_the_jumps():
    from lastlayer.papers.cross.initialisers import InitRow, JumpRow
    rows = [InitRow("basenet", "eval", m, 0.001, s, 0.9 if m == "asv_backward" else 0.5 + 0.01 * s, False, 2)
            for m in ("xavier", "kaiming_backward", "asv_backward") for s in range(4)]
    rows += [InitRow("basenet", "select", "xavier", 0.01, 9, 0.99, False, 2)]
    rows += [JumpRow("basenet", m, d, d, l, "max 4", 2.0 if m.startswith("kaiming") else 0.1 * d,
                     -2.0 if m.startswith("kaiming") else 0.05 * l) for m in ("kaiming_forward", "kaiming_backward",
                                                                             "asv_forward", "asv_backward")
             for d in range(4) for l in (1, 2)]
    decided = {c.id: d for c, d, _ in claims.decide(rows, SimpleNamespace())}
    assert decided["asv-backward-best-other-networks"].verdict == "reproduced"
    assert decided["asv-keeps-variance-other-networks"].verdict == "reproduced"
    x, y = claims._jump_pairs(claims.jump_runs(rows)["basenet"], "backward")
    assert x.tolist() == [2.0] * 8 and y.tolist() == [0.05, 0.1] * 4
    figures.plot_jumps(rows)
    assert list(figures.init_table(rows).initialiser) == ["xavier", "kaiming_backward", "asv_backward"]
