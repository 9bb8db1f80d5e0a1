"""The two scales of one paper side by side, in both of its pages: which verdicts differ, and what the paper profile
changed for those claims.

A paper run at the cpu scale (its chapter, book/executed/<id>.ipynb) and at the paper's scale (book/executed/paper/
<id>.ipynb) gets, in each page, one generated cell before "All claims": every claim whose verdict differs between
the two runs, with both verdicts, both n, and the parameters of the claim's experiments (plan.yml) that the paper
profile changes; those are why the answers can differ (more rounds, another sweep, the full data). The cell is
written by `python -m lastlayer pages` from the two results files, like the scorecard, and replaced each time; a
page without a run at the other scale has none. The notebooks' inputs, and so their input hashes, are unchanged.
"""
from __future__ import annotations

import json
from pathlib import Path

TAG = "ll-scales"


def _value(v) -> str:
    if isinstance(v, list) and len(v) > 4:
        return f"{len(v)} values"
    return json.dumps(v) if isinstance(v, (list, dict)) else str(v)


def changed_parameters(cpu: dict, paper: dict, names: set[str]) -> list[str]:
    """'name cpu -> paper' for each of `names` whose value differs between the two runs' parameters."""
    a, b = cpu.get("parameters", {}), paper.get("parameters", {})
    return [f"`{n}` {_value(a.get(n))} → {_value(b.get(n))}" for n in sorted(names) if a.get(n) != b.get(n)]


def claim_parameters(design: dict | None) -> dict[str, set[str]]:
    """{claim: the parameters of its experiments}: the unit (seeds, rounds) and every size its cost grows with."""
    from lastlayer.book.plan import parameter_names
    out: dict[str, set[str]] = {}
    for e in (design or {}).get("experiments", {}).values():
        for cid in e["claims"]:
            out.setdefault(cid, set()).update({e["parameter"], *parameter_names(e.get("scales_with", []))})
    return out


def note(paper: str, cpu: dict, big: dict, design: dict | None, here: str) -> str:
    """The cell's Markdown, for the page at scale `here` ('cpu' or 'paper')."""
    other = {c["id"]: c for c in big["claims"]}
    both = [(c, other[c["id"]]) for c in cpu["claims"] if c["id"] in other]
    differ = [(a, b) for a, b in both if a["verdict"] != b["verdict"]]
    link = f"[the paper-scale page](paper/{paper}.ipynb)" if here == "cpu" else f"[the chapter](../{paper}.ipynb)"
    lines = [f"**The other scale.** This notebook ran at both scales: the cpu profile at commit `{cpu['commit']}` "
             f"and the `paper` profile at commit `{big['commit']}` ({link}). "
             + (f"Of the {len(both)} claims both runs checked, all get the same verdict."
                if not differ else
                f"Of the {len(both)} claims both runs checked, "
                + ("one gets a different verdict" if len(differ) == 1 else f"{len(differ)} get a different verdict")
                + "; after each, the parameters of its experiments that the paper profile changes:"), ""]
    params = claim_parameters(design)
    for a, b in differ:
        changes = changed_parameters(cpu, big, params.get(a["id"], set()))
        why = ("; ".join(changes) if changes else
               "none of its experiments' parameters: the same design on other draws")
        lines.append(f"- *{a['statement']}* (`{a['id']}`): cpu **{a['verdict']}** (n = {a.get('n', '–')}), "
                     f"paper **{b['verdict']}** (n = {b.get('n', '–')}). Changed: {why}.")
    return "\n".join(lines).rstrip() + "\n"


def with_note(nb: dict, text: str | None) -> dict:
    """`nb` with its scales cell replaced by one holding `text` (before "## All claims", else last), or removed
    where `text` is None."""
    cells = [c for c in nb["cells"] if TAG not in c.get("metadata", {}).get("tags", [])]
    if text is not None:
        at = next((i for i, c in enumerate(cells) if c["cell_type"] == "markdown"
                   and "".join(c["source"]).startswith("## All claims")), len(cells))
        cell = {"cell_type": "markdown", "id": TAG, "metadata": {"tags": [TAG]}, "source": text}
        cells = cells[:at] + [cell] + cells[at:]
    return {**nb, "cells": cells}


def scale_pages(root: Path, results: dict[str, dict], big: dict[str, dict]) -> dict[Path, str]:
    """{executed notebook: its text with the scales cell} for every page of a paper run at both scales, and for
    a page whose cell must go (its other run was removed). Written with the runner's formatting."""
    from lastlayer.book.plan import read_design
    from lastlayer.book.registry import find_papers
    from lastlayer.book.runner import Paths
    paths, out = Paths(Path(root)), {}
    for paper, info in find_papers(root).items():
        for here in ("cpu", "paper"):
            page = paths.executed(paper, here)
            if not page.exists():
                continue
            nb = json.loads(page.read_text())
            text = None
            if paper in results and paper in big:
                text = note(paper, results[paper], big[paper], read_design(info), here)
            elif not any(TAG in c.get("metadata", {}).get("tags", []) for c in nb["cells"]):
                continue
            out[page] = json.dumps(with_note(nb, text), indent=1, ensure_ascii=False) + "\n"
    return out
