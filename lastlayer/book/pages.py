"""The book's generated pages (scorecard, run times) and its HTML build.

The scorecard lists every claim of every paper from `book/results/<id>.json`; nothing in it is typed by hand.
"""
from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from lastlayer import PAPERS
from lastlayer.book.report import VERDICTS

TITLES = {
    "geometry": "Geometry of the last layer",
    "fixed_classifier": "Fixed random class vectors",
    "digit_pairs": "Digit pairs: weight sharing and auxiliary losses",
    "asv_init": "Adaptive signal variances (ASV) initialisation",
    "feature_cache": "Feature-map caching",
}
SCORECARD_HEAD = """# Scorecard

Every claim we checked, with the paper's number, ours, and the verdict that our code computed from our
measurements by the stated criterion. A verdict is one of *reproduced*, *partly*, *not reproduced* and
*not testable* (the profile that produced the page could not test the claim; the row says why).
This page is generated from `book/results/*.json` by `python -m lastlayer pages`.
"""


def load_results(root: Path) -> dict[str, dict]:
    out = {}
    for paper in PAPERS:
        f = root / "book" / "results" / f"{paper}.json"
        if f.exists() and (root / "book" / "executed" / f"{paper}.ipynb").exists():
            out[paper] = json.loads(f.read_text())
    return out


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def scorecard(results: dict[str, dict]) -> str:
    lines = [SCORECARD_HEAD, "## Summary", "", "| paper | profile | " + " | ".join(VERDICTS) + " |",
             "|---|---|" + "---|" * len(VERDICTS)]
    for paper, r in results.items():
        counts = Counter(c["verdict"] for c in r["claims"])
        lines.append(f"| [{TITLES[paper]}](executed/{paper}.ipynb) | {r['profile']} | "
                     + " | ".join(str(counts.get(v, 0)) for v in VERDICTS) + " |")
    for paper, r in results.items():
        lines += ["", f"## {TITLES[paper]}", "",
                  f"Profile `{r['profile']}` on {r['device']}, torch {r['torch']}, commit `{r['commit']}`, "
                  f"{r['seconds'] / 60:.1f} min.", "",
                  "| claim | the paper | ours | verdict | criterion |", "|---|---|---|---|---|"]
        for c in r["claims"]:
            lines.append(f"| {_cell(c['statement'])} | {_cell(c['paper'])} | {_cell(c['ours'])} | "
                         f"**{c['verdict']}** | {_cell(c['criterion'])} |")
    return "\n".join(lines) + "\n"


def times_table(results: dict[str, dict]) -> str:
    lines = ["| paper | profile | device | torch | wall time (min) | commit |", "|---|---|---|---|---|---|"]
    for paper, r in results.items():
        lines.append(f"| {paper} | {r['profile']} | {r['device']} | {r['torch']} | {r['seconds'] / 60:.1f} | "
                     f"`{r['commit']}` |")
    return "\n".join(lines) + "\n"


def write_pages(root: Path) -> list[Path]:
    """Regenerate book/scorecard.md and book/_generated/times.md from the results files."""
    results = load_results(root)
    pages = {root / "book" / "scorecard.md": scorecard(results),
             root / "book" / "_generated" / "times.md": times_table(results)}
    from .bench import load_benches, markdown_table
    benches = load_benches(root)
    if benches:
        pages[root / "book" / "_generated" / "bench.md"] = "\n".join(markdown_table(b) for b in benches)
    for path, text in pages.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    return list(pages)


def build_html(root: Path, out: Path | None = None) -> int:
    """jupyter-book build with warnings as errors; the notebooks are not re-executed (`_config.yml`)."""
    write_pages(root)
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build", str(root), "-W", "-n", "--keep-going"]
    if out is not None:
        cmd += ["--path-output", str(out)]
    return subprocess.call(cmd, cwd=root)
