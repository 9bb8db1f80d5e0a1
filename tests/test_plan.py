"""`python -m lastlayer plan`: the pilot re-decided under today's declarations, the n each claim needs, and the
confirmatory design that gives each claim its n on fresh seeds."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import replace
from pathlib import Path

import pytest

from lastlayer.book.pages import two_stages, worked_example
from lastlayer.book.plan import (PlanError, allocate, best_allocation, design_seconds, estimate, estimate_seconds,
                                 format_plan, pilot_plan,
                                 planned_entries, read_design, rebuild_rows, shared_seeds)
from lastlayer.book.registry import find_papers, get_paper
from lastlayer.book.runner import default_root, prepare
from lastlayer.claims import Claim, with_plans

ROOT = default_root()
DESIGNED = [p for p, info in find_papers(ROOT).items() if read_design(info)]


def test_rows_come_back_as_the_papers_dataclasses():
    package = get_paper("fixed_classifier", ROOT).load()
    row = package.CorruptionRow(role="eval", dataset="mnist", variant="fixed dot", head="dot", fixed=True,
                                scale=1.0, lr=0.1, signed=False, seed=3, corruption="jpeg", severity=30.0, acc=0.9)
    back = rebuild_rows([dataclasses.asdict(row), {"other": 1}], package)
    assert back[0] == row and back[0].experiment == "corruption"  # the init=False tag restored, not passed
    assert back[1].other == 1  # a row no class matches is read by attribute


def test_every_chapter_has_a_confirmatory_design():
    assert DESIGNED == list(find_papers(ROOT))


@pytest.mark.parametrize("paper", ["digit_pairs"])
def test_planned_json_is_todays_plan_of_the_pilot(paper):
    """planned.json (what the declarations carry) is what the planner gives today from the design's pilot and
    the cpu profile: a changed profile or design without `plan --write` fails here."""
    plan = pilot_plan(paper, ROOT)
    stored = json.loads((get_paper(paper, ROOT).folder / "planned.json").read_text())
    pilot = json.loads((ROOT / read_design(get_paper(paper, ROOT))["pilot"]["results"]).read_text())
    assert plan["pilot"]["commit"] == pilot["commit"]
    assert stored["claims"] == json.loads(json.dumps(planned_entries(plan)))
    assert stored["design"] == json.loads(json.dumps(plan["design"]))
    assert plan["design"]["minutes"] <= plan["design"]["budget_minutes"]
    assert all(cid in format_plan(plan) for cid in stored["claims"])


def _skip_without_pilot(paper):
    """A new chapter's design names its pilot before the pilot has run (stage 1 still to come): nothing to check."""
    design = read_design(get_paper(paper, ROOT))
    if not (ROOT / design["pilot"]["results"]).exists() or not (get_paper(paper, ROOT).folder / "planned.json").exists():
        pytest.skip(f"{paper}: its pilot has not been run yet ({design['pilot']['results']} is absent)")


@pytest.mark.parametrize("paper", DESIGNED)
def test_the_stored_design_matches_the_cpu_profile_and_the_budget(paper):
    info = get_paper(paper, ROOT)
    _skip_without_pilot(paper)
    stored = json.loads((info.folder / "planned.json").read_text())
    design = read_design(info)
    pilot = json.loads((ROOT / design["pilot"]["results"]).read_text())
    assert pilot["commit"].startswith(design["pilot"]["commit"]) and stored["pilot"]["commit"] == pilot["commit"]
    values = prepare(paper, "cpu", {}, ROOT)[1]
    for name, e in design["experiments"].items():
        assert stored["design"]["experiments"][name]["run"] == values[e["parameter"]]
    assert stored["design"]["minutes"] == pytest.approx(design_seconds(design, values) / 60, abs=0.06)
    assert stored["design"]["minutes"] <= design["budget_minutes"]
    # the profile brings as many claims to their planned n as the best allocation within the budget can
    assert stored["design"]["funded"] == stored["design"]["best"]["funded"]
    declared = {c.id: c for c in info.load("claims").CLAIMS}
    assert all(declared[cid].plan == entry for cid, entry in stored["claims"].items())


