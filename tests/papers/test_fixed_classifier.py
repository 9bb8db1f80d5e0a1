"""The fixed-classifier paper's experiments, claims and figures: the positive-part bound, the signed
embedding, selection on separate seeds, diverged runs, the learning-rate sweep on seeds of its own, and the
claims decided from synthetic runs."""
import math
import re

from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lastlayer import stats
from lastlayer.data import Split
from lastlayer.models import create_model
from lastlayer.papers import fixed_classifier as paper
from lastlayer.papers.fixed_classifier import claims, figures
from lastlayer.papers.fixed_classifier.experiments import (Bench, CorruptionRow, Params, Row, Runs, Variant,
                                                           check_seeds, choose_settings, lr_sweep_calls, model_rows,
                                                           nearest_cosine, paper_variants, reachable_cosine,
                                                           run_study, train_one)

TINY = dict(backbone="convnet", widths=[4, 8], epochs=1, batch_size=16, device="cpu")


def _params(**over) -> Params:
    """The notebook's parameters at a tiny size (every field given: Params has no defaults)."""
    p = dict(seed=0, n_seeds=1, selection_seeds=1, lr_sweep_seeds=0, device="cpu", datasets=["toy"],
             grid_datasets=["toy"], train_size=None, test_size=None, backbone="convnet", widths=[4, 8], epochs=1,
             batch_size=16, lr=0.1, learned_dot_lrs=[0.01, 0.1], lr_sweep=[0.1, 0.3], weight_decay_dot=5e-4, weight_decay_cosine=0.0, momentum=0.9,
             schedule="cosine", plateau_factor=0.2, plateau_patience=3, augment=False, scales=[1.0, 20.0],
             signed_extension=True, impulse_amounts=[], jpeg_qualities=[50], blur_sigmas=[], feature_points=20)
    return Params(**{**p, **over})


def _toy_bench(name="toy", corrupted=True):
    g = torch.Generator().manual_seed(0)
    classes = [str(i) for i in range(4)]
    x, y = torch.randn(64, 1, 28, 28, generator=g), torch.arange(64) % 4
    bad = {("jpeg", 50.0): Split(x[:32], y[:32], classes)} if corrupted else {}
    return Bench(name, Split(x, y, classes), Split(x[:32], y[:32], classes), bad)


def test_run_on_tiny_data_keeps_fixed_head_and_reports_metrics():
    r = train_one(_toy_bench(), Variant("cosine", True, 1.0), seed=0, keep_model=True, **TINY)
    torch.manual_seed(0)
    fresh = create_model("convnet", num_classes=4, in_channels=1, widths=[4, 8]).reset_head(kind="cosine", fixed=True)
    assert torch.equal(r.model.head.weight, fresh.head.weight)  # the seed's draw, untouched by training
    assert r.class_cosine.shape == (4, 4) and r.confusion.sum() == 32
    row, bad = r.rows()
    assert isinstance(row, Row) and isinstance(bad, CorruptionRow)
    assert (bad.corruption, bad.severity, bad.acc) == ("jpeg", 50.0, r.corrupted_acc[("jpeg", 50.0)])
    assert bad.variant == row.variant and bad.seed == row.seed
    assert 0 <= row.best_acc <= 1 and not row.diverged
    # a ReLU-pooled embedding: the image-to-class cosine never exceeds its reachable maximum
    assert 0 < row.cosine_bound < 1 and row.image_class_cosine <= row.cosine_bound + 1e-6
    names = [v.name for v in paper_variants([1, 20])]
    assert names == ["learned dot", "fixed dot", "learned cosine S=1", "fixed cosine S=1", "learned cosine S=20",
                     "fixed cosine S=20"]


def test_signed_embedding_takes_both_signs_and_lifts_the_bound():
    r = train_one(_toy_bench(corrupted=False), Variant("cosine", True, 1.0, signed=True), seed=0, keep_model=True,
                  **TINY)
    with torch.no_grad():
        f = r.model.features(torch.randn(8, 1, 28, 28))
    assert (f < 0).any() and (f > 0).any()
    assert r.cosine_bound == 1.0 and r.variant.name == "fixed cosine S=1 signed"


