"""The first stage of a two-stage verdict: from a committed run (the pilot), the n each claim needs.

`python -m lastlayer plan <id>` reads the pilot's results, re-decides its per-run rows under today's declarations
(the rows are the measurements; the declarations may have been revised since, and the plan must be for the rules
that will judge the confirmatory run), and reports for every claim the pilot's n and estimate and the n per group
that reaches a decision, either exit, with 80% power (`lastlayer.power`).

A paper with a confirmatory design has `lastlayer/papers/<id>/plan.yml`: the pilot (commit and its results file,
kept in `book/results/pilot/`), the experiments that set each claim's n (the parameter, its CPU seconds per unit
measured from the pilot, the claims it feeds), the workers and the budget. The cpu profile (the notebook's defaults) is the
confirmatory run: fresh seeds and each experiment's n. An experiment added after the pilot names a pilot of its own
(`pilot: {commit, results}` under the experiment): its claims are planned from that run. From the two, the plan gives each claim the n the confirmatory run will have
(the pilot's n scaled with its experiment's units), whether that reaches the planned n, and, where it does not,
the CPU minutes the planned n would cost and whether the paper profile reaches it. `plan <id> --write` stores the
per-claim plan in `planned.json` beside it, which every claim's declaration then carries (and hashes). The
pilot's verdicts are not the book's: the confirmatory run on fresh seeds decides, once; adding seeds after seeing
it is a new confirmatory run with a new plan.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import math
import types
from pathlib import Path

import yaml

from lastlayer.book.registry import get_paper
from lastlayer.book.runner import Paths, notebook_parameters, prepare


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


DESIGN_FILE, PLANNED_FILE = "plan.yml", "planned.json"


def read_design(p) -> dict | None:
    """A paper's confirmatory design (its plan.yml), checked; None when it has none."""
    file = p.folder / DESIGN_FILE
    if not file.exists():
        return None
    where = f"lastlayer/papers/{p.id}/{DESIGN_FILE}"
    d = yaml.safe_load(file.read_text()) or {}
    need = {"pilot": dict, "workers": int, "budget_minutes": (int, float), "fixed_seconds": (int, float),
            "experiments": dict}
    optional = {"free": list, "fixed_scales_with": list}  # what another profile's estimate needs (`estimate`)
    bad = [k for k, t in need.items() if not isinstance(d.get(k), t)]
    bad += [k for k, t in optional.items() if k in d and not isinstance(d[k], t)]
    if bad or set(d) - set(need) - set(optional) or not {"commit", "results"} <= set(d["pilot"]):
        raise PlanError(f"{where}: needs exactly {', '.join(need)} (pilot with commit and results); "
                        f"wrong or missing: {bad or sorted(set(d) - set(need)) or ['pilot.commit/results']}")
    declared = {c.id for c in p.load("claims").CLAIMS}
    for name, e in d["experiments"].items():
        if not (isinstance(e, dict) and {"parameter", "seconds", "claims"} <= set(e)
                and isinstance(e["claims"], list) and isinstance(e["seconds"], (int, float))):
            raise PlanError(f"{where}: experiment {name!r} needs parameter, seconds (per unit) and claims")
        unknown = sorted(set(e["claims"]) - declared)
        if unknown:
            raise PlanError(f"{where}: experiment {name!r} feeds claims that are not declared: {unknown}")
        if "pilot" in e and not (isinstance(e["pilot"], dict) and {"commit", "results"} <= set(e["pilot"])):
            raise PlanError(f"{where}: experiment {name!r} names a pilot without commit and results")
        if not isinstance(e.get("scales_with", []), list):
            raise PlanError(f"{where}: experiment {name!r}: scales_with must be a list of parameters")
    for cid, names in _experiments_of(d).items():
        pilots = {str(d["experiments"][n].get("pilot")) for n in names}
        if len(pilots) > 1:
            raise PlanError(f"{where}: claim {cid!r} is fed by experiments {names} with different pilots; "
                            f"a claim is planned from one pilot")
    return d


def units(value) -> int:
    """How many runs a parameter asks for: a count, or the length of a list of seeds."""
    return len(value) if isinstance(value, (list, tuple)) else int(value)


