"""The book's frame: every notebook follows the layout; the generated pages (scorecard, run times, table of contents)
say what the results files say. The built HTML is checked in test_html.py."""
import json
import re

import pytest
import yaml

from lastlayer.book.registry import PROFILES, find_papers
from lastlayer.book.pages import (SCALES, claim_anchor, executed, load_results, results_file, scorecard, times_table,
                                  verdict_totals)
from lastlayer.book.pages import toc as toc_text
from lastlayer.book.report import validate
from lastlayer.book.runner import available_papers, prepare

from .conftest import ROOT


@pytest.mark.parametrize("paper", available_papers(ROOT))
def test_notebook_source_is_clean_and_every_profile_is_valid(paper):
    nb = json.loads((ROOT / "notebooks" / f"{paper}.ipynb").read_text())
    assert not any(c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code"), "store notebooks without outputs"
    assert nb["cells"][0]["cell_type"] == "markdown" and "".join(nb["cells"][0]["source"]).startswith("# ")
    for profile in PROFILES:
        prepare(paper, profile, root=ROOT)  # raises on unknown names or wrong types
    cpu = yaml.safe_load((ROOT / "lastlayer" / "papers" / paper / "paper.yml").read_text())["profiles"]["cpu"]
    assert not cpu, "the cpu profile is the notebook's defaults: keep it empty"


def test_every_executed_paper_is_in_the_toc_and_has_valid_results():
    toc = toc_text(ROOT)
    for paper in find_papers(ROOT):
        for scale in SCALES:
            ran = executed(ROOT, paper, scale).exists()
            entry = f"book/executed/{'paper/' if scale == 'paper' else ''}{paper}\n"
            assert ran == (entry in toc), (paper, scale)
            if ran and results_file(ROOT, paper, scale).exists():
                results = json.loads(results_file(ROOT, paper, scale).read_text())
                assert validate(results) == [] and results["paper"] == paper


def test_the_toc_lists_a_paper_scale_run_under_its_chapter(tmp_path):
    for d in ("executed/paper", "results/paper"):
        (tmp_path / "book" / d).mkdir(parents=True)
    (tmp_path / "book" / "executed" / "digit_pairs.ipynb").write_text("{}")
    (tmp_path / "book" / "executed" / "paper" / "digit_pairs.ipynb").write_text("{}")
    toc = yaml.safe_load(toc_text(tmp_path))
    chapters = toc["parts"][1]["chapters"]
    assert chapters == [{"file": "book/executed/digit_pairs",
                         "sections": [{"file": "book/executed/paper/digit_pairs"}]}]


def _claim(id, verdict, setting="paper setup"):
    return {"id": id, "statement": f"claim {id}", "paper": "0.9", "ours": "0.8 [0.7, 0.9] (n = 3)",
            "verdict": verdict, "criterion": "a rule", "setting": setting}


def _results(paper, claims):
    return {"paper": paper, "profile": "cpu", "device": "cpu", "torch": "2", "commit": "abc", "seconds": 60,
            "claims": claims}


def test_scorecard_puts_the_verdict_first_and_counts_proxies_and_extensions_apart():
    cpu = {"digit_pairs": _results("digit_pairs", [_claim("a", "reproduced"), _claim("b", "partly", "proxy: x"),
                                                   _claim("c", "not reproduced", "extension")])}
    text = scorecard(cpu)
    row = next(line for line in text.splitlines() if line.startswith('<div class="ll-table-wrap"><table class="ll-table ll-stack">'))
    totals = row.split("<tr>")[2]  # the paper's row of the totals
    cells = totals.split("<td")[2:]
    assert "1 reproduced" in cells[0] and "1 partly" in cells[1] and "1 not reproduced" in cells[2]
    claims = text.split('<table class="ll-table ll-claims ll-stack ll-scorecard">')[1]
    for tr in claims.split("<tr>")[2:]:
        assert tr.startswith('<td class="ll-verdict"><span class="ll-badge')
    assert "not run yet" in text


def test_scorecard_marks_disagreeing_scales_and_papers_that_cannot_run_at_paper_scale():
    cpu = {p: _results(p, [_claim("a", "reproduced"), _claim("b", "partly")]) for p in ("digit_pairs", "asv_init")}
    big = {"digit_pairs": _results("digit_pairs", [_claim("a", "reproduced"), _claim("b", "not reproduced")])}
    text = scorecard(cpu, big)
    section = text.split("## Digit pairs")[1].split("## ")[0]
    assert section.count("≠") == 1 and "paper scale:" in section
    assert "not available offline" in text.split("## Adaptive signal")[1]


def test_times_table_flags_stale_runs():
    cpu = {"geometry": _results("geometry", [_claim("a", "reproduced")])}
    assert "| stale |" in times_table(cpu, states={("geometry", "cpu"): "stale"})
    assert "| current |" in times_table(cpu, states={("geometry", "cpu"): "current"})
    assert "worker processes" not in times_table(cpu)
    cpu["geometry"]["workers"] = 4
    assert "min (4 worker processes) |" in times_table(cpu)  # a wall time of parallel runs says so


@pytest.mark.parametrize("paper", available_papers(ROOT))
def test_code_is_folded_or_removed_on_the_page(paper):
    """A reader sees the story first: every code cell is folded (`hide-input`) or removed from the page."""
    nb = json.loads((ROOT / "notebooks" / f"{paper}.ipynb").read_text())
    shown = {"hide-input", "hide-cell", "remove-cell", "remove-input", "parameters"}
    bad = [i for i, c in enumerate(nb["cells"])
           if c["cell_type"] == "code" and not shown & set(c.get("metadata", {}).get("tags", []))]
    assert not bad, f"code cells {bad} are always open: tag them hide-input (figures, tables) or remove-cell"


@pytest.mark.parametrize("paper", available_papers(ROOT))
def test_a_notebook_is_titled_with_its_paper_yml_title(paper):
    """One name per paper: the notebook's title (the sidebar's), the scorecard's and the introduction's."""
    nb = json.loads((ROOT / "notebooks" / f"{paper}.ipynb").read_text())
    heading = "".join(nb["cells"][0]["source"]).splitlines()[0]
    assert heading == f"# {find_papers(ROOT)[paper].title}"


def test_scorecard_rows_link_to_their_claim_in_the_chapter_and_fold_the_rule():
    cpu = {"digit_pairs": _results("digit_pairs", [_claim("a", "reproduced", "proxy: a smaller network"),
                                                   _claim("b", "partly")])}
    text = scorecard(cpu)
    rows = text.split('<table class="ll-table ll-claims ll-stack ll-scorecard">')[1].split("<tr>")[2:]
    assert [f'<a href="{claim_anchor("digit_pairs", c)}">claim {c}</a>' in tr for tr, c in zip(rows, "ab")] == [True] * 2
    assert claim_anchor("digit_pairs", "a") == "executed/digit_pairs.html#claim-a"
    assert "<details><summary>rule</summary>a rule</details>" in rows[0]
    assert "a smaller network" not in rows[0].split("<details>")[0].replace('title="proxy: a smaller network"', "")
    assert "{download}`its results file <results/digit_pairs.json>`" in text


def test_the_introduction_totals_count_every_claim(tmp_path):
    assert "No chapter has been run" in verdict_totals(tmp_path)
    text = verdict_totals(ROOT)
    results = {p: json.loads(results_file(ROOT, p).read_text()) for p in find_papers(ROOT)
               if results_file(ROOT, p).exists() and executed(ROOT, p).exists()}
    n = sum(len(r["claims"]) for r in results.values())
    assert text.startswith(f"{n} claims checked in {len(results)} chapters")
    # the papers' total counts the papers' claims; a chapter across the papers is counted apart, in a row after it
    cross = {p for p, info in find_papers(ROOT).items() if info.is_cross}
    papers_total = text.split("<strong>all papers</strong>")[1].split("</tr>")[0]
    assert sum(int(k) for k in re.findall(r'class="ll-badge [^"]+">(\d+) ', papers_total)) == \
        sum(len(r["claims"]) for p, r in results.items() if p not in cross)
    everything = text.split("<strong>all papers</strong>")[1]
    assert sum(int(k) for k in re.findall(r'class="ll-badge [^"]+">(\d+) ', everything)) == n


def test_a_chapter_across_the_papers_has_a_part_and_a_total_of_its_own(tmp_path):
    """A chapter that `uses` other papers comes after them in a part of its own, and its claims are not in the
    papers' total."""
    (tmp_path / "book" / "executed").mkdir(parents=True)
    for paper in ("geometry", "cross"):
        (tmp_path / "book" / "executed" / f"{paper}.ipynb").write_text("{}")
    toc = yaml.safe_load(toc_text(tmp_path))
    assert [p["caption"] for p in toc["parts"]] == ["Reading and rerunning", "The papers", "Across the papers",
                                                    "Sources"]
    assert toc["parts"][2]["chapters"] == [{"file": "book/executed/cross"}]
    results = {"geometry": _results("geometry", [_claim("a", "reproduced")]),
               "cross": _results("cross", [_claim("b", "not reproduced", "extension")])}
    text = scorecard(results)
    papers_total = text.split("<strong>all papers</strong>")[1].split("</tr>")[0]
    assert "1 reproduced" in papers_total and "not reproduced" not in papers_total
    assert "counted apart" in text.split("<strong>all papers</strong>")[1]
    assert text.index("## Geometry of the last layer") < text.index(f"## {find_papers(ROOT)['cross'].title}")


def _committed_results():
    return [(f"{scale}/{paper}", r) for scale in SCALES for paper, r in load_results(ROOT, scale).items()]


@pytest.mark.parametrize("name,results", _committed_results())
def test_every_decided_row_shows_its_interval_and_no_two_rows_read_alike(name, results):
    """A reader checks a verdict against the interval that decided it, and tells two claims apart by their rows:
    every claim with an interval prints one ('[lo, hi]') in its 'ours' text, and no two claims of a chapter print
    the same measured text (two arms measured alike must each name their arm)."""
    missing = [c["id"] for c in results["claims"] if c.get("interval") and "[" not in (c.get("ours") or "")]
    assert not missing, f"{name}: rows decided by an interval that they do not show: {missing}"
    texts = {}
    for c in results["claims"]:  # measured rows: a 'not testable' row gives a reason, which two claims may share
        if c.get("ours") and c["verdict"] != "not testable":
            texts.setdefault(c["ours"], []).append(c["id"])
    alike = [ids for ids in texts.values() if len(ids) > 1]
    assert not alike, f"{name}: rows that read alike: {alike}"