def test_diverged_run_is_kept_at_chance():
    r = train_one(_toy_bench(), Variant("dot", False, lr=1e30), seed=0, **TINY)
    assert r.diverged and r.best_acc == 0.25 and r.corrupted_acc == {("jpeg", 50.0): 0.25}
    assert math.isnan(r.rows()[0].spearman) and r.rows()[1].acc == 0.25


def test_positive_part_bound_is_never_exceeded_and_is_attained():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(5, 32, generator=g)
    bound = reachable_cosine(w)
    wu = F.normalize(w, dim=1)
    assert np.allclose(bound, wu.clamp(min=0).norm(dim=1).numpy())
    f = torch.rand(2000, 32, generator=g) ** 3  # non-negative, many shapes
    cos = (F.normalize(f, dim=1) @ wu.T).numpy()
    assert (cos <= bound[None] + 1e-6).all()
    attained = F.cosine_similarity(w.clamp(min=0), w, dim=1).numpy()  # f = w+ reaches it
    assert np.allclose(attained, bound, atol=1e-6)
    assert np.allclose(reachable_cosine(torch.ones(1, 4)), 1.0) and np.allclose(reachable_cosine(-torch.ones(1, 4)), 0)


def test_nearest_cosine_ignores_the_diagonal_and_a_shared_shift_matters_less_than_pairs():
    c = np.array([[1, 0.9, 0.0], [0.9, 1, 0.1], [0.0, 0.1, 1]])
    assert math.isclose(nearest_cosine(c), (0.9 + 0.9 + 0.1) / 3)
    assert nearest_cosine(np.eye(3)) == 0


def test_run_study_selects_on_its_own_seeds():
    benches = {"toy": _toy_bench()}
    runs = run_study(benches, _params())
    rows = [row for r in runs for row in r.rows()]
    sel, ev = model_rows(rows, "select"), model_rows(rows, "eval")
    assert {r.seed for r in sel} == {1000} and {r.seed for r in ev} == {0}
    assert sorted(r.lr for r in sel if r.head == "dot") == [0.01, 0.1]
    chosen = choose_settings(rows)["toy"]
    learned_dot = [r for r in ev if r.head == "dot" and not r.fixed]
    assert len(learned_dot) == 1 and learned_dot[0].lr == chosen["lr learned dot"]
    assert sum(r.signed for r in ev) == 1
    assert len(rows) == 2 * len(runs)  # a Row and one CorruptionRow (jpeg@50) per model
    with pytest.raises(ValueError, match="selection seeds"):
        run_study(benches, _params(n_seeds=1001))


# ---------------------------------------------------------------- claims on synthetic runs
VARIANTS = [("dot", False, 1.0, False), ("dot", True, 1.0, False)] + [
    ("cosine", f, s, False) for s in (1.0, 20.0, 40.0) for f in (False, True)]
SIGNED = ("cosine", True, 1.0, True)


def _rows(n=6, fixed_dot_gap=0.0, signed_cos=0.96, spread=1.0, seed=0):
    """Synthetic runs: every measure the claims read, with chosen effects and a little noise."""
    rng = np.random.default_rng(seed)
    noise = lambda sd: float(rng.normal(0, sd))
    rows = []
    for role, seeds in (("select", [100]), ("eval", range(n))):
        for s in seeds:
            for data, specs in (("fashion_mnist", VARIANTS + [SIGNED]), ("mnist", VARIANTS[:4])):
                if role == "select":  # as run_study: the learned dot model, and the S grid where there is one
                    specs = [sp for sp in specs if not sp[3] and sp[:2] != ("dot", True)
                             and (data == "fashion_mnist" or sp[0] == "dot")]
                for head, fixed, scale, signed in specs:
                    acc = 0.8 + (fixed_dot_gap if head == "dot" and fixed else 0) + noise(0.005) + \
                        (0.1 if head == "cosine" and fixed and scale == 1 else 0)
                    icos = 0.68 if fixed else {1.0: 0.7, 20.0: 0.5, 40.0: 0.4}[scale]
                    who = dict(role=role, dataset=data, variant=f"{head} {fixed} {scale} {signed}", head=head,
                               fixed=fixed, scale=scale, lr=0.1, signed=signed, seed=s)
                    rows.append(Row(**who, diverged=False, best_acc=acc, final_acc=acc, spearman=0.7 + noise(0.02),
                                    class_vector_cosine=0.0,
                                    class_vector_nn_cosine=0.6 - (0 if scale == 1 else 0.3 * spread) + noise(0.01),
                                    lookalike_contrast=0.3 + noise(0.02),
                                    image_class_cosine=(signed_cos if signed else icos) + noise(0.005),
                                    cosine_bound=1.0 if signed else 0.7,
                                    compactness={1.0: 0.8, 20.0: 0.6, 40.0: 0.5}[scale] + 0.1 * fixed + noise(0.01),
                                    separability=0.5 + 0.1 * fixed + noise(0.01)))
                    if data == "fashion_mnist":
                        rows += [CorruptionRow(**who, corruption="jpeg", severity=q, acc=acc - 0.1 + noise(0.005))
                                 for q in (10.0, 30.0)]
    return rows