@pytest.mark.parametrize("paper", DESIGNED)
def test_the_confirmatory_run_uses_none_of_the_pilots_seeds(paper):
    design = read_design(get_paper(paper, ROOT))
    _skip_without_pilot(paper)
    pilot = json.loads((ROOT / design["pilot"]["results"]).read_text())
    run = json.loads((ROOT / "book" / "results" / f"{paper}.json").read_text())
    if run["commit"] == pilot["commit"]:
        pytest.skip(f"{paper}: the confirmatory run has not been made yet (the committed run is the pilot)")
    assert shared_seeds(pilot, run) == {}
    for name, e in design["experiments"].items():  # an experiment added later, with a pilot of its own
        if "pilot" in e:
            assert shared_seeds(json.loads((ROOT / e["pilot"]["results"]).read_text()), run) == {}, name


def test_shared_seeds_finds_an_overlap_by_seed_round_or_draw():
    pilot = {"parameters": {"seed": 0}, "runs": [{"experiment": "a", "seed": 3}, {"experiment": "b", "round": 4},
                                                 {"experiment": "c", "draw": 1}]}
    fresh = {"parameters": {"seed": 100}, "runs": [{"experiment": "a", "seed": 103}, {"experiment": "b", "round": 4},
                                                   {"experiment": "c", "draw": 1}]}
    assert shared_seeds(pilot, fresh) == {}
    reused = {"parameters": {"seed": 3}, "runs": [{"experiment": "a", "seed": 3}, {"experiment": "b", "round": 1},
                                                  {"experiment": "c", "draw": 9}]}
    assert shared_seeds(pilot, reused) == {"a": [3], "b": [4]}


DESIGN = {"workers": 2, "budget_minutes": 15, "fixed_seconds": 60,
          "experiments": {"train": {"parameter": "seeds", "seconds": 30, "claims": ["a", "b", "e"]},
                          "sweep": {"parameter": "sweep", "seconds": 10, "claims": ["e"]},
                          "probe": {"parameter": "draws", "seconds": 6, "parallel": False, "claims": ["c"]}}}
CLAIMS = [{"id": "a", "verdict": "inconclusive", "n": 3, "n_planned": 6},
          {"id": "b", "verdict": "reproduced", "n": 6, "n_planned": 40},   # two groups of 3 seeds: n = 2 x seeds
          {"id": "c", "verdict": "inconclusive", "n": 8, "n_planned": None},
          {"id": "d", "verdict": "not testable", "n": 0, "n_planned": None},
          {"id": "e", "verdict": "inconclusive", "n": 2, "n_planned": 5}]   # a sweep of 2 against 3 seeds: n = 2
PILOT = {"seeds": [0, 1, 2], "draws": 8, "sweep": 2}


def test_allocate_scales_each_claims_n_with_its_experiments_and_prices_the_shortfall():
    run = {"seeds": list(range(100, 106)), "draws": 16, "sweep": 4}
    out = {c["id"]: c for c in allocate([dict(c) for c in CLAIMS], DESIGN, PILOT, run,
                                        {"seeds": 10, "draws": 8, "sweep": 10})}
    assert out["a"]["run_n"] == 6 and out["a"]["funded"] and out["a"]["minutes_needed"] is None
    assert out["b"]["run_n"] == 12 and not out["b"]["funded"] and not out["b"]["paper_reaches"]
    # 40 needs 20 seeds: 60 s + (20 x 30 + 4 x 10) s / 2 workers + 16 x 6 s in process
    assert out["b"]["minutes_needed"] == pytest.approx((60 + (20 * 30 + 4 * 10) / 2 + 16 * 6) / 60, abs=0.05)
    assert out["c"]["run_n"] == 16 and out["c"]["funded"] is False and out["c"]["minutes_needed"] is None
    assert out["d"]["funded"] is None and out["d"]["run_n"] == 0
    # fed by both: the fewer of 6 seeds and a sweep of 4 gives n = 4, short of 5; both grow to 5
    assert out["e"]["run_n"] == 4 and not out["e"]["funded"] and out["e"]["paper_reaches"]
    assert out["e"]["minutes_needed"] == pytest.approx((60 + (6 * 30 + 5 * 10) / 2 + 16 * 6) / 60, abs=0.05)


def test_the_best_allocation_funds_the_most_claims_the_budget_allows_and_the_cheapest_way():
    values, funded, seconds = best_allocation([dict(c) for c in CLAIMS], DESIGN, PILOT)
    # a needs 6 seeds, e needs 5 seeds and a sweep of 5, b needs 20 seeds (60 + 20 x 15 + 8 x 6 = 408 s: within 900)
    assert funded == 3 and values == {"seeds": 20, "sweep": 5, "draws": 8}
    assert seconds == pytest.approx(design_seconds(DESIGN, values))
    tight = {**DESIGN, "budget_minutes": 5}   # 300 s: b's 20 seeds no longer fit
    values, funded, _ = best_allocation([dict(c) for c in CLAIMS], tight, PILOT)
    assert funded == 2 and values == {"seeds": 6, "sweep": 5, "draws": 8}


