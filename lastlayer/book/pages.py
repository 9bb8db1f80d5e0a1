"""The book's generated pages (scorecard, run times, benchmark, table of contents) and its HTML build.

Everything here is read from `book/results/[paper/]<id>.json` and `book/results/bench/*.json`, the one source of
truth; nothing is typed by hand, and `build_html` regenerates every page before it builds, so the book never
shows a stale copy. A chapter whose inputs (notebook, profile, code) changed since its run is flagged as stale.
"""
from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from lastlayer.book.display import _e, badge, ours_text, setting_tag
from lastlayer.book.registry import find_papers
from lastlayer.book.runner import status
from lastlayer.stats import VERDICTS

SCALES = ("cpu", "paper")  # book/executed/<id>.ipynb and book/executed/paper/<id>.ipynb
SCORECARD_HEAD = """---
html_theme.sidebar_secondary.remove: true
---

# Scorecard

Every claim we checked, verdict first: the paper's number, ours as estimate [95% interval] (n), and the rule
that decided (click *rule*). A claim links to its row in its chapter, which gives its full setting. A verdict is computed by code from our measurements and the rule declared before the run
({ref}`how to read a verdict <how-to-read-a-verdict>`). Claims measured on a stand-in (*proxy*) and claims of
our own (*extension*) are counted apart from the paper's own setup. Where a paper also ran at the paper's scale,
both verdicts stand side by side and a disagreement is marked ≠. This page is generated from `book/results/`.
"""


def executed(root: Path, paper: str, scale: str = "cpu") -> Path:
    return Path(root) / "book" / "executed" / ("paper" if scale == "paper" else "") / f"{paper}.ipynb"


def results_file(root: Path, paper: str, scale: str = "cpu") -> Path:
    return Path(root) / "book" / "results" / ("paper" if scale == "paper" else "") / f"{paper}.json"


def load_results(root: Path, scale: str = "cpu") -> dict[str, dict]:
    """{paper: results} for every paper with both an executed notebook and a results file at this scale."""
    out = {}
    for paper in find_papers(root):
        if results_file(root, paper, scale).exists() and executed(root, paper, scale).exists():
            out[paper] = json.loads(results_file(root, paper, scale).read_text())
    return out


def _is_setup(c: dict) -> str:
    s = c.get("setting") or "paper setup"
    return "proxy" if s.startswith("proxy") else ("extension" if s.startswith("extension") else "paper setup")


def _count_badges(claims: list[dict]) -> str:
    counts = Counter(c["verdict"] for c in claims)
    return " ".join(f'<span class="ll-badge ll-{v.replace(" ", "-")}">{counts[v]} {v}</span>'
                    for v in VERDICTS if counts[v]) or "–"


def _totals_row(first_cell: str, claims: list[dict]) -> str:
    groups = [[c for c in claims if _is_setup(c) == g] for g in ("paper setup", "proxy", "extension")]
    return (f"<tr><td>{first_cell}</td>" + "".join(f'<td data-label="{label}">{_count_badges(g)}</td>'
            for label, g in zip(("paper's setup", "proxies", "extensions"), groups)) + "</tr>")