def _verdicts(rows):
    return {c.id: d.verdict for c, d, _ in claims.decide(rows, None)}


def test_claims_are_unique_and_cover_every_table_and_figure():
    ids = [c.id for c in claims.CLAIMS]
    assert len(ids) == len(set(ids))
    text = " ".join(c.paper for c in claims.CLAIMS)
    for kind, n in (("Table", 6), ("Figure", 5)):
        for k in range(1, n + 1):
            assert re.search(rf"{kind}s? ([0-9] and )?{k}\b", text), f"{kind} {k} has no claim"
    assert "Tables 7-9" in text
    assert all(c.setting.startswith("proxy: ") or c.setting in ("extension", "paper setup") for c in claims.CLAIMS)
    # "does not hurt" claims are non-inferiority with a margin, never "no significant difference"
    for cid in ("fixing-keeps-dot-accuracy", "best-s-no-benefit-from-learning", "fixing-keeps-robustness"):
        assert claims.BY_ID[cid].rule == "noninferiority" and claims.BY_ID[cid].parameters["margin"] > 0


def test_every_direction_claim_has_a_smallest_effect_and_reaches_both_exits():
    directions = [c for c in claims.CLAIMS if c.rule == "direction"]
    assert len(directions) >= 9
    for c in directions:  # a declared min_effect > 0, explained, and the change explained
        assert c.parameters["min_effect"] > 0 and "min_effect" in c.why and "min_effect" in c.revised, c.id
    # a precise effect on the expected side but under the smallest that counts: not reproduced, not inconclusive
    small = _verdicts(_rows(n=30, fixed_dot_gap=claims.ACC_MIN / 4, spread=claims.COS_MIN / 3 / 4))
    assert small["fixing-raises-dot-accuracy"] == "not reproduced"
    assert small["larger-s-spreads-class-vectors"] == "not reproduced"
    big = _verdicts(_rows(n=30, fixed_dot_gap=4 * claims.ACC_MIN))
    assert big["fixing-raises-dot-accuracy"] == big["larger-s-spreads-class-vectors"] == "reproduced"


def test_decide_on_synthetic_runs():
    rows = _rows(n=20)  # equal drops decide inside the 1-point robustness margin at alpha 0.05 / 4 only with n ~ 20
    out = claims.decide(rows, None)
    assert [c.id for c, _, _ in out] == [c.id for c in claims.CLAIMS]
    v = _verdicts(rows)
    assert v["fixing-keeps-dot-accuracy"] == "reproduced"          # equal accuracy, tight: inside the margin
    assert v["fixing-raises-dot-accuracy"] in ("inconclusive", "not reproduced")
    assert v["fixed-cosine-s1-trains"] == "reproduced"
    assert v["larger-s-spreads-class-vectors"] == "reproduced"
    assert v["larger-s-lowers-image-cosine"] == "reproduced"
    assert v["fixed-cosine-s1-compact"] == "reproduced"            # 0.68 of a 0.7 bound
    assert v["fixed-cosine-s1-compact-signed"] == "reproduced"
    assert v["fixing-keeps-robustness"] == "reproduced"
    assert v["figure-1-scheme"] == v["generalization-sets"] == "not testable"