def design_seconds(design: dict, values: dict) -> float:
    """Estimated wall seconds of a run whose experiments have `values` (parameter -> value): the fixed part plus
    each experiment's units times its seconds per unit, shared among the workers where it fans out."""
    total = float(design["fixed_seconds"])
    for e in design["experiments"].values():
        share = design["workers"] if e.get("parallel", True) else 1
        total += units(values[e["parameter"]]) * e["seconds"] / share
    return total


def _size(values: dict, entry, depth: int = 0) -> float:
    """The size one `scales_with` entry reads from a profile's values: a parameter's value (a number, or a list's
    length); a list of entries is their sum (sweeps run one after another), and a list inside it a product (images
    x epochs x a constant: the passes per image). A constant alone is a number."""
    if isinstance(entry, list):
        sizes = [_size(values, e, depth + 1) for e in entry]
        return sum(sizes) if depth % 2 == 0 else math.prod(sizes)
    if isinstance(entry, (int, float)):
        return float(entry)
    v = values[entry]
    return float(len(v)) if isinstance(v, (list, tuple)) else float(v)


def parameter_names(entries) -> set[str]:
    """The parameters `scales_with` entries name, at any depth."""
    out = set()
    for e in entries:
        out |= parameter_names(e) if isinstance(e, list) else ({e} if isinstance(e, str) else set())
    return out


def estimate(paper: str, profile: str, root: Path) -> dict | None:
    """The wall time of `paper`'s `profile` on the design's workers, from the cpu profile's per-unit costs in
    plan.yml: each experiment's seconds per unit, times the profile's units, times the ratio of every size its
    cost grows with (`scales_with`: data, epochs, the length of a sweep), the fixed part scaled by
    `fixed_scales_with`. Returns {'seconds', 'experiments': {name: seconds}, 'unknown': [parameters]}: a
    parameter the profile changes that is neither a unit, a scale nor declared `free` (not changing the cost:
    a learning rate, the device) makes the estimate unknown (seconds None), since nothing says what it costs.
    None where the paper has no design. A linear model of the cost: a guide to plan a run by, not a measurement;
    the run records what it took."""
    p = get_paper(paper, root)
    design = read_design(p)
    if design is None:
        return None
    return estimate_seconds(design, prepare(paper, "cpu", {}, root)[1], prepare(paper, profile, {}, root)[1])


def estimate_seconds(design: dict, cpu: dict, other: dict) -> dict:
    """`estimate` from a design and the values of the cpu profile and of the other profile."""
    known = set(design.get("free", [])) | parameter_names(design.get("fixed_scales_with", []))
    out = {}
    for name, e in design["experiments"].items():
        known |= {e["parameter"]} | parameter_names(e.get("scales_with", []))
        ratio = math.prod(_size(other, s) / _size(cpu, s) for s in e.get("scales_with", []))
        share = design["workers"] if e.get("parallel", True) else 1
        out[name] = units(other[e["parameter"]]) * e["seconds"] * ratio / share
    fixed = design["fixed_seconds"] * math.prod(_size(other, s) / _size(cpu, s)
                                                for s in design.get("fixed_scales_with", []))
    unknown = sorted(k for k in other if other[k] != cpu.get(k) and k not in known)
    seconds = None if unknown else fixed + sum(out.values())
    return {"seconds": seconds, "experiments": out, "fixed": fixed, "unknown": unknown,
            "workers": design["workers"]}


def machine_factor(paper: str, root: Path) -> float | None:
    """How much longer than its design's estimate the committed cpu run took (its machine against the one the
    per-unit costs were measured on); None without a design or a cpu run of today's cpu values."""
    p = get_paper(paper, root)
    design, path = read_design(p), Paths(Path(root)).results(paper, "cpu")
    if design is None or not path.exists():
        return None
    cpu, results = prepare(paper, "cpu", {}, root)[1], json.loads(path.read_text())
    if results.get("parameters") != json.loads(json.dumps(cpu)):
        return None
    return float(results["seconds"]) / design_seconds(design, cpu)


