"""The book's display and plot helpers: what a reader sees of a claim, a table and a figure."""
import json
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import pandas as pd
import pytest

from lastlayer import plots, stats
from lastlayer.book import display
from lastlayer.claims import Claim, ours
from lastlayer.numbers import count, fixed, fmt_mean_sd, format_interval, level, plural, with_unit

ROOT = Path(__file__).resolve().parents[1]
ENTRY = {"id": "c", "statement": "A beats B.", "paper": "+2 points", "ours": "+1.0 [0.2, 1.8] points (n = 4)",
         "verdict": "inconclusive", "n_needed": 110823, "estimand": "per seed, A minus B test accuracy",
         "criterion": "Reproduced if ...", "setting": "paper setup"}


def test_numbers_read_well():
    assert fixed(-0.0004, 1) == "0.0" and fixed(-0.0004, 1, sign=True) == "0.0" and fixed(0.25, 1, sign=True) == "+0.2"
    assert format_interval(-0.0001, (-0.02, 0.0003), 110823, scale=100, digits=1) == "0.0 [-2.0, 0.0] (n = 110,823)"
    assert fmt_mean_sd([-0.0001, 0.0001]) == "0.0 ± 0.0"
    assert level(0.05) == "95%" and level(0.05 / 3) == "98.3%" and level(0.005 / 1.2) == "99.6%"
    assert count(110823) == "110,823" and plural(1, "thread") == "1 thread" and plural(2, "thread") == "2 threads"
    assert with_unit(0.021, "points") == "2.1 points" and with_unit(-0.01, "points", digits=0) == "-1 point"


def test_a_rule_writes_its_boundaries_in_the_claims_unit():
    r = stats.make_rule("noninferiority", {"margin": 0.01})
    assert "above -0.01;" in r.describe() and "above -1 point;" in r.describe(unit="points")
    band = stats.make_rule("magnitude", {"target": 0.31, "tolerance": 0.155}).describe(unit="points")
    assert "15.5 points to 46.5 points" in band
    assert "entirely above 50%" in stats.make_rule("rate", {"threshold": 0.5}).describe(unit="%")
    assert "98.3% t-interval" in stats.make_rule("direction", {"alpha": 0.05 / 3}).describe()


def test_a_claims_unit_reaches_ours_and_the_criterion_but_not_its_hash():
    base = dict(id="a", statement="s", paper="p", estimand="e", rule="noninferiority", parameters={"margin": 0.01})
    plain, pts = Claim(**base), Claim(**base, unit="points")
    assert plain.declaration_hash == pts.declaration_hash  # how numbers are written is not what decides
    assert "-1 point" in pts.rule_criterion and "-0.01" in plain.rule_criterion
    d = pts.decide([0.91, 0.92, 0.93, 0.90], [0.92, 0.91, 0.935, 0.905], paired=True)
    e = pts.entry(d)
    lo, hi = d.interval
    assert e["ours"] == f"{100 * d.estimate:.1f} [{100 * lo:.1f}, {100 * hi:.1f}] points (n = 4)".replace("-0.0 ", "0.0 ")
    assert e["unit"] == "points"
    with pytest.raises(ValueError, match="unit"):
        Claim(**base, unit="furlongs")
    part = stats.Decision("reproduced", 0.02, (0.01, 0.03), 4, "x: ...", label="mnist")
    assert ours(part, "points", sign=True) == "mnist: +2.0 [+1.0, +3.0] points (n = 4)"


def test_every_row_names_its_quantity_and_a_large_n_reads_well():
    glance, full = display.at_a_glance([ENTRY]), display.claims_table([ENTRY])
    for page in (glance, full):
        assert "Measured: per seed, A minus B test accuracy" in page
        assert "n = 110,823 would decide it with 80% power" in page


def test_a_table_has_a_numbered_caption_and_no_empty_index_header():
    df = pd.DataFrame({"acc": [0.9123, -0.00001]}, index=pd.Index(["a", "b"], name="model"))
    display.number_tables(3)
    t = display.table(df, caption="Accuracy per model.")
    assert "<caption>" in t and "Table 3.1. " in t and "<th>model</th><th>acc</th>" in t
    assert "Table 3.2. " in display.table(df, caption="Again.")
    assert repr(t).splitlines()[:2] == ["Table 3.1. Accuracy per model.", "model | acc"]
    plain = display.table(pd.DataFrame({"x": [1]}), caption="No index.")
    assert "<th></th>" not in plain and "<th>index</th>" not in plain
    display.number_tables(None)
    assert "Table" not in display.table(df, caption="Unnumbered.").split("</caption>")[0]
    with pytest.raises(ValueError, match="caption"):
        display.table(df, caption="")


