"""The fixed-classifier paper's experiments, claims and figures: the positive-part bound, the signed
embedding, selection on separate seeds, diverged runs, and the claims decided from synthetic runs."""
import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lastlayer.data import Split
from lastlayer.models.convnet import ConvNet
from lastlayer.papers.fixed_classifier import claims, figures
from lastlayer.papers.fixed_classifier.experiments import (Bench, Variant, choose_settings, nearest_cosine,
                                                           paper_variants, reachable_cosine, run, run_study)


def _toy_bench(name="toy", corrupted=True):
    g = torch.Generator().manual_seed(0)
    classes = [str(i) for i in range(4)]
    x, y = torch.randn(64, 1, 28, 28, generator=g), torch.arange(64) % 4
    bad = {"jpeg@50": Split(x[:32], y[:32], classes)} if corrupted else {}
    return Bench(name, Split(x, y, classes), Split(x[:32], y[:32], classes), bad)


def test_run_on_tiny_data_keeps_fixed_head_and_reports_metrics():
    r = run(_toy_bench(), Variant("cosine", True, 1.0), seed=0, backbone_kwargs={"widths": [4, 8]}, epochs=1,
            batch_size=16, device="cpu", keep_model=True)
    torch.manual_seed(0)
    fresh = ConvNet(widths=[4, 8], num_classes=4).reset_head(kind="cosine", fixed=True)
    assert torch.equal(r.model.head.weight, fresh.head.weight)  # the seed's draw, untouched by training
    assert r.class_cosine.shape == (4, 4) and r.confusion.sum() == 32
    row = r.row()
    assert row["acc jpeg@50"] == r.corrupted_acc["jpeg@50"] and 0 <= row["best_acc"] <= 1 and not row["diverged"]
    # a ReLU-pooled embedding: the image-to-class cosine never exceeds its reachable maximum
    assert 0 < row["cosine_bound"] < 1 and row["image_class_cosine"] <= row["cosine_bound"] + 1e-6
    names = [v.name for v in paper_variants([1, 20])]
    assert names == ["learned dot", "fixed dot", "learned cosine S=1", "fixed cosine S=1", "learned cosine S=20",
                     "fixed cosine S=20"]


def test_signed_embedding_takes_both_signs_and_lifts_the_bound():
    r = run(_toy_bench(corrupted=False), Variant("cosine", True, 1.0, signed=True), seed=0,
            backbone_kwargs={"widths": [4, 8]}, epochs=1, batch_size=16, device="cpu", keep_model=True)
    with torch.no_grad():
        f = r.model.features(torch.randn(8, 1, 28, 28))
    assert (f < 0).any() and (f > 0).any()
    assert r.cosine_bound == 1.0 and r.variant.name == "fixed cosine S=1 signed"


