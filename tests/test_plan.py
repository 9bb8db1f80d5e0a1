"""`python -m lastlayer plan`: the pilot (a committed run) re-decided under today's declarations, and the n each
claim needs."""
from __future__ import annotations

import dataclasses
import json

import pytest

from lastlayer.book.plan import PlanError, format_plan, pilot_plan, rebuild_rows
from lastlayer.book.registry import get_paper
from lastlayer.book.runner import default_root

ROOT = default_root()


def test_rows_come_back_as_the_papers_dataclasses():
    package = get_paper("fixed_classifier", ROOT).load()
    row = package.CorruptionRow(role="eval", dataset="mnist", variant="fixed dot", head="dot", fixed=True,
                                scale=1.0, lr=0.1, signed=False, seed=3, corruption="jpeg", severity=30.0, acc=0.9)
    back = rebuild_rows([dataclasses.asdict(row), {"other": 1}], package)
    assert back[0] == row and back[0].experiment == "corruption"  # the init=False tag restored, not passed
    assert back[1].other == 1  # a row no class matches is read by attribute


def test_the_plan_covers_every_claim_of_the_committed_run():
    results = json.loads((ROOT / "book" / "results" / "geometry.json").read_text())
    plan = pilot_plan("geometry", ROOT)
    declared = [c.id for c in get_paper("geometry", ROOT).load("claims").CLAIMS]
    assert [c["id"] for c in plan["claims"]] == declared
    assert plan["pilot"]["commit"] == results["commit"]
    for c in plan["claims"]:
        if c["verdict"] == "not testable":
            assert c["n_planned"] is None and c["minutes"] is None
        elif c["n_planned"] is not None:
            assert c["n_planned"] >= 2 and c["power"] >= 0.8
            assert c["minutes"] == pytest.approx(results["seconds"] * max(1, c["n_planned"] / c["n"]) / 60, abs=0.06)
    text = format_plan(plan)
    assert all(cid in text for cid in declared) and "80% power" in text


def test_no_pilot_is_a_clear_error():
    with pytest.raises(PlanError, match="no committed paper run"):
        pilot_plan("geometry", ROOT, scale="paper")