def format_estimate(paper: str, profile: str, root: Path) -> str | None:
    """One line for `params` and `status`: the estimated time of a profile, and on a machine like the last cpu
    run's; None where there is nothing to estimate from."""
    e = estimate(paper, profile, root)
    if e is None:
        return None
    if e["seconds"] is None:
        return (f"{profile} profile: no time estimate; it changes {', '.join(e['unknown'])}, and plan.yml does "
                f"not say how the cost grows with them")
    parts = ", ".join(f"{k} {v / 60:.0f}" for k, v in sorted(e["experiments"].items(), key=lambda kv: -kv[1]))
    line = (f"{profile} profile: about {e['seconds'] / 60:.0f} min with {e['workers']} worker(s) at plan.yml's "
            f"per-unit costs (minutes by experiment: {parts})")
    factor = machine_factor(paper, root)
    if factor is not None and abs(factor - 1) > 0.15:
        line += (f"; the last cpu run took {factor:.1f}x its own estimate, so about {factor * e['seconds'] / 60:.0f}"
                 f" min on a machine like that one")
    return line


def _experiments_of(design: dict) -> dict[str, list[str]]:
    """{claim: the experiments whose units set its n}; a claim fed by several has the smallest n they give."""
    out: dict[str, list[str]] = {}
    for name, e in design["experiments"].items():
        for cid in e["claims"]:
            out.setdefault(cid, []).append(name)
    return out


def needed_units(c: dict, pilot_units: int) -> int | None:
    """The units of an experiment that give claim `c` its planned n (None: no n decides it)."""
    if c.get("n_planned") is None or not c.get("n"):
        return None
    return math.ceil(c["n_planned"] * pilot_units / c["n"] - 1e-9)


def allocate(plan_claims: list[dict], design: dict, pilot_values: dict, run_values: dict, paper_values: dict):
    """Each claim's n in the confirmatory run and, where that falls short of the planned n, the minutes the planned
    n would take and whether the paper profile reaches it. A claim's n grows with the units of its experiments, the
    smallest where several feed it (a sweep compared with Table I's rounds has as many pairs as the fewer of the two):
    n = pilot n x min(units now) / min(units in the pilot)."""
    experiments = _experiments_of(design)
    run_minutes = round(design_seconds(design, run_values) / 60, 1)
    for c in plan_claims:
        c.update(run_n=c["n"], funded=None, minutes_needed=None, paper_reaches=None, seconds_per_n=None,
                 run_minutes=None)
        names = experiments.get(c["id"])
        if c["verdict"] == "not testable" or not names or not c["n"]:
            continue
        pars = [design["experiments"][name]["parameter"] for name in names]
        base = min(units(pilot_values[par]) for par in pars)
        # one more unit of the claim's n takes base / n more units of each of its experiments: what a later,
        # larger confirmatory run would cost per unit of n (the chapter prices an undecided claim with it)
        c["seconds_per_n"] = round(sum(design["experiments"][name]["seconds"] * base / c["n"]
                                       / (design["workers"] if design["experiments"][name].get("parallel", True)
                                          else 1) for name in names), 2)
        c["run_minutes"] = run_minutes
        scaled = lambda values: c["n"] * min(units(values[par]) for par in pars) / base
        c["run_n"] = int(math.floor(scaled(run_values) + 1e-9))
        c["funded"] = c["n_planned"] is not None and c["run_n"] >= c["n_planned"]
        c["paper_reaches"] = c["n_planned"] is not None and scaled(paper_values) >= c["n_planned"]
        if not c["funded"] and c["n_planned"] is not None:
            u = needed_units(c, base)
            need = {par: max(units(run_values[par]), u) for par in pars}
            c["minutes_needed"] = round(design_seconds(design, {**run_values, **need}) / 60, 1)
    return plan_claims


def best_allocation(plan_claims: list[dict], design: dict, pilot_values: dict) -> tuple[dict, int, float]:
    """The units per experiment that bring the most claims to their planned n within the design's budget, the
    cheapest such: an exhaustive search over each experiment's candidate sizes (the pilot's, and each that gives
    one of its claims its planned n). Returns ({parameter: units}, claims funded, estimated seconds)."""
    budget = design["budget_minutes"] * 60
    names = list(design["experiments"])
    experiments = _experiments_of(design)
    base = {n: units(pilot_values[design["experiments"][n]["parameter"]]) for n in names}
    need = {}  # claim -> (its experiments, the units each needs)
    for c in plan_claims:
        if c["verdict"] != "not testable" and c["id"] in experiments:
            mine = experiments[c["id"]]
            need[c["id"]] = (mine, needed_units(c, min(base[n] for n in mine)))
    options = [sorted({base[n], *(u for mine, u in need.values() if n in mine and u is not None)}) for n in names]
    best = ({}, -1, math.inf)
    for combo in itertools.product(*options):
        size = dict(zip(names, combo))
        funded = sum(u is not None and all(size[n] >= u for n in mine) for mine, u in need.values())
        values = {design["experiments"][n]["parameter"]: size[n] for n in names}
        seconds = design_seconds(design, values)
        if seconds <= budget and (funded > best[1] or (funded == best[1] and seconds < best[2])):
            best = (values, funded, seconds)
    return best