def test_diverged_run_is_kept_at_chance():
    r = run(_toy_bench(), Variant("dot", False, lr=1e30), seed=0, backbone_kwargs={"widths": [4, 8]}, epochs=1,
            batch_size=16, device="cpu")
    assert r.diverged and r.best_acc == 0.25 and r.corrupted_acc == {"jpeg@50": 0.25}
    assert math.isnan(r.row()["spearman"])


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
    runs = run_study(benches, seeds=[0], selection_seeds=[9], scales=[1.0, 20.0], grid_datasets=["toy"],
                     learned_dot_lrs=[0.01, 0.1], backbone_kwargs={"widths": [4, 8]}, epochs=1, batch_size=16,
                     device="cpu")
    rows = [r.row() for r in runs]
    sel = [r for r in rows if r["role"] == "select"]
    ev = [r for r in rows if r["role"] == "eval"]
    assert {r["seed"] for r in sel} == {9} and {r["seed"] for r in ev} == {0}
    assert sorted(r["lr"] for r in sel if r["head"] == "dot") == [0.01, 0.1]
    chosen = choose_settings(rows)["toy"]
    learned_dot = [r for r in ev if r["head"] == "dot" and not r["fixed"]]
    assert len(learned_dot) == 1 and learned_dot[0]["lr"] == chosen["lr learned dot"]
    assert sum(r["signed"] for r in ev) == 1
    with pytest.raises(ValueError, match="selection seeds"):
        run_study(benches, seeds=[0], selection_seeds=[0], scales=[1.0], grid_datasets=[])


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
                    r = {"role": role, "dataset": data, "variant": f"{head} {fixed} {scale} {signed}", "head": head,
                         "fixed": fixed, "scale": scale, "lr": 0.1, "signed": signed, "seed": s, "diverged": False,
                         "best_acc": acc, "final_acc": acc, "spearman": 0.7 + noise(0.02), "class_vector_cosine": 0.0,
                         "class_vector_nn_cosine": 0.6 - (0 if scale == 1 else 0.3 * spread) + noise(0.01),
                         "lookalike_contrast": 0.3 + noise(0.02),
                         "image_class_cosine": (signed_cos if signed else icos) + noise(0.005),
                         "cosine_bound": 1.0 if signed else 0.7,
                         "compactness": {1.0: 0.8, 20.0: 0.6, 40.0: 0.5}[scale] + 0.1 * fixed + noise(0.01),
                         "separability": 0.5 + 0.1 * fixed + noise(0.01)}
                    if data == "fashion_mnist":
                        r.update({f"acc {k}": acc - 0.1 + noise(0.005) for k in ("jpeg@10", "jpeg@30")})
                    rows.append(r)
    return rows


def _verdicts(rows):
    return {c.id: d.verdict for c, d, _ in claims.decide(rows)}


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


def test_decide_on_synthetic_runs():
    rows = _rows()
    out = claims.decide(rows)
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
    rows = _rows()
    for r in rows:  # every model equally worse under corruption: drops equal, clean accuracy irrelevant
        if r["head"] == "dot" and r["fixed"]:
            r["best_acc"] += 0.2
            r.update({k: x + 0.2 for k, x in r.items() if k.startswith("acc ")})
    out = {c.id: (d, ours) for c, d, ours in claims.decide(rows)}
    d, ours = out["fixing-keeps-robustness"]
    assert d.verdict == "reproduced" and len(d.parts) == 4 and "alpha 0.0125" in ours


def test_figure_helpers_on_fake_runs():
    rows = _rows(n=3)
    chosen = choose_settings(rows)
    assert set(chosen) == {"fashion_mnist", "mnist"} and "S fixed" not in chosen["mnist"]
    t1 = figures.accuracy_table(rows, "dot")
    assert list(t1.columns) == ["best acc (%)", "final acc (%)", "runs"] and "±" in t1.iloc[0, 0]
    assert len(figures.best_s_table(rows, chosen)) == 2
    assert not figures.geometry_table(rows).empty and not figures.spearman_table(rows).empty
    rt = figures.robustness_table(rows, chosen)
    assert "drop jpeg@10" in rt.columns and len(rt) == 4
    assert figures.selection_table(rows, chosen)["chosen"].tolist().count("yes") >= 3
    fig = figures.corruption_drops(rows, chosen)
    assert len(fig.axes) == 1
    b = figures.bound_summary(rows, "fashion_mnist")
    assert math.isclose(b["bound"], 0.7) and 0.9 < b["share"] < 1
    g = figures.glue_values(claims.decide(rows), rows, chosen, {d: figures.bound_summary(rows, d) for d in chosen})
    assert g["n_claims"] == len(claims.CLAIMS) and g["v_figure_1_scheme"] == "not testable"


def test_matrix_figures_on_fake_runs():
    bench = _toy_bench(corrupted=False)
    runs = [run(bench, v, 0, backbone_kwargs={"widths": [4, 8]}, epochs=1, batch_size=16, device="cpu",
                keep_model=True) for v in paper_variants([1.0, 20.0])]
    assert len(figures.kept(runs, "toy")) == 6
    assert len(figures.cosine_matrices(runs, "toy", bench.classes).axes) == 5  # 4 panels and a colour bar
    assert len(figures.confusion_scatter(runs, "toy").axes) == 3
    assert len(figures.feature_views(runs, "toy", bench.test, bench.classes, points=20).axes) == 4
