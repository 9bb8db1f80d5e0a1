"""How the book writes a number: an estimate with its interval and n, a mean with its spread over runs, a
confidence level, a count of things.

One formatter per kind of number, shared by every paper's claims and tables, so that two chapters never
write the same quantity two ways. None of them writes a negative zero ('-0.0' is a zero that rounded from
below; it reads as a sign that means nothing)."""
from __future__ import annotations

import math

import numpy as np

# How a claim writes its numbers (`Claim.unit`): the name, and (scale, suffix) from the fraction it measures.
# "points" are differences of fractions written x100 (a gap of 0.021 is 2.1 points); "%" is a share x100.
UNITS = {"": (1.0, ""), "points": (100.0, " points"), "%": (100.0, "%")}


def unit_scale(unit: str) -> tuple[float, str]:
    """(scale, suffix) of a declared unit; an unknown unit is an error naming the known ones."""
    if unit not in UNITS:
        raise ValueError(f"unknown unit {unit!r}; expected one of {sorted(UNITS)}")
    return UNITS[unit]


def _fixed(x: float, spec: str) -> str:
    text = f"{x:{spec}}"
    if text.lstrip("+-").strip("0.%") == "" and text[:1] == "-":  # '-0.0' -> '0.0'
        text = text[1:]
    if text.startswith("+") and text[1:].strip("0.") == "":  # '+0.0' -> '0.0': a zero has no sign
        text = text[1:]
    return text


def fixed(x, digits: int = 3, sign: bool = False) -> str:
    """`x` with `digits` decimals, never '-0.0'; `sign` writes '+' before a positive number."""
    return _fixed(float(x), f"{'+' if sign else ''}.{digits}f")


def with_unit(x, unit: str = "", digits: int = 1, sign: bool = False) -> str:
    """A number in a declared unit: `with_unit(0.021, "points")` is '2.1 points', (0.01) is '1 point'."""
    scale, suffix = unit_scale(unit)
    text = fixed(x * scale, digits, sign)
    if suffix == " points" and text.lstrip("+-") in ("1", "1." + "0" * digits):
        suffix = " point"
    return text + suffix


def number(x) -> str:
    """A threshold or a declared value at its natural precision (at most 3 significant digits): 0.01, 97.5, 1."""
    x = float(x)
    return "0" if x == 0 else _fixed(x, ".3g")


def format_interval(estimate, interval, n, scale=1.0, digits=3, unit="", sign=False) -> str:
    """'0.123 [0.050, 0.190] (n = 8)': an estimate, its interval and the n behind it, in plain words.
    `scale=100, unit=" points"` writes a difference of fractions in points; `sign` writes +/- always."""
    spec = f"{'+' if sign else ''}.{digits}f"
    f = lambda x: "n/a" if x is None else f"{_fixed(x * scale, spec)}{unit}"
    iv = "" if interval is None else f" [{f(interval[0])}, {f(interval[1])}]"
    return f"{f(estimate)}{iv} (n = {count(n)})"


def fmt_mean_sd(values, scale: float = 1.0, digits: int = 1, unit: str = "", n: bool = False,
                sign: bool = False) -> str:
    """'94.6 ± 0.2%' from repeated measurements (sample sd; NaN ignored); '–' when there are none.
    `sign` writes the mean's sign always ('+0.12 ± 0.03'), as a change reads best."""
    v = np.asarray(values, dtype=float).ravel() * scale
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return "–"
    sd = f" ± {_fixed(v.std(ddof=1), f'.{digits}f')}" if len(v) > 1 else ""
    mean = _fixed(v.mean(), f"{'+' if sign else ''}.{digits}f")
    return f"{mean}{sd}{unit}" + (f" (n = {len(v)})" if n else "")


def level(alpha: float) -> str:
    """A confidence level in at most 3 significant digits: alpha 0.05 is '95%', 0.05 / 3 is '98.3%'."""
    return f"{100 * (1 - float(alpha)):.3g}%"


def count(n) -> str:
    """A count with thousands separators: 110823 is '110,823'."""
    if n is None:
        return "n/a"
    if isinstance(n, float) and not n.is_integer():
        return f"{n:,.3g}"
    return f"{int(n):,}"


def plural(n, noun: str, plural_form: str | None = None) -> str:
    """'1 thread', '2 threads', '12,000 images': a count and its noun, in the right number."""
    word = noun if n == 1 else (plural_form or noun + "s")
    return f"{count(n)} {word}"

