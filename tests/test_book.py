"""The book: every notebook follows the layout, the generated pages are current, and the HTML builds with -W."""
import json
import subprocess
import sys

import pytest
import yaml

from lastlayer import PAPERS, PROFILES
from lastlayer.book.pages import load_results, scorecard, times_table
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
    cpu = yaml.safe_load((ROOT / "notebooks" / f"{paper}.yml").read_text())["cpu"]
    assert not cpu, "the cpu profile is the notebook's defaults: keep it empty"


def test_every_executed_paper_is_in_the_toc_and_has_valid_results():
    toc = (ROOT / "_toc.yml").read_text()
    for paper in PAPERS:
        executed = (ROOT / "book" / "executed" / f"{paper}.ipynb").exists()
        assert executed == (f"book/executed/{paper}" in toc), paper
        if executed:
            results = json.loads((ROOT / "book" / "results" / f"{paper}.json").read_text())
            assert validate(results) == [] and results["paper"] == paper


def test_generated_pages_are_current():
    results = load_results(ROOT)
    assert (ROOT / "book" / "scorecard.md").read_text() == scorecard(results), "run: python -m lastlayer pages"
    assert (ROOT / "book" / "_generated" / "times.md").read_text() == times_table(results)


def test_scorecard_lists_every_claim():
    results = load_results(ROOT)
    text = scorecard(results)
    for r in results.values():
        for c in r["claims"]:
            assert f"**{c['verdict']}**" in text and c["statement"].replace("|", "\\|") in text


def test_html_builds_with_warnings_as_errors(tmp_path):
    build = subprocess.run(
        [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build", str(ROOT), "-W", "-n",
         "--keep-going", "--path-output", str(tmp_path)], capture_output=True, text=True)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    html = tmp_path / "_build" / "html"
    for page in ["book/intro", "book/scorecard", "book/reproduce"] + [f"book/executed/{p}" for p in load_results(ROOT)]:
        assert (html / f"{page}.html").exists(), page
