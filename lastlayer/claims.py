"""Claims declared as data: what a paper says, what we measure, and the rule that will decide.

A claim is declared before its numbers are seen: the rule and its parameters (margin, threshold,
alpha) are part of the declaration and enter its hash, so a later change of criterion shows up as a
new hash and has to be explained in `revised`. `Claim.decide` only feeds measurements to the declared
rule; it cannot loosen it.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import MISSING, dataclass, field, fields, replace

import numpy as np

from . import power, stats
from .stats import Decision
from .numbers import UNITS, format_interval, unit_scale

NOT_TESTABLE = "not testable"
SETTINGS = ("paper setup", "proxy: ", "extension")


def _canon(obj):
    """JSON-ready, order-independent form of declared parameters (sets sorted, numpy scalars unwrapped)."""
    if isinstance(obj, dict):
        return {str(k): _canon(v) for k, v in obj.items()}
    if isinstance(obj, (set, frozenset)):
        return sorted((_canon(v) for v in obj), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(obj, (list, tuple)):
        return [_canon(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    raise TypeError(f"cannot declare a parameter of type {type(obj).__name__}: {obj!r}")


def describe(rule: str, parameters: dict, parts: str = "", correction: str = "", unit: str = "") -> str:
    """The rule in plain sentences, written by the rule object from its declared parameters, its boundaries in
    `unit` (the unit the claim's numbers are written in); for a claim of several parts, what a part is and how
    the parts combine (`stats.combine`)."""
    if rule == NOT_TESTABLE:
        return "Not testable here: no measurement decides it."
    r = stats.make_rule(rule, parameters)
    if not parts:
        return r.describe(unit=unit)
    alpha_text = f"{100 * (1 - r.alpha):g}%-family (alpha {r.alpha:g} / k for k parts, Bonferroni)" \
        if correction == "bonferroni" else None
    return f"For each {parts}: {r.describe(alpha_text, unit=unit)} {stats.COMBINE_RULE}"


@dataclass(frozen=True)
class Claim:
    id: str
    statement: str
    paper: str
    estimand: str
    rule: str
    parameters: dict = field(default_factory=dict)
    why: str = ""
    setting: str = "paper setup"
    parts: str = ""       # for a claim decided part by part: what one part is ("model", "dataset")
    correction: str = ""  # "bonferroni": each of k parts is decided at alpha / k, k known when decided
    revised: str = ""
    unit: str = ""        # how the book writes its numbers: "" as measured, "points" (x100, a difference of
    #                       fractions), "%" (x100, a share); the criterion's boundaries and `ours` use it alike
    plan: dict = field(default_factory=dict)  # stage 1 of a two-stage verdict: the pilot this claim's n was
    #                       planned from (commit, n, estimate, verdict), the planned n and the n the confirmatory
    #                       run gives it (`with_plans`, from the paper's planned.json); hashed, as declared before
    #                       the confirmatory run

    def __post_init__(self):
        where = f"claim {self.id!r}"
        if not (isinstance(self.id, str) and re.fullmatch(r"[a-z0-9-]+", self.id)):
            raise ValueError(f"{where}: id must be a slug of [a-z0-9-]")
        for name in ("statement", "paper", "estimand"):
            if not (isinstance(getattr(self, name), str) and getattr(self, name).strip()):
                raise ValueError(f"{where}: {name} must be a non-empty sentence")
        if not (isinstance(self.setting, str) and self.setting.startswith(SETTINGS)
                and (not self.setting.startswith("proxy: ") or self.setting[7:].strip())):
            raise ValueError(f"{where}: setting must start with 'paper setup', 'proxy: <what differs>' "
                             f"or 'extension', got {self.setting!r}")
        object.__setattr__(self, "parameters", dict(self.parameters))  # a private copy: the declaration is frozen
        object.__setattr__(self, "plan", dict(self.plan or {}))
        if self.rule == NOT_TESTABLE:
            if set(self.parameters) - {"reason"}:
                raise ValueError(f"{where}: a not-testable claim takes only a 'reason' parameter")
            if not (self.parameters.get("reason") or self.why):
                raise ValueError(f"{where}: a not-testable claim needs a reason (parameters['reason'] or why)")
        else:
            try:
                stats.make_rule(self.rule, self.parameters)
            except (ValueError, TypeError) as e:
                raise ValueError(f"{where}: {e}") from None
        if self.unit not in UNITS:
            raise ValueError(f"{where}: unit must be one of {sorted(UNITS)}, got {self.unit!r}")
        if self.correction not in ("", "bonferroni") or (self.correction and not self.parts):
            raise ValueError(f"{where}: correction must be '' or 'bonferroni', and needs `parts`")
        try:
            _canon(self.parameters)
        except TypeError as e:
            raise ValueError(f"{where}: {e}") from None

    @property
    def declaration_hash(self) -> str:
        # only what differs from the defaults: a field added to the schema later leaves old hashes as they were;
        # `revised` (the reason for a change) and `unit` (how numbers are written, not what decides) never enter
        default = lambda f: f.default_factory() if f.default_factory is not MISSING else f.default
        body = {f.name: _canon(getattr(self, f.name)) for f in fields(self)
                if f.name not in ("revised", "unit") and getattr(self, f.name) != default(f)}
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def rule_criterion(self) -> str:
        return describe(self.rule, self.parameters, self.parts, self.correction, self.unit)

    def decide(self, *args, **kwargs) -> Decision:
        """Run the declared rule on measurements; extra keywords (e.g. paired, seed) may add, not override."""
        clash = set(kwargs) & set(self.parameters) - ({"alpha"} if self.correction == "bonferroni" else set())
        if clash:
            raise ValueError(f"claim {self.id!r}: {sorted(clash)} are declared and cannot be overridden at decide time")
        if self.rule == NOT_TESTABLE:
            return stats.not_testable(kwargs.get("reason") or self.parameters.get("reason") or self.why)
        if "alpha" in kwargs and self.correction != "bonferroni":
            raise ValueError(f"claim {self.id!r}: alpha is declared, not chosen at decide time (declare "
                             f"correction='bonferroni' for a claim whose parts share it)")
        rule = stats.make_rule(self.rule, self.parameters)
        # the decision, and the n a confirmatory run needs to decide it with 80% power from data like these
        return power.attach_plan(rule, rule.decide(*args, **kwargs), args, kwargs)

    def entry(self, decision: Decision, ours: str | None = None) -> dict:
        """The claim's entry in a results file."""
        if not isinstance(decision, Decision):
            raise ValueError(f"claim {self.id!r}: entry needs a Decision, got {type(decision).__name__}")
        d = decision.to_dict()
        if ours is None:
            ours = _ours(decision, self.unit)
        return {"id": self.id, "statement": self.statement, "paper": self.paper, "ours": ours,
                "estimate": d["estimate"], "interval": d["interval"], "n": d["n"], "n_needed": d["n_needed"],
                "n_planned": d["n_planned"], "power": d["power"],
                "rule": self.rule, "rule_parameters": _canon(self.parameters),
                "declaration_hash": self.declaration_hash, "setting": self.setting, "verdict": d["verdict"],
                "criterion": self.rule_criterion, "estimand": self.estimand, "why": self.why,
                "detail": d["detail"], "parts": d["parts"], "revised": self.revised, "unit": self.unit,
                "plan": _canon(self.plan)}


def ours(decision: Decision, unit: str = "", label: str | None = None, digits: int | None = None,
         sign: bool = False) -> str:
    """A decision in words, in `unit`: 'fashion_mnist: -2.1 [-4.9, +0.7] points (n = 4)', each part of a
    combined claim after the other with its label. The interval is the one that decided."""
    if decision.verdict == NOT_TESTABLE:
        return decision.detail
    if decision.estimate is None:  # a combined claim: its parts, one after the other
        return "; ".join(ours(p, unit, digits=digits, sign=sign) for p in decision.parts) or decision.detail
    scale, suffix = unit_scale(unit)
    digits = (1 if unit else 3) if digits is None else digits
    text = format_interval(decision.estimate, decision.interval, decision.n, scale=scale, digits=digits, sign=sign)
    if suffix:  # the unit once, after the interval: '-2.1 [-4.9, 0.7] points (n = 4)'
        head, _, n = text.rpartition(" (n = ")
        text = f"{head}{suffix} (n = {n}"
    label = decision.label if label is None else label
    return f"{label}: {text}" if label else text


_ours = ours


def with_plans(claims, path) -> list[Claim]:
    """The claims with their stage-1 plans from `path` (a paper's planned.json, written by `python -m lastlayer
    plan <id> --write`); unchanged when the file does not exist (a paper without a confirmatory design yet).
    A plan for a claim that is not declared is an error: the file is stale."""
    import pathlib
    path = pathlib.Path(path)
    if not path.exists():
        return list(claims)
    planned = json.loads(path.read_text())["claims"]
    ids = {c.id for c in claims}
    stale = sorted(set(planned) - ids)
    if stale:
        raise ValueError(f"{path.name}: plans for claims that are not declared: {stale}; rerun `python -m "
                         f"lastlayer plan {path.parent.name} --write`")
    return [replace(c, plan=planned[c.id]) if c.id in planned else c for c in claims]


def check_unique(claims) -> dict:
    """{id: claim}; raises on duplicate ids."""
    out, dups = {}, []
    for c in claims:
        if c.id in out:
            dups.append(c.id)
        out[c.id] = c
    if dups:
        raise ValueError(f"duplicate claim ids: {sorted(set(dups))}")
    return out


# ---------------------------------------------------------------- a paper's decisions, one policy for all
# The measurements a claim needs are absent or too few in this run: the claim is 'not testable' here.
Missing = stats.TooFew


def require(*arrays, n: int = 2, what: str = "runs") -> None:
    """Raise `Missing` unless every array has at least `n` values (`what` names them in the reason)."""
    have = min((len(a) for a in arrays), default=0)
    if have < n:
        raise Missing(f"needs at least {n} {what}; this run has {have}")


def decide_parts(claim: Claim, parts: list[tuple[str, tuple]], **extra) -> Decision:
    """A claim decided part by part: the declared rule on each (label, data), then `stats.combine`.
    Each part's detail starts with its label; with `correction='bonferroni'` each part is decided at
    alpha / k. A claim measured on one part only (a smaller profile) is that part's decision, with its estimate
    and interval. No part at all is `Missing`."""
    if not parts:
        raise Missing(f"no part of this claim ({claim.parts or 'part'}) was measured in this run")
    if claim.correction == "bonferroni":
        extra = {**extra, "alpha": stats.make_rule(claim.rule, claim.parameters).alpha / len(parts)}
    decided = []
    for label, data in parts:
        try:
            d = claim.decide(*data, **extra)
        except Missing as e:
            d = stats.not_testable(str(e))
        decided.append(replace(d, detail=f"{label}: {d.detail}", label=label))
    return decided[0] if len(decided) == 1 else stats.combine(decided)  # one part measured: that part


class Verdicts:
    """Collects a paper's decisions: `add(id, measure, ours)`, then `done()` lists every declared claim once,
    in declaration order. `measure` is a Decision or a function of the claim returning one; a function that
    raises `Missing` makes the claim 'not testable' with that reason, the one policy for missing data in
    every paper. Claims declared 'not testable' need no `add`. With `setting`, claims of the paper's own setup
    are reported in that setting (a proxy) instead."""

    def __init__(self, claims, setting: str | None = None):
        self.claims = check_unique(claims)
        self.setting = setting
        self._out: dict[str, tuple] = {}

    def add(self, cid: str, measure, ours=None) -> Decision:
        if cid not in self.claims:
            raise KeyError(f"no claim {cid!r} is declared")
        if cid in self._out:
            raise ValueError(f"claim {cid!r} decided twice")
        claim = self.claims[cid]
        if self.setting and claim.setting == "paper setup" and claim.rule != NOT_TESTABLE:
            claim = replace(claim, setting=self.setting)
        try:
            decision = measure(claim) if callable(measure) else measure
            ours = ours(decision) if callable(ours) else ours
        except Missing as e:
            decision, ours = stats.not_testable(str(e)), None
        if not isinstance(decision, Decision):
            raise TypeError(f"claim {cid!r}: the measure gave {type(decision).__name__}, not a Decision")
        self._out[cid] = (claim, decision, None if decision.verdict == NOT_TESTABLE else ours)
        return decision

    def done(self) -> list[tuple[Claim, Decision, str | None]]:
        for cid, claim in self.claims.items():
            if cid not in self._out and claim.rule == NOT_TESTABLE:
                self.add(cid, claim.decide())
        missing = [cid for cid in self.claims if cid not in self._out]
        if missing:
            raise ValueError(f"claims declared but never decided: {missing}")
        return [self._out[cid] for cid in self.claims]
