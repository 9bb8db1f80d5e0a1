"""The first stage of a two-stage verdict: from a committed run (the pilot), the n each claim needs.

`python -m lastlayer plan <id>` reads the chapter's committed results, re-decides its per-run rows under today's
declarations (the rows are the measurements; the declarations may have been revised since, and the plan must be
for the rules that will judge the confirmatory run), and reports for every claim the pilot's n and estimate, the
n per group that reaches a decision, either exit, with 80% power (`lastlayer.power`), and the CPU minutes a run
at that n would take if every experiment of the chapter grew by the same factor (an upper bound: most claims
need only one experiment to grow). The pilot's own verdicts are not the book's: a confirmatory run on fresh seeds
decides.
"""
from __future__ import annotations

import dataclasses
import json
import types
from pathlib import Path

from lastlayer.book.pages import results_file
from lastlayer.book.registry import get_paper


class PlanError(ValueError):
    """No pilot to plan from, or one whose rows the paper's `decide` cannot read."""


def rebuild_rows(dicts: list[dict], package) -> list:
    """The results file's rows as the paper's row dataclasses (those its package exports), each matched by its
    field names; a row no class matches stays a namespace read by attribute."""
    classes = [c for c in (getattr(package, n) for n in getattr(package, "__all__", ()))
               if isinstance(c, type) and dataclasses.is_dataclass(c)]
    by_fields = {}
    for c in classes:
        by_fields.setdefault(frozenset(f.name for f in dataclasses.fields(c)), c)

    def build(d: dict):
        cls = by_fields.get(frozenset(d))
        if cls is None:
            return types.SimpleNamespace(**d)
        fixed = {f.name: f.default for f in dataclasses.fields(cls) if not f.init}  # e.g. a row's experiment tag
        if any(d[k] != v for k, v in fixed.items()):
            return types.SimpleNamespace(**d)
        return cls(**{k: v for k, v in d.items() if k not in fixed})
    return [build(d) for d in dicts]


def pilot_plan(paper: str, root: Path, scale: str = "cpu") -> dict:
    """{'pilot': {commit, profile, seconds, device}, 'claims': [{id, verdict, n, estimate, n_planned, power,
    minutes}]} for the committed run of `paper` at `scale`."""
    p = get_paper(paper, root)
    path = results_file(root, paper, scale)
    if not path.exists():
        raise PlanError(f"{paper}: no committed {scale} run to plan from ({path.relative_to(root)} is missing)")
    results = json.loads(path.read_text())
    package, claims = p.load(), p.load("claims")
    rows = rebuild_rows(results["runs"], package)
    try:
        decided = claims.decide(rows, package.Params(**results["parameters"]))
    except (TypeError, AttributeError, KeyError) as e:
        raise PlanError(f"{paper}: the pilot's rows do not fit today's decide ({type(e).__name__}: {e}); "
                        f"the plan needs a pilot run of today's experiments") from None
    seconds = float(results["seconds"])
    out = []
    for claim, d, _ in decided:
        entry = {"id": claim.id, "verdict": d.verdict, "n": d.n, "estimate": d.estimate, "n_planned": d.n_planned,
                 "power": d.power, "minutes": None}
        if d.n_planned and d.n:
            entry["minutes"] = round(seconds * max(1.0, d.n_planned / d.n) / 60, 1)
        out.append(entry)
    pilot = {k: results.get(k) for k in ("commit", "profile", "device", "seconds")}
    return {"paper": paper, "scale": scale, "pilot": pilot, "claims": out}


def format_plan(plan: dict) -> str:
    pilot = plan["pilot"]
    lines = [f"{plan['paper']}: pilot = the committed {plan['scale']} run at {pilot['commit']} "
             f"({pilot['seconds'] / 60:.1f} min on {pilot['device']}), re-decided under today's declarations",
             f"{'claim':36s} {'pilot verdict':15s} {'n':>5s} {'planned n':>9s} {'power':>6s} {'minutes (at most)':>17s}"]
    for c in plan["claims"]:
        if c["verdict"] == "not testable":
            lines.append(f"{c['id']:36s} {'not testable':15s}")
            continue
        planned = "none" if c["n_planned"] is None else str(c["n_planned"])
        power = "" if c["power"] is None else f"{c['power']:.0%}"
        minutes = "" if c["minutes"] is None else f"{c['minutes']:.1f}"
        lines.append(f"{c['id']:36s} {c['verdict']:15s} {c['n']:>5d} {planned:>9s} {power:>6s} {minutes:>17s}")
    lines.append("planned n: per group, 80% power to reach either exit at the pilot's effect and spread; "
                 "'none': no n up to the planner's cap (the estimate sits on a boundary of the claim)")
    return "\n".join(lines)
