"""The two scales of a paper side by side in both of its pages (lastlayer.book.scales)."""
import json

from lastlayer.book.scales import TAG, note, with_note

DESIGN = {"experiments": {"fig1a": {"parameter": "bn_rounds", "seconds": 1, "claims": ["bn-helps"],
                                    "scales_with": ["combos"]},
                          "table1": {"parameter": "rounds", "seconds": 1, "claims": ["order"]}}}


def _run(commit, verdicts, **parameters):
    return {"commit": commit, "parameters": {"rounds": 20, "bn_rounds": 20, "combos": [[0, 0]], "lr": 1.0,
                                             **parameters},
            "claims": [{"id": cid, "statement": f"claim {cid}", "verdict": v, "n": n}
                       for cid, (v, n) in verdicts.items()]}


def test_the_note_names_each_differing_verdict_with_what_the_paper_profile_changed_for_it():
    cpu = _run("aaa", {"bn-helps": ("inconclusive", 20), "order": ("reproduced", 20)})
    big = _run("bbb", {"bn-helps": ("reproduced", 10), "order": ("reproduced", 20)},
               bn_rounds=10, combos=[[0, 0], [1, 1]], lr=0.1)
    text = note("toy", cpu, big, DESIGN, "cpu")
    assert "Of the 2 claims both runs checked, one gets a different verdict" in text
    assert "(`bn-helps`): cpu **inconclusive** (n = 20), paper **reproduced** (n = 10)" in text
    # the claim's own experiment's parameters, not every change of the profile (lr feeds no experiment of it)
    assert "`bn_rounds` 20 → 10; `combos` [[0, 0]] → [[0, 0], [1, 1]]." in text and "`lr`" not in text
    assert "`order`" not in text and "(paper/toy.ipynb)" in text
    assert "(../toy.ipynb)" in note("toy", cpu, big, DESIGN, "paper")
    same = note("toy", cpu, _run("bbb", {"bn-helps": ("inconclusive", 20), "order": ("reproduced", 20)}), DESIGN, "cpu")
    assert "all get the same verdict" in same


def test_the_cell_goes_before_all_claims_is_replaced_not_repeated_and_removed_without_the_other_run():
    md = lambda s: {"cell_type": "markdown", "metadata": {}, "source": s}
    nb = {"cells": [md("# Title"), md("## What we found\n\n- x"), md("## All claims\n\ntable")], "nbformat": 4}
    once = with_note(nb, "first")
    twice = with_note(once, "second")
    assert [c["source"] for c in twice["cells"]] == ["# Title", "## What we found\n\n- x", "second",
                                                     "## All claims\n\ntable"]
    assert twice["cells"][2]["metadata"]["tags"] == [TAG]
    assert json.dumps(with_note(twice, None)) == json.dumps(nb)