def test_decide_turns_with_the_effects():
    v = _verdicts(_rows(fixed_dot_gap=-0.05, signed_cos=0.5, spread=-1.0))
    assert v["fixing-keeps-dot-accuracy"] == "not reproduced"      # 5 points worse: beyond the 1-point margin
    assert v["fixed-cosine-s1-compact-signed"] == "not reproduced"
    assert v["larger-s-spreads-class-vectors"] == "not reproduced"


def test_robustness_uses_the_drop_and_a_bonferroni_level():
    # every model equally worse under corruption: drops equal, clean accuracy irrelevant
    up = lambda r: replace(r, **({"best_acc": r.best_acc + 0.2} if r.experiment == "model" else {"acc": r.acc + 0.2}))
    rows = [up(r) if r.head == "dot" and r.fixed else r for r in _rows(n=20)]
    out = {c.id: (d, ours) for c, d, ours in claims.decide(rows, None)}
    d, ours = out["fixing-keeps-robustness"]
    assert d.verdict == "reproduced" and len(d.parts) == 4 and "alpha 0.0125" in ours
    labels = [p.label for p in d.parts]  # per model pair, every corruption setting in order of severity
    assert labels[:2] == ["dot jpeg@10", "dot jpeg@30"] and labels[2].startswith("cosine (fixed S=")
    assert labels[2].endswith(" jpeg@10") and labels[3].endswith(" jpeg@30")
    # the declared alpha divided among the k parts, as the Bonferroni level was computed before
    ev = lambda kind, fixed: sorted((r for r in rows if r.experiment == kind and r.role == "eval" and r.head == "dot"
                                     and r.dataset == "fashion_mnist" and r.fixed == fixed
                                     and getattr(r, "severity", 10.0) == 10.0), key=lambda r: r.seed)
    drop = lambda fixed: np.array([c.acc - m.best_acc for m, c in zip(ev("model", fixed), ev("corruption", fixed))])
    by_hand = claims.BY_ID["fixing-keeps-robustness"].decide(drop(True), drop(False), alpha=stats.bonferroni(0.05, 4))
    assert (by_hand.estimate, by_hand.interval) == (d.parts[0].estimate, d.parts[0].interval)
    c = claims.BY_ID["fixing-keeps-robustness"]
    assert c.correction == "bonferroni" and stats.make_rule(c.rule, c.parameters).alpha == claims.FAMILY_ALPHA
    assert "For each model pair and corruption setting" in c.rule_criterion and "Bonferroni" in c.rule_criterion


def test_figure_helpers_on_fake_runs():
    rows = _rows(n=3)
    chosen = choose_settings(rows)
    assert set(chosen) == {"fashion_mnist", "mnist"} and "S fixed" not in chosen["mnist"]
    t1 = figures.accuracy_table(rows, "dot")
    assert list(t1.columns) == ["best acc (%)", "final acc (%)", "runs"] and "±" in t1.iloc[0, 0]
    assert len(figures.best_s_table(rows, chosen)) == 2
    assert not figures.geometry_table(rows).empty and not figures.spearman_table(rows).empty
    rt = figures.robustness_table(rows, chosen)
    assert "drop: jpeg, severity 10" in rt.index and rt.shape[1] == 4 and rt.index[0] == "clean accuracy (%)"
    assert figures.selection_table(rows, chosen)["chosen"].tolist().count("yes") >= 3
    fig = figures.corruption_drops(rows, chosen)
    assert len(fig.axes) == 1
    b = figures.bound_summary(rows, "fashion_mnist")
    assert math.isclose(b["bound"], 0.7) and 0.9 < b["share"] < 1
    runs = Runs(rows, [], {}, chosen)
    g = figures.glue_values(claims.decide(rows, None), runs)
    assert g["n_claims"] == len(claims.CLAIMS) and g["v_figure_1_scheme"] == "not testable"
    m = figures.summary_metrics(runs)
    assert m["runs"] == len(model_rows(rows, None)) and set(m["fixed_cosine_s1"]) == {"fashion_mnist", "mnist"}


