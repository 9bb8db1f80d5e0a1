"""How the book writes a number: an estimate with its interval and n, a mean with its spread over runs.

One formatter per kind of number, shared by every paper's claims and tables, so that two chapters never
write the same quantity two ways."""
from __future__ import annotations

import numpy as np


def format_interval(estimate, interval, n, scale=1.0, digits=3, unit="", sign=False) -> str:
    """'0.123 [0.050, 0.190] (n = 8)': an estimate, its interval and the n behind it, in plain words.
    `scale=100, unit=" points"` writes a difference of fractions in points; `sign` writes +/- always."""
    spec = f"{'+' if sign else ''}.{digits}f"
    f = lambda x: "n/a" if x is None else f"{x * scale:{spec}}{unit}"
    iv = "" if interval is None else f" [{f(interval[0])}, {f(interval[1])}]"
    return f"{f(estimate)}{iv} (n = {n})"


def fmt_mean_sd(values, scale: float = 1.0, digits: int = 1, unit: str = "", n: bool = False,
                sign: bool = False) -> str:
    """'94.6 ± 0.2%' from repeated measurements (sample sd; NaN ignored); '–' when there are none.
    `sign` writes the mean's sign always ('+0.12 ± 0.03'), as a change reads best."""
    v = np.asarray(values, dtype=float).ravel() * scale
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return "–"
    sd = f" ± {v.std(ddof=1):.{digits}f}" if len(v) > 1 else ""
    return f"{v.mean():{'+' if sign else ''}.{digits}f}{sd}{unit}" + (f" (n = {len(v)})" if n else "")
