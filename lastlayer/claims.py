"""Claims declared as data: what a paper says, what we measure, and the rule that will decide.

A claim is declared before its numbers are seen: the rule and its parameters (margin, threshold,
alpha) are part of the declaration and enter its hash, so a later change of criterion shows up as a
new hash and has to be explained in `revised`. `Claim.decide` only feeds measurements to the declared
rule; it cannot loosen it.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import re
from dataclasses import dataclass, field, fields

import numpy as np

from . import stats
from .stats import Decision

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


def _keywords(rule: str) -> tuple[dict, set]:
    """Keyword-only parameters of a rule: {name: default} for optional ones, and the required names.
    Positional parameters are the measurements, passed at decide time, never declared."""
    ps = [p for p in inspect.signature(stats.RULES[rule]).parameters.values() if p.kind is p.KEYWORD_ONLY]
    return ({p.name: p.default for p in ps if p.default is not p.empty},
            {p.name for p in ps if p.default is p.empty})


def _g(x):
    return f"{x:g}" if isinstance(x, (int, float)) else str(x)


def describe(rule: str, parameters: dict) -> str:
    """The rule in one plain sentence, from its name and (declared or default) parameters."""
    if rule == NOT_TESTABLE:
        return "Not testable here: no measurement decides it."
    defaults, _ = _keywords(rule)
    p = {**defaults, **parameters}
    lvl = f"{100 * (1 - p['alpha']):g}%"
    other = {"above": "at or below", "below": "at or above"}
    if rule == "direction":
        up = p["expected"] == "greater"
        m = p["min_effect"]  # with a minimum effect, every interval short of it contradicts (0 included)
        wrong = (f"{'below' if up else 'above'} {_g(m if up else -m)}" if m
                 else f"{'at or below' if up else 'at or above'} 0")
        return (f"Reproduced if the {lvl} t-interval of the effect lies entirely {'above' if up else 'below'} 0; "
                f"not reproduced if it lies entirely {wrong}; otherwise inconclusive.")
    if rule == "magnitude":
        t, tol = p["target"], p["tolerance"]
        return (f"Reproduced if the {lvl} t-interval of the effect excludes 0 and overlaps {_g(t - tol)} to "
                f"{_g(t + tol)} ({_g(t)} ± {_g(tol)}); not reproduced if it misses that band; otherwise inconclusive.")
    if rule == "equivalence":
        m = _g(p["margin"])
        return (f"Reproduced if the {lvl} t-interval of the difference lies inside (-{m}, {m}); not reproduced "
                f"if it lies entirely outside; otherwise inconclusive.")
    if rule == "noninferiority":
        m = _g(p["margin"])
        return (f"Reproduced if the {lvl} t-interval of the difference has its lower end above -{m}; not "
                f"reproduced if its upper end is below -{m}; otherwise inconclusive.")
    median = p.get("statistic") == "median"
    what = {"threshold": "bootstrap interval of the median" if median else "t-interval of the mean",
            "rate": "exact (Clopper-Pearson) interval of the rate",
            "correlation": f"bootstrap interval of the {p.get('method', 'spearman')} correlation",
            "correlation_from_runs": "t-interval of the mean per-run correlation"}
    if rule in what:
        s, t = p.get("side", "above"), _g(p["threshold"])
        return (f"Reproduced if the {lvl} {what[rule]} lies entirely {s} {t}; not reproduced if it lies "
                f"entirely {other[s]} {t}; otherwise inconclusive.")
    if rule == "best_setting":
        return (f"Reproduced if the {lvl} bootstrap interval of (best claimed setting minus best other setting, "
                f"{'higher' if p['higher_is_better'] else 'lower'} is better) lies above 0; not reproduced if it "
                f"lies below 0; otherwise inconclusive.")
    raise ValueError(f"no description for rule {rule!r}")


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
    criterion: str = ""
    revised: str = ""

    def __post_init__(self):
        where = f"claim {self.id!r}"
        if not (isinstance(self.id, str) and re.fullmatch(r"[a-z0-9-]+", self.id)):
            raise ValueError(f"{where}: id must be a slug of [a-z0-9-]")
        for name in ("statement", "paper", "estimand"):
            if not (isinstance(getattr(self, name), str) and getattr(self, name).strip()):
                raise ValueError(f"{where}: {name} must be a non-empty sentence")
        if self.rule != NOT_TESTABLE and self.rule not in stats.RULES:
            raise ValueError(f"{where}: unknown rule {self.rule!r}; "
                             f"expected one of {sorted(stats.RULES)} or {NOT_TESTABLE!r}")
        if not (isinstance(self.setting, str) and self.setting.startswith(SETTINGS)
                and (not self.setting.startswith("proxy: ") or self.setting[7:].strip())):
            raise ValueError(f"{where}: setting must start with 'paper setup', 'proxy: <what differs>' "
                             f"or 'extension', got {self.setting!r}")
        object.__setattr__(self, "parameters", dict(self.parameters))  # a private copy: the declaration is frozen
        if self.rule == NOT_TESTABLE:
            if set(self.parameters) - {"reason"}:
                raise ValueError(f"{where}: a not-testable claim takes only a 'reason' parameter")
            if not (self.parameters.get("reason") or self.why):
                raise ValueError(f"{where}: a not-testable claim needs a reason (parameters['reason'] or why)")
        else:
            optional, required = _keywords(self.rule)
            unknown = set(self.parameters) - set(optional) - required
            if unknown:
                raise ValueError(f"{where}: rule {self.rule!r} accepts no parameter {sorted(unknown)}; "
                                 f"it accepts {sorted(set(optional) | required)}")
            missing = required - set(self.parameters)
            if missing:  # the criterion is part of the declaration, never supplied with the data
                raise ValueError(f"{where}: rule {self.rule!r} needs declared parameters {sorted(missing)}")
        try:
            _canon(self.parameters)
        except TypeError as e:
            raise ValueError(f"{where}: {e}") from None

    @property
    def declaration_hash(self) -> str:
        body = {f.name: _canon(getattr(self, f.name)) for f in fields(self) if f.name != "revised"}
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def rule_criterion(self) -> str:
        return self.criterion or describe(self.rule, self.parameters)

    def decide(self, *args, **kwargs) -> Decision:
        """Run the declared rule on measurements; extra keywords (e.g. paired, seed) may add, not override."""
        clash = set(kwargs) & set(self.parameters)
        if clash:
            raise ValueError(f"claim {self.id!r}: {sorted(clash)} are declared and cannot be overridden at decide time")
        if self.rule == NOT_TESTABLE:
            return stats.not_testable(kwargs.get("reason") or self.parameters.get("reason") or self.why)
        return stats.RULES[self.rule](*args, **self.parameters, **kwargs)

    def entry(self, decision: Decision, ours: str | None = None) -> dict:
        """The claim's entry in a results file."""
        if not isinstance(decision, Decision):
            raise ValueError(f"claim {self.id!r}: entry needs a Decision, got {type(decision).__name__}")
        d = decision.to_dict()
        if ours is None:
            ours = _ours(decision)
        return {"id": self.id, "statement": self.statement, "paper": self.paper, "ours": ours,
                "estimate": d["estimate"], "interval": d["interval"], "n": d["n"], "n_needed": d["n_needed"],
                "rule": self.rule, "rule_parameters": _canon(self.parameters),
                "declaration_hash": self.declaration_hash, "setting": self.setting, "verdict": d["verdict"],
                "criterion": self.rule_criterion, "estimand": self.estimand, "why": self.why,
                "detail": d["detail"], "parts": d["parts"], "revised": self.revised}


def _ours(decision: Decision) -> str:
    if decision.verdict == NOT_TESTABLE:
        return decision.detail
    if decision.estimate is None:  # a combined claim: its parts, one after the other
        return "; ".join(_ours(p) for p in decision.parts) or decision.detail
    return format_interval(decision.estimate, decision.interval, decision.n)


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


def format_interval(estimate, interval, n, scale=1.0, digits=3, unit="") -> str:
    """'0.123 [0.050, 0.190] (n = 8)': an estimate, its interval and the n behind it, in plain words."""
    f = lambda x: "n/a" if x is None else f"{x * scale:.{digits}f}{unit}"
    iv = "" if interval is None else f" [{f(interval[0])}, {f(interval[1])}]"
    return f"{f(estimate)}{iv} (n = {n})"