def test_matrix_figures_on_fake_runs():
    bench = _toy_bench(corrupted=False)
    runs = [train_one(bench, v, 0, keep_model=True, **TINY) for v in paper_variants([1.0, 20.0])]
    assert len(figures.kept(runs, "toy")) == 6
    assert len(figures.cosine_matrices(runs, "toy", bench.classes).axes) == 5  # 4 panels and a colour bar
    assert len(figures.confusion_scatter(runs, "toy").axes) == 3
    assert len(figures.feature_views(runs, "toy", bench.test, bench.classes, points=20).axes) == 4


# ---------------------------------------------------------------- the learning-rate sweep
SWEEP_LRS = (0.001, 0.01, 0.1, 0.3)


def _sweep_rows(n=6, top_gap=0.0, spread=0.002, seed_sd=0.0, seed=0):
    """Synthetic sweep runs: fixed and learned dot and cosine S = 1 models at every rate of SWEEP_LRS, fixed minus
    learned `top_gap` at the highest rate and -0.2 below it (so a claim reading any other rate would turn), a
    per-seed shift of sd `seed_sd` shared by both models of a seed, and noise of sd `spread` per model."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(2000, 2000 + n):
        shift = float(rng.normal(0, seed_sd))
        for data in ("fashion_mnist", "mnist"):
            for head in ("dot", "cosine"):
                for lr in SWEEP_LRS:
                    for fixed in (False, True):
                        gap = (top_gap if lr == max(SWEEP_LRS) else -0.2) if fixed else 0.0
                        acc = 0.7 + gap + shift + float(rng.normal(0, spread))
                        rows.append(Row(role="lr_sweep", dataset=data, variant=f"{head} {fixed}", head=head,
                                        fixed=fixed, scale=1.0, lr=lr, signed=False, seed=s, diverged=False,
                                        best_acc=acc, final_acc=acc, spearman=0.0, class_vector_cosine=0.0,
                                        class_vector_nn_cosine=0.0, lookalike_contrast=float("nan"),
                                        image_class_cosine=0.5, cosine_bound=0.7, compactness=0.5,
                                        separability=0.5))
    return rows


def _lr_claim(rows):
    return next((d, ours) for c, d, ours in claims.decide(rows, None) if c.id == "fixed-trains-at-higher-lr")


def test_lr_claim_is_declared_as_a_direction_at_the_sweeps_top_rate():
    c = claims.BY_ID["fixed-trains-at-higher-lr"]
    assert c.rule == "direction" and c.unit == "points" and c.parts == "head and dataset"
    assert c.parameters == {"expected": "greater", "min_effect": claims.ACC_MIN, "alpha": stats.bonferroni(0.05, 4)}
    assert c.parameters["min_effect"] == claims.BY_ID["fixing-raises-dot-accuracy"].parameters["min_effect"] == 0.02
    assert "not testable" in c.revised and "Table 1" in c.why


def test_lr_claim_is_reproduced_when_fixed_beats_learned_at_the_top_rate():
    rows = _rows(n=3) + _sweep_rows(top_gap=0.1)
    d, ours = _lr_claim(rows)
    assert d.verdict == "reproduced" and len(d.parts) == 4
    assert [p.label for p in d.parts] == [f"{h}, {data}: fixed - learned at lr 0.3" for h in ("dot product", "cosine S=1")
                                          for data in ("fashion_mnist", "mnist")]
    assert all(math.isclose(p.estimate, 0.1, abs_tol=0.01) and p.n == 6 for p in d.parts)
    assert ours.startswith("dot product, fashion_mnist: fixed - learned at lr 0.3: +10.") and "points (n = 6)" in ours
    assert ours.count("fixed - learned at lr 0.3") == 4
    # decided paired by seed, at the declared alpha 0.05 / 4
    at = lambda fixed: np.array([r.best_acc for r in sorted(rows, key=lambda r: r.seed) if r.role == "lr_sweep"
                                 and r.dataset == "fashion_mnist" and r.head == "dot" and r.lr == 0.3
                                 and r.fixed == fixed])
    by_hand = stats.direction(at(True), at(False), paired=True, expected="greater", min_effect=0.02, alpha=0.0125)
    assert (by_hand.estimate, by_hand.interval) == (d.parts[0].estimate, d.parts[0].interval)


def test_lr_claim_pairs_by_seed():
    # a small gain under a large per-seed shift: only the pairing sees it
    rows = _sweep_rows(n=8, top_gap=0.05, spread=0.002, seed_sd=0.05)
    assert _lr_claim(rows)[0].verdict == "reproduced"
    welch = stats.direction([r.best_acc for r in rows if r.lr == 0.3 and r.fixed and r.head == "dot"
                             and r.dataset == "mnist"],
                            [r.best_acc for r in rows if r.lr == 0.3 and not r.fixed and r.head == "dot"
                             and r.dataset == "mnist"], expected="greater", min_effect=0.02, alpha=0.0125)
    assert welch.verdict == "inconclusive"


def test_lr_claim_is_not_reproduced_when_fixed_and_learned_are_equal():
    d, _ = _lr_claim(_sweep_rows(n=10, top_gap=0.0, spread=0.002))
    assert d.verdict == "not reproduced" and all(p.verdict == "not reproduced" for p in d.parts)
    assert all(p.interval[1] < claims.ACC_MIN for p in d.parts)


def test_lr_claim_without_a_sweep_is_not_testable_with_a_reason():
    d, ours = _lr_claim(_rows(n=3))
    assert d.verdict == "not testable" and ours is None and "lr_sweep_seeds = 0" in d.detail
    assert _verdicts(_rows(n=3) + _sweep_rows(top_gap=0.1))["fixing-raises-dot-accuracy"] == \
        _verdicts(_rows(n=3))["fixing-raises-dot-accuracy"]  # sweep rows never enter the evaluation claims


def test_sweep_seeds_are_their_own_and_only_the_rate_varies():
    p = _params(seed=5, n_seeds=4, selection_seeds=2, lr_sweep_seeds=3, lr_sweep=[0.01, 0.3])
    assert p.lr_sweep_seed_list == [2005, 2006, 2007]
    assert not set(p.lr_sweep_seed_list) & set(p.eval_seeds) and not set(p.lr_sweep_seed_list) & set(
        p.selection_seed_list)
    calls = lr_sweep_calls({"toy": _toy_bench()}, p)
    assert len(calls) == 3 * 2 * 4  # seeds x rates x (dot, cosine S=1) x (learned, fixed)
    assert {c.args[2] for c in calls} == set(p.lr_sweep_seed_list) and {c.keywords["role"] for c in calls} == {
        "lr_sweep"}
    variants = {c.args[1] for c in calls}
    assert {(v.head, v.fixed, v.lr) for v in variants} == {(h, f, a) for h in ("dot", "cosine") for f in (False, True)
                                                           for a in (0.01, 0.3)}
    assert {v.weight_decay for v in variants if v.head == "dot"} == {p.weight_decay_dot}
    assert {v.weight_decay for v in variants if v.head == "cosine"} == {p.weight_decay_cosine}
    assert {v.scale for v in variants} == {1.0} and not any(v.signed for v in variants)
    assert all(c.args[0].corrupted == {} for c in calls)
    assert {c.keywords["epochs"] for c in calls} == {p.epochs} and {c.keywords["batch_size"] for c in calls} == {
        p.batch_size}
    assert lr_sweep_calls({"toy": _toy_bench()}, _params(lr_sweep_seeds=0)) == []
    with pytest.raises(ValueError, match="selection seeds must differ from lr sweep seeds"):
        check_seeds(_params(selection_seeds=1001, lr_sweep_seeds=1))
    check_seeds(_params(n_seeds=1000, selection_seeds=1000, lr_sweep_seeds=1000))  # side by side, none shared


def test_run_study_trains_the_sweep_on_its_seeds():
    rows = [row for r in run_study({"toy": _toy_bench()}, _params(lr_sweep_seeds=1)) for row in r.rows()]
    sweep = model_rows(rows, "lr_sweep")
    assert len(sweep) == 2 * 4 and {r.seed for r in sweep} == {2000} and {r.lr for r in sweep} == {0.1, 0.3}
    assert not [r for r in rows if r.experiment == "corruption" and r.role == "lr_sweep"]
    assert {r.seed for r in model_rows(rows, "eval")} == {0}


def test_lr_sweep_figure_on_fake_rows():
    fig = figures.lr_sweep(_rows(n=3) + _sweep_rows(n=3, top_gap=0.1))
    panels = [ax for ax in fig.axes if ax.get_xscale() == "log"]
    assert [ax.get_title() for ax in panels] == ["Fashion-MNIST", "MNIST"]
    assert all(len(ax.containers) == 4 for ax in panels)  # learned and fixed, dot and cosine S = 1
    line = panels[0].containers[3].lines[0]  # fixed cosine S = 1: +10 points at the top rate, -20 below it
    assert np.allclose(line.get_xdata(), SWEEP_LRS) and line.get_ydata()[-1] > line.get_ydata()[0] + 25
    empty = figures.lr_sweep(_rows(n=3))
    assert "no learning-rate sweep" in " ".join(t.get_text() for t in empty.axes[0].texts)
    g = figures.glue_values(claims.decide(_rows(n=3) + _sweep_rows(n=3), None), Runs(_rows(n=3) + _sweep_rows(n=3),
                                                                                      [], {}, {}))
    assert g["n_sweep"] == 3 and g["n_seeds"] == 3


# ---------------------------------------------------------------- the one entry point
def test_params_are_the_notebook_cell():
    import dataclasses
    import json
    from pathlib import Path

    from lastlayer.book.params import read_cell
    nb = json.loads((Path(__file__).parents[2] / "notebooks" / "fixed_classifier.ipynb").read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    assert [f.name for f in dataclasses.fields(Params)] == list(read_cell("".join(cell["source"])))


def test_run_on_a_tiny_study_gives_rows_that_decide_every_claim():
    runs = paper.run(_params(datasets=["mnist"], grid_datasets=["mnist"], train_size=64, test_size=32, n_seeds=2,
                             jpeg_qualities=[20], blur_sigmas=[1.0]))
    models = model_rows(runs.rows, None)
    bad = [r for r in runs.rows if r.experiment == "corruption"]
    assert len(models) == len(runs.results) == 6 + 2 * 7 and set(runs.benches) == {"mnist"}
    assert len(bad) == 2 * len(models)  # every mnist model under jpeg@20 and defocus_blur@1
    assert {(r.corruption, r.severity) for r in bad} == {("jpeg", 20.0), ("defocus_blur", 1.0)}
    assert set(runs.chosen["mnist"]) == {"lr learned dot", "S learned", "S fixed"}
    out = claims.decide(runs.rows, None)
    assert [c.id for c, _, _ in out] == [c.id for c in claims.CLAIMS]
    robust = next(d for c, d, _ in out if c.id == "fixing-keeps-robustness")
    assert len(robust.parts) == 4 and robust.verdict != "not testable"


def test_a_missing_arm_is_not_testable_with_a_reason():
    rows = [r for r in _rows() if not (r.head == "dot" and r.fixed)]  # no fixed dot-product model at all
    out = {c.id: (d, ours) for c, d, ours in claims.decide(rows, None)}
    for cid in ("fixing-keeps-dot-accuracy", "fixing-raises-dot-accuracy"):
        d, ours = out[cid]
        assert d.verdict == "not testable" and ours is None and "need at least 2 values" in (d.parts or (d,))[0].detail
    d, _ = out["fixing-keeps-robustness"]  # its dot-product parts cannot be measured, the cosine ones can
    assert [p.verdict == "not testable" for p in d.parts] == [True, True, False, False]
    assert out["fixed-cosine-s1-trains"][0].verdict == "reproduced"  # the other claims are unaffected
    # no corruption rows at all: the robustness claim says so
    d, ours = {c.id: (d, o) for c, d, o in claims.decide([r for r in rows if r.experiment == "model"], None)}[
        "fixing-keeps-robustness"]
    assert d.verdict == "not testable" and "no corruptions" in d.detail and ours is None