def run_seeds(results: dict) -> dict[str, set[int]]:
    """{experiment: the seeds its rows were drawn from} of a results file: a row's `seed`, or the run's base `seed`
    plus its `round` or `draw` where the row records only that."""
    base = results.get("parameters", {}).get("seed", 0)
    out: dict[str, set[int]] = {}
    for row in results["runs"]:
        seed = row.get("seed")
        if seed is None:
            offset = row.get("round", row.get("draw"))
            if offset is None:
                continue
            seed = base + offset
        out.setdefault(row.get("experiment", "runs"), set()).add(int(seed))
    return out


def shared_seeds(pilot: dict, confirmatory: dict) -> dict[str, list[int]]:
    """{experiment: seeds both runs used}: empty when the confirmatory run's seeds are fresh."""
    a, b = run_seeds(pilot), run_seeds(confirmatory)
    return {e: sorted(a[e] & b[e]) for e in a.keys() & b.keys() if a[e] & b[e]}


def _decide_pilot(p, path: Path, root: Path) -> tuple[dict, list]:
    """(the results of a pilot run, its decisions under today's declarations)."""
    if not path.exists():
        raise PlanError(f"{p.id}: no pilot run to plan from ({path.relative_to(root)} is missing)")
    results = json.loads(path.read_text())
    package, claims = p.load(), p.load("claims")
    rows = rebuild_rows(results["runs"], package)
    # A parameter added since the pilot takes today's default: the pilot has no rows of its experiment, so the
    # claims that experiment feeds are 'not testable' in it whatever the value (they are planned from their own
    # pilot, named in plan.yml).
    fields = {f.name for f in dataclasses.fields(package.Params)}
    defaults = {k: v.default for k, v in notebook_parameters(p.notebook(root)).items() if k in fields}
    try:
        return results, claims.decide(rows, package.Params(**{**defaults, **results["parameters"]}))
    except (TypeError, AttributeError, KeyError) as e:
        raise PlanError(f"{p.id}: the pilot's rows ({path.relative_to(root)}) do not fit today's decide "
                        f"({type(e).__name__}: {e}); the plan needs a pilot run of today's experiments") from None


def _check_commit(paper: str, pilot: dict, results: dict) -> None:
    if not str(results["commit"]).startswith(str(pilot["commit"])):
        raise PlanError(f"{paper}: plan.yml names pilot {pilot['commit']}, but {pilot['results']} is from "
                        f"{results['commit']}")


def _entries(decided, results: dict) -> list[dict]:
    seconds = float(results["seconds"])
    out = []
    for claim, d, _ in decided:
        entry = {"id": claim.id, "verdict": d.verdict, "n": d.n, "estimate": d.estimate, "n_planned": d.n_planned,
                 "power": d.power, "minutes": None, "pilot_commit": str(results["commit"])[:12]}
        if d.n_planned and d.n:
            entry["minutes"] = round(seconds * max(1.0, d.n_planned / d.n) / 60, 1)
        out.append(entry)
    return out