def test_a_table_never_shows_a_negative_zero():
    df = pd.DataFrame({"jump": ["+0.69 ± 0.68 (-0.00)", "-0.02 (-0.01)", "[-0.0, 1.2]", "x-0.0"],
                       "acc": [-0.0001, 0.5, -0.3, 0.0]})
    t = display.table(df, caption="Jumps.", digits={"acc": 2})
    assert "(0.00)" in t and "-0.02 (-0.01)" in t and "[0.0, 1.2]" in t and "x-0.0" in t
    assert ">0.00<" in t and "-0.30" in t and "-0.00" not in t.replace("x-0.0", "")


def test_the_book_style_gives_text_of_at_least_10_px_at_the_column_width():
    plots.use_book_style()
    try:
        fig, ax = plt.subplots()  # the default size: the column's width
        ax.plot([0, 1], [0, 1], label="ours")
        ax.set_title("t")
        ax.set_xlabel("x")
        ax.legend()
        sizes = plots.text_px(fig)
        assert sizes and min(px for px, _ in sizes) >= 10
        assert plots.finish(fig) is fig
        wide, ax = plt.subplots(figsize=(12, 3))  # shrunk to the column: its 10 pt ticks fall under 10 px
        ax.plot([0, 1])
        with pytest.raises(ValueError, match="px in the book's 740 px column"):
            plots.finish(wide)
        small, ax = plt.subplots()
        ax.plot([0, 1], label="tiny")
        ax.legend(fontsize=7)
        with pytest.raises(ValueError, match="'tiny'"):
            plots.finish(small)
    finally:
        plt.close("all")
        matplotlib.rcdefaults()


def _figure_cells():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if "figure" in cell.get("metadata", {}).get("mystnb", {}):
                yield path.stem, cell


def test_every_figure_has_a_meaningful_alt_text():
    cells = list(_figure_cells())
    assert cells
    for paper, cell in cells:
        alt = cell["metadata"]["mystnb"].get("image", {}).get("alt", "")
        assert len(alt.split()) >= 6 and "/" not in alt and not alt.endswith(".png"), (paper, alt)


def test_every_image_of_an_executed_chapter_is_a_numbered_figure_with_its_alt_text():
    """An image drawn by a cell without figure metadata would show unnumbered, its alt text a file name."""
    executed = sorted((ROOT / "book" / "executed").rglob("*.ipynb"))
    assert executed
    for path in executed:
        for cell in json.loads(path.read_text())["cells"]:
            if any("image/png" in o.get("data", {}) for o in cell.get("outputs", [])):
                mystnb = cell["metadata"].get("mystnb", {})
                assert mystnb.get("figure", {}).get("name") and mystnb.get("image", {}).get("alt"), \
                    (path.relative_to(ROOT).as_posix(), "".join(cell["source"])[:60])


def test_every_claim_row_of_a_chapter_is_an_anchor_the_scorecard_can_link_to():
    from lastlayer.book.display import claims_table
    rows = [{"id": "acc-gain", "verdict": "reproduced", "statement": "A beats B.", "paper": "+2", "ours": "+1.9",
             "criterion": "Reproduced if ...", "estimand": "accuracy"},
            {"id": "b<c", "verdict": "inconclusive", "statement": "s", "paper": "p", "ours": "o", "criterion": "c"}]
    html = claims_table(rows)
    assert '<tr id="claim-acc-gain">' in html and '<tr id="claim-b&lt;c">' in html


def test_an_undecided_row_prices_the_n_that_would_decide_it():
    """Short of its plan: the pilot's planned n and its minutes. Funded and still undecided: this run's n_needed,
    priced from the design's seconds per unit of n (a new confirmatory run, on fresh seeds)."""
    short = {**ENTRY, "n_needed": 50, "plan": {"pilot_commit": "abc1234", "n_planned": 40, "run_n": 8,
                                               "funded": False, "minutes_needed": 21.0, "paper_reaches": True}}
    text = display.ours_text(short)
    assert "the pilot planned n = 40, about 21 CPU minutes" in text and "paper profile's n reaches" in text
    funded = {**ENTRY, "n_needed": 47, "plan": {"pilot_commit": "abc1234", "n_planned": 16, "run_n": 20,
                                                "funded": True, "seconds_per_n": 30.0, "run_minutes": 12.0}}
    text = display.ours_text(funded)
    assert "this run had the n the pilot planned" in text
    assert "about 26 CPU minutes" in text  # 12 + (47 - 20) x 30 s
    decided = {**funded, "verdict": "reproduced"}
    assert "CPU minutes" not in display.ours_text(decided)