def totals(results: dict[str, dict], titles: dict[str, str], cross: frozenset = frozenset()) -> str:
    """Per paper and overall: the verdicts of the paper's own setup, the proxies and the extensions apart. The
    chapters in `cross` (those that test the papers against each other) come after the papers' total, counted
    apart from it."""
    head = "".join(f"<th>{h}</th>" for h in ("paper", "paper's setup", "proxies", "extensions"))
    rows, everything, apart = [], [], []
    for paper, r in results.items():
        cell = f'<a href="executed/{paper}.html">{_e(titles[paper])}</a>'
        if paper in cross:
            apart.append(_totals_row(cell + " (across the papers, counted apart)", r["claims"]))
            continue
        everything += r["claims"]
        rows.append(_totals_row(cell, r["claims"]))
    rows.append(_totals_row("<strong>all papers</strong>", everything))
    rows += apart
    return (f'<div class="ll-table-wrap"><table class="ll-table ll-stack"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def _pilot_claims(claims: list[dict]) -> list[dict]:
    """The claims as their pilot judged them (re-decided under the declarations that judged the confirmatory run),
    for the claims whose declaration carries a stage-1 plan; the others (not testable) as they are."""
    return [{**c, "verdict": c["plan"]["pilot_verdict"]} if c.get("plan") else c for c in claims]


def two_stages(results: dict[str, dict], titles: dict[str, str]) -> str:
    """Per paper: the verdicts of its pilot (stage 1) and of the confirmatory run on fresh seeds (stage 2), with how
    many claims the confirmatory run's n reached the planned n for. Papers without a plan are left out."""
    head = "".join(f"<th>{h}</th>" for h in ("paper", "pilot (stage 1)", "confirmatory run (stage 2)",
                                              "claims at their planned n"))
    rows = []
    for paper, r in results.items():
        claims = r["claims"]
        planned = [c for c in claims if c.get("plan")]
        if not planned:
            continue
        pilot = planned[0]["plan"].get("pilot_commit", "")[:7]
        funded = sum(bool(c["plan"].get("funded")) for c in planned)
        rows.append(f'<tr><td><a href="executed/{paper}.html">{_e(titles[paper])}</a></td>'
                    f'<td data-label="pilot">{_count_badges(_pilot_claims(claims))} (commit <code>{_e(pilot)}</code>)</td>'
                    f'<td data-label="confirmatory">{_count_badges(claims)} (commit <code>{_e(r["commit"])}</code>)</td>'
                    f'<td data-label="at planned n">{funded} of {len(planned)}</td></tr>')
    if not rows:
        return ""
    return (f'<div class="ll-table-wrap"><table class="ll-table ll-stack"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def worked_example(results: dict[str, dict]) -> str:
    """The introduction's worked example of the two stages, from a real claim: the first (in book order) whose pilot
    was inconclusive and whose confirmatory run, at its planned n, decided."""
    for paper, r in results.items():
        for c in r["claims"]:
            plan = c.get("plan") or {}
            if plan.get("pilot_verdict") == "inconclusive" and plan.get("funded") and \
                    c["verdict"] not in ("inconclusive", "not testable"):
                return (f"**A worked example.** The claim *{_e(c['statement'])}* ({paper}, `{c['id']}`). "
                        f"Measured: {_e(c['estimand'])}. Its rule, declared before any run: {_e(c['criterion'])} "
                        f"The pilot (commit `{plan['pilot_commit'][:7]}`) had n = {plan['pilot_n']} and could not "
                        f"decide: *inconclusive*. From its effect and spread, the planner found that n = "
                        f"{plan['n_planned']} reaches a decision, either way, in {plan['power']:.0%} of simulated "
                        f"runs, and the confirmatory run was given n = {plan['run_n']} on fresh seeds. It measured "
                        f"{_e(ours_text(c))}: *{c['verdict']}*. That verdict is the book's; the pilot's is not.\n")
    return ""


def _provenance(r: dict, scale: str, state: str | None) -> str:
    stale = f' {badge("stale")} its inputs changed since this run: rerun it.' if state == "stale" else ""
    return (f"{scale} scale: profile <code>{_e(r['profile'])}</code> on {_e(r['device'])}, torch {_e(r['torch'])}, "
            f"commit <code>{_e(r['commit'])}</code>, {_minutes(r)}.{stale}")


def _minutes(r: dict) -> str:
    """The wall time, and what trained the runs where not this process alone (`run --workers`, `--cluster`)."""
    workers, cluster = r.get("workers", 1), r.get("cluster")
    where = f" (Dask cluster {cluster})" if cluster else (f" ({workers} worker processes)" if workers > 1 else "")
    chunks = r.get("chunks") or ()
    parts = f", in {len(chunks)} chunks resumed through the run cache" if len(chunks) > 1 else ""
    return f"{r['seconds'] / 60:.1f} min{where}{parts}"


def _estimated(info) -> str:
    """', about N minutes with W worker(s) ...' where the paper's plan prices its paper scale (plan.estimate)."""
    from lastlayer.book.plan import PlanError, estimate
    from lastlayer.book.runner import RunnerError
    paper = info.id
    try:
        e = estimate(paper, "paper", info.folder.parents[2])  # lastlayer/papers/<id> -> the project's root
    except (PlanError, RunnerError):  # a plan or profile that cannot price it: the page says nothing, never a guess
        return ""
    if not e or not e["seconds"]:
        return ""
    return (f"; about {e['seconds'] / 60:.0f} minutes with {e['workers']} worker(s) at its plan's per-run costs "
            f"(`python -m lastlayer params {paper}`)")


def claim_anchor(paper: str, claim_id: str) -> str:
    """Where a claim's row is in its chapter: `executed/<paper>.html#claim-<id>` (relative to book/)."""
    return f"executed/{paper}.html#claim-{claim_id}"


def paper_section(info, r: dict, big: dict | None, states: dict) -> str:
    """One paper's claims, verdict first, one short row each (the claim links to its row in the chapter; the rule
    is folded); with the paper-scale verdict beside it when that run exists."""
    paper = info.id
    read = f", [the paper]({info.url})" if info.url else ""
    lines = [f"## {info.title}", "",
             f"[The chapter](executed/{paper}.ipynb){read}, {{download}}`its results file <results/{paper}.json>`. "
             f"{_provenance(r, 'cpu', states.get((paper, 'cpu')))}"
             + (f"<br>{_provenance(big, 'paper', states.get((paper, 'paper')))}" if big else
                (f"<br>Paper scale: not run here; it needs {_e(info.paper_scale_needs)}."
                 if info.paper_scale_needs else f"<br>Paper scale: not run yet{_estimated(info)}.")), ""]
    other = {c["id"]: c for c in (big or {}).get("claims", [])}
    rows = []
    for c in r["claims"]:
        verdict = badge(c["verdict"])
        ours = _e(ours_text(c))
        if big:
            o = other.get(c["id"])
            if o:
                mark = ' <span class="ll-mark" title="the two scales disagree">≠</span>' \
                    if o["verdict"] != c["verdict"] else ""
                verdict = f"cpu {badge(c['verdict'])}<br>paper {badge(o['verdict'])}{mark}"
                ours += f"<br><em>paper scale:</em> {_e(ours_text(o))}"
            else:
                verdict = f"cpu {badge(c['verdict'])}<br>paper –"
        rows.append(f'<tr><td class="ll-verdict">{verdict}</td><td data-label="claim">'
                    f'<a href="{claim_anchor(paper, c["id"])}">{_e(c["statement"])}</a>{setting_tag(c.get("setting"))}</td>'
                    f'<td data-label="the paper">{_e(c["paper"])}</td><td data-label="ours">{ours}</td>'
                    f'<td class="ll-rule"><details><summary>rule</summary>{_e(c["criterion"])}</details></td></tr>')
    head = "".join(f'<th class="ll-col-{k}">{h}</th>' for k, h in [
        ("verdict", "verdict"), ("claim", "claim"), ("paper", "the paper"),
        ("ours", "ours: estimate [95% interval] (n)"), ("rule", "rule")])
    lines.append(f'<div class="ll-table-wrap"><table class="ll-table ll-claims ll-stack ll-scorecard"><thead><tr>{head}</tr>'
                 f'</thead><tbody>{"".join(rows)}</tbody></table></div>')
    return "\n".join(lines)


def scorecard(results: dict[str, dict], paper_results: dict[str, dict] | None = None,
              states: dict | None = None, root: Path | None = None) -> str:
    paper_results, states, info = paper_results or {}, states or {}, find_papers(root)
    titles = {p: i.title for p, i in info.items()}
    cross = frozenset(p for p, i in info.items() if i.is_cross)
    parts = [SCORECARD_HEAD, "## Totals", "", totals(results, titles, cross)]
    stages = two_stages(results, titles)
    if stages:
        parts += ["## Before and after: the pilot and the confirmatory run", "",
                  "Each chapter's committed run before this one was its pilot: it planned every claim's n. The "
                  "confirmatory run, on fresh seeds at those n, gives the verdicts above; the pilot's verdicts, "
                  "re-decided under the same declarations, are counted here for comparison only.", "", stages]
    parts += [paper_section(info[p], r, paper_results.get(p), states) for p, r in results.items() if p not in cross]
    for p in [p for p in results if p in cross]:  # after the papers, under its own heading, with what it counts
        head, _, rest = paper_section(info[p], results[p], paper_results.get(p), states).partition("\n")
        parts.append(f"{head}\n\n*Across the papers:* claims of our own that carry one paper's claim to another "
                     f"paper's network, data or baseline (setting *extension*), counted apart from the papers' claims "
                     f"in the totals.\n{rest}")
    return "\n\n".join(parts) + "\n"


def verdict_totals(root: Path | None = None) -> str:
    """The introduction's verdict totals (book/_generated/verdicts.md, included by book/intro.md): per paper and
    for all papers, the paper's own setup, the proxies and the extensions apart, as in the scorecard."""
    results = load_results(root)
    if not results:
        return "No chapter has been run yet (`make book`).\n"
    n = sum(len(r["claims"]) for r in results.values())
    return (f"{n} claims checked in {len(results)} chapters, by verdict ({{doc}}`the scorecard <scorecard>` "
            "lists each one):\n\n"
            + totals(results, {p: i.title for p, i in find_papers(root).items()},
                     frozenset(p for p, i in find_papers(root).items() if i.is_cross)) + "\n")


def times_table(results: dict[str, dict], paper_results: dict[str, dict] | None = None,
                states: dict | None = None, root: Path | None = None) -> str:
    """The wall time and provenance of every executed chapter, from its results file."""
    states, info = states or {}, find_papers(root)
    lines = ["| paper | profile | status | device | torch | wall time | commit |", "|---|---|---|---|---|---|---|"]
    for scale, rs in (("cpu", results), ("paper", paper_results or {})):
        for paper, r in rs.items():
            lines.append(f"| {info[paper].title} | `{r['profile']}` | "
                         f"{states.get((paper, scale), 'current')} | {r['device']} | {r['torch']} | "
                         f"{_minutes(r)} | `{r['commit']}` |")
    return "\n".join(lines) + "\n"


def toc(root: Path) -> str:
    """_toc.yml from what exists: a paper is listed once its executed notebook is in book/executed/, and its
    paper-scale run (book/executed/paper/<id>.ipynb) is a section under it."""
    lines = ["# Generated by `python -m lastlayer pages` from what is in book/executed/: do not edit.",
             "format: jb-book", "root: book/intro", "parts:", "  - caption: Reading and rerunning",
             "    chapters:", "      - file: book/reproduce", "      - file: book/scorecard",
             "  - caption: The papers", "    numbered: true", "    chapters:"]
    papers = find_papers(root)
    for cross in (False, True):  # the papers, then the chapters that test them against each other (a part of their own)
        ran = [p for p, info in papers.items() if info.is_cross == cross and executed(root, p).exists()]
        if cross and ran:
            lines += ["  - caption: Across the papers", "    numbered: true", "    chapters:"]
        for paper in ran:
            lines.append(f"      - file: book/executed/{paper}")
            if executed(root, paper, "paper").exists():
                lines += ["        sections:", f"          - file: book/executed/paper/{paper}"]
    lines += ["  - caption: Sources", "    chapters:", "      - file: book/references"]
    return "\n".join(lines) + "\n"


def papers_table(root: Path) -> str:
    """The introduction's table of chapters, from each paper's paper.yml: every chapter that has been run (links
    are relative to book/intro.md, which includes this file)."""
    lines = ["| chapter | paper | its question |", "|---|---|---|"]
    for paper, info in find_papers(root).items():
        if executed(root, paper).exists():
            links = ", ".join(f"[{name}]({url})" for name, url in (("paper", info.url), ("code", info.code)) if url)
            lines.append(f"| [{info.title}](executed/{paper}.ipynb) | {{cite:t}}`{info.citation}`"
                         + (f" ({links})" if links else "") + f" | {info.question} |")
    return "\n".join(lines) + "\n"


def states_of(root: Path) -> dict:
    """{(paper, scale): 'current' | 'stale'} for every executed chapter."""
    return {(p, s): status(p, root, s) for s in SCALES for p in load_results(root, s)}


def generated(root: Path) -> dict[Path, str]:
    """Every generated page and its text."""
    from .bench import load_benches, markdown_table
    from .scales import scale_pages
    root = Path(root)
    results, big, states = load_results(root), load_results(root, "paper"), states_of(root)
    pages = {root / "book" / "scorecard.md": scorecard(results, big, states, root),
             root / "book" / "_generated" / "times.md": times_table(results, big, states, root),
             root / "book" / "_generated" / "papers.md": papers_table(root),
             root / "book" / "_generated" / "verdicts.md": verdict_totals(root),
             root / "book" / "_generated" / "example.md": worked_example(results) or
                 "No claim has gone from an inconclusive pilot to a decided confirmatory run yet.\n",
             root / "_toc.yml": toc(root)}
    pages.update(scale_pages(root, results, big))  # both scales side by side, in both pages of a paper
    benches = load_benches(root)
    pages[root / "book" / "_generated" / "bench.md"] = ("\n".join(markdown_table(b) for b in benches) if benches
                                                        else "No benchmark has been run yet (`make bench`).\n")
    return pages


def write_pages(root: Path) -> list[Path]:
    """Regenerate the scorecard, the run-time and benchmark tables and the table of contents."""
    pages = generated(root)
    for path, text in pages.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    return list(pages)


def build_html(root: Path, out: Path | None = None) -> int:
    """Regenerate the pages, then jupyter-book build with warnings as errors; the notebooks are not re-executed
    (`_config.yml`). A run that finishes meanwhile waits to install its outputs (`install.book_lock`)."""
    from lastlayer.book.install import book_lock
    with book_lock(root):
        return _build(root, out)


def _build(root: Path, out: Path | None) -> int:
    write_pages(root)
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build", str(root), "-W", "-n",
           "--keep-going"]
    if out is not None:
        cmd += ["--path-output", str(out)]
    return subprocess.call(cmd, cwd=root)