def pilot_plan(paper: str, root: Path, scale: str = "cpu") -> dict:
    """{'pilot': {commit, profile, seconds, device}, 'claims': [{id, verdict, n, estimate, n_planned, power,
    minutes}]} for the pilot of `paper` at `scale`: the design's pilot where the paper has one (plan.yml), else
    its committed run; with a design, also each claim's confirmatory n (`allocate`) and the run's estimated
    minutes."""
    p = get_paper(paper, root)
    design = read_design(p) if scale == "cpu" else None
    path = Path(root) / design["pilot"]["results"] if design else Paths(Path(root)).results(paper, scale)
    if not path.exists():
        raise PlanError(f"{paper}: no committed {scale} run to plan from ({path.relative_to(root)} is missing)")
    results, decided = _decide_pilot(p, path, root)
    out = _entries(decided, results)
    pilot = {k: results.get(k) for k in ("commit", "profile", "device", "seconds")}
    plan = {"paper": paper, "scale": scale, "pilot": pilot, "claims": out}
    if design:
        _check_commit(paper, design["pilot"], results)
        pilot_values = dict(results["parameters"])
        # An experiment added after the pilot has a pilot of its own: its claims are planned from that run.
        for name, e in design["experiments"].items():
            if "pilot" not in e:
                continue
            own, own_decided = _decide_pilot(p, Path(root) / e["pilot"]["results"], root)
            _check_commit(paper, e["pilot"], own)
            by_id = {c["id"]: c for c in _entries(own_decided, own)}
            out[:] = [by_id[c["id"]] if c["id"] in e["claims"] else c for c in out]
            pilot_values[e["parameter"]] = own["parameters"][e["parameter"]]
        run_values = prepare(paper, "cpu", {}, root)[1]       # the notebook's defaults: the confirmatory run
        paper_values = prepare(paper, "paper", {}, root)[1]
        allocate(out, design, pilot_values, run_values, paper_values)
        best, best_funded, best_seconds = best_allocation(out, design, pilot_values)
        plan["design"] = {"workers": design["workers"], "budget_minutes": design["budget_minutes"],
                          "minutes": round(design_seconds(design, run_values) / 60, 1),
                          "funded": sum(bool(c["funded"]) for c in out),
                          "best": {"units": best, "funded": best_funded, "minutes": round(best_seconds / 60, 1)},
                          "experiments": {name: {"parameter": e["parameter"], "seconds": e["seconds"],
                                                 "pilot": pilot_values[e["parameter"]],
                                                 "run": run_values[e["parameter"]]}
                                          for name, e in design["experiments"].items()}}
    return plan


def planned_entries(plan: dict) -> dict:
    """{claim id: its plan} as a claim's declaration carries it (planned.json)."""
    keep = ("n", "estimate", "verdict", "n_planned", "power", "run_n", "funded", "minutes_needed", "paper_reaches",
            "seconds_per_n", "run_minutes")
    out = {}
    for c in plan["claims"]:
        if c["verdict"] == "not testable" and c["n_planned"] is None:
            continue
        entry = {("pilot_" + k if k in ("n", "estimate", "verdict") else k): c.get(k) for k in keep}
        out[c["id"]] = {"pilot_commit": c.get("pilot_commit") or plan["pilot"]["commit"][:12], **entry}
    return out


def write_planned(plan: dict, root: Path) -> Path:
    """Write the paper's planned.json: what every claim's declaration carries from stage 1."""
    p = get_paper(plan["paper"], root)
    path = p.folder / PLANNED_FILE
    body = {"pilot": plan["pilot"], "design": plan.get("design"), "claims": planned_entries(plan)}
    path.write_text(json.dumps(body, indent=1, sort_keys=True) + "\n")
    return path


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
    design = plan.get("design")
    if design:
        lines.append(f"confirmatory run (the cpu profile): about {design['minutes']:.1f} min with "
                     f"{design['workers']} worker(s), budget {design['budget_minutes']} min; it brings "
                     f"{design['funded']} claims to their planned n")
        best = design["best"]
        lines.append(f"the most the budget can fund: {best['funded']} claims, with "
                     + ", ".join(f"{k} = {v}" for k, v in best["units"].items()) + f" (about {best['minutes']} min)")
        for name, e in design["experiments"].items():
            lines.append(f"  {name}: {e['parameter']} {e['pilot']} -> {e['run']} ({e['seconds']:g} s per unit)")
        lines.append(f"{'claim':36s} {'run n':>5s} {'planned n':>9s} {'funded':>6s} {'minutes':>8s} {'paper reaches':>13s}")
        for c in plan["claims"]:
            if c.get("funded") is None:
                continue
            planned = "none" if c["n_planned"] is None else str(c["n_planned"])
            minutes = "" if c["minutes_needed"] is None else f"{c['minutes_needed']:.1f}"
            lines.append(f"{c['id']:36s} {c['run_n']:>5d} {planned:>9s} {'yes' if c['funded'] else 'no':>6s} "
                         f"{minutes:>8s} {'yes' if c['paper_reaches'] else 'no':>13s}")
    return "\n".join(lines)