def test_a_design_naming_an_undeclared_claim_is_an_error(tmp_path):
    info = get_paper("digit_pairs", ROOT)
    folder = tmp_path / "digit_pairs"
    folder.mkdir()
    (folder / "plan.yml").write_text("pilot: {commit: abc, results: x.json}\nworkers: 1\nbudget_minutes: 15\n"
                                     "fixed_seconds: 1\nexperiments:\n  t: {parameter: rounds, seconds: 1, "
                                     "claims: [model-order, no-such-claim]}\n")
    with pytest.raises(PlanError, match="no-such-claim"):
        read_design(replace(info, folder=folder))
    (folder / "plan.yml").write_text("pilot: {commit: abc}\nworkers: 1\n")
    with pytest.raises(PlanError, match="needs exactly"):
        read_design(replace(info, folder=folder))
    # an experiment added later has a pilot of its own; a claim cannot be planned from two pilots at once
    head = "pilot: {commit: abc, results: x.json}\nworkers: 1\nbudget_minutes: 15\nfixed_seconds: 1\nexperiments:\n"
    (folder / "plan.yml").write_text(head + "  t: {parameter: rounds, seconds: 1, claims: [batch-norm-helps]}\n"
                                     "  s: {parameter: bn_skip_rounds, seconds: 1, claims: [batch-norm-helps],\n"
                                     "      pilot: {commit: def, results: y.json}}\n")
    with pytest.raises(PlanError, match="different pilots"):
        read_design(replace(info, folder=folder))
    (folder / "plan.yml").write_text(head + "  s: {parameter: rounds, seconds: 1, claims: [model-order], "
                                     "pilot: {commit: def}}\n")
    with pytest.raises(PlanError, match="pilot without commit and results"):
        read_design(replace(info, folder=folder))


def test_a_plan_enters_the_declaration_and_a_stale_plan_is_refused(tmp_path):
    c = Claim(id="x", statement="A is better.", paper="+5", estimand="A minus B", rule="direction",
              parameters={"expected": "greater", "min_effect": 0.01})
    path = tmp_path / "planned.json"
    path.write_text(json.dumps({"claims": {"x": {"pilot_n": 3, "n_planned": 9, "run_n": 9}}}))
    [planned] = with_plans([c], path)
    assert planned.plan["n_planned"] == 9 and planned.declaration_hash != c.declaration_hash
    assert with_plans([c], tmp_path / "absent.json") == [c]
    path.write_text(json.dumps({"claims": {"y": {}}}))
    with pytest.raises(ValueError, match="not declared"):
        with_plans([c], path)


def _claim(cid, verdict, pilot_verdict, funded=True):
    return {"id": cid, "statement": f"Claim {cid}.", "estimand": "a difference", "criterion": "Reproduced if ...",
            "verdict": verdict, "ours": "+1.0 [+0.5, +1.5] (n = 9)", "setting": "paper setup",
            "plan": {"pilot_commit": "abcdef123456", "pilot_n": 3, "pilot_verdict": pilot_verdict, "n_planned": 9,
                     "power": 0.82, "run_n": 9 if funded else 3, "funded": funded}}


def test_the_scorecard_counts_both_stages_and_the_example_is_a_real_claim():
    results = {"p": {"commit": "0123456789ab", "claims": [_claim("a", "reproduced", "inconclusive"),
                                                         _claim("b", "inconclusive", "reproduced", funded=False)]}}
    html = two_stages(results, {"p": "Paper P"})
    pilot, confirmatory = html.split('data-label="pilot">')[1], html.split('data-label="confirmatory">')[1]
    assert "1 reproduced" in pilot.split("</td>")[0] and "1 inconclusive" in pilot.split("</td>")[0]
    assert "1 of 2" in html and "abcdef1" in html and "0123456789ab" in confirmatory
    example = worked_example(results)
    assert "Claim a." in example and "n = 9" in example and "*reproduced*" in example and "Claim b." not in example
    assert worked_example({"p": {"claims": [_claim("b", "inconclusive", "inconclusive")]}}) == ""
    assert two_stages({"p": {"commit": "x", "claims": [{"id": "a", "verdict": "reproduced"}]}}, {"p": "P"}) == ""


def test_no_pilot_is_a_clear_error():
    with pytest.raises(PlanError, match="no committed paper run"):
        pilot_plan("geometry", ROOT, scale="paper")


def test_a_profiles_estimate_scales_each_experiment_with_its_units_and_sizes():
    design = {"workers": 2, "fixed_seconds": 10, "fixed_scales_with": ["points"], "free": ["lr"],
              "experiments": {"a": {"parameter": "seeds", "seconds": 6, "scales_with": ["n_train", "sizes"]},
                              "b": {"parameter": "rounds", "seconds": 4, "parallel": False,
                                    "scales_with": [[["images", "epochs", 2], ["maps", 5]]]}}}
    cpu = {"seeds": [0, 1], "rounds": 3, "n_train": 100, "sizes": [8, 16], "images": 10, "epochs": 1, "maps": 4,
           "points": 50, "lr": 0.1}
    same = estimate_seconds(design, cpu, cpu)
    assert same["seconds"] == pytest.approx(design_seconds(design, cpu)) and same["unknown"] == []
    big = {**cpu, "seeds": [0, 1, 2, 3], "n_train": 300, "sizes": [8, 16, 32], "epochs": 3, "points": 100, "lr": 1.0}
    e = estimate_seconds(design, cpu, big)
    assert e["experiments"]["a"] == pytest.approx(4 * 6 * 3 * 1.5 / 2)          # units x seconds x sizes / workers
    assert e["experiments"]["b"] == pytest.approx(3 * 4 * (10 * 3 * 2 + 4 * 5) / (10 * 1 * 2 + 4 * 5))  # a sum of products
    assert e["fixed"] == pytest.approx(20) and e["seconds"] == pytest.approx(20 + sum(e["experiments"].values()))
    # a change nothing prices makes the estimate unknown, and says which
    unknown = estimate_seconds(design, {**cpu, "backbone": "small"}, {**big, "backbone": "resnet101"})
    assert unknown["seconds"] is None and unknown["unknown"] == ["backbone"]


@pytest.mark.parametrize("paper", DESIGNED)
def test_the_cpu_estimate_is_the_designs_and_cpu_paper_scales_are_priced(paper):
    """The cpu profile's estimate is the design's own; a paper whose paper scale runs on the CPU (it needs nothing
    that is not offline, and its models are small) has a paper-scale estimate: every parameter its paper profile
    changes is priced in plan.yml."""
    info = get_paper(paper, ROOT)
    cpu = estimate(paper, "cpu", ROOT)
    from lastlayer.book.runner import prepare
    assert cpu["seconds"] == pytest.approx(design_seconds(read_design(info), prepare(paper, "cpu", {}, ROOT)[1]))
    if paper in ("digit_pairs", "feature_cache"):
        big = estimate(paper, "paper", ROOT)
        assert big["unknown"] == [] and big["seconds"] > 0, big


@pytest.mark.parametrize("paper", ["digit_pairs", "feature_cache"])
def test_the_estimate_line_prices_the_profile_on_this_design_and_on_the_last_cpu_runs_machine(paper, tmp_path):
    """`params` and `status` print it: the profile's minutes at plan.yml's costs, and, where the committed cpu run of
    today's values took more than 15% longer or shorter than its own estimate, the minutes on a machine like that."""
    import shutil

    from lastlayer.book.plan import format_estimate, machine_factor
    info = get_paper(paper, ROOT)
    design, cpu = read_design(info), prepare(paper, "cpu", {}, ROOT)[1]
    e = estimate(paper, "paper", ROOT)
    factor = machine_factor(paper, ROOT)
    results = json.loads((ROOT / "book" / "results" / f"{paper}.json").read_text())
    if results["parameters"] == json.loads(json.dumps(cpu)):
        assert factor == pytest.approx(results["seconds"] / design_seconds(design, cpu))
    else:
        assert factor is None
    line = format_estimate(paper, "paper", ROOT)
    assert line.startswith(f"paper profile: about {e['seconds'] / 60:.0f} min with {e['workers']} worker(s)")
    assert ("on a machine like that one" in line) == (factor is not None and abs(factor - 1) > 0.15)
    # a cpu run taken at other values than today's says nothing about this machine
    project = tmp_path / "p"
    for part in ("lastlayer", "notebooks", "book/results"):
        shutil.copytree(ROOT / part, project / part, ignore=shutil.ignore_patterns("__pycache__"))
    moved = project / "book" / "results" / f"{paper}.json"
    moved.write_text(json.dumps({**results, "parameters": {**results["parameters"], "seed": -1}}))
    assert machine_factor(paper, project) is None
    assert "on a machine like that one" not in format_estimate(paper, "paper", project)
