"""What a chapter shows of its claims and tables: verdict badges, the claims at a glance, the full claims table,
and tables formatted for reading. Paper-agnostic: everything comes from a `Report` or a results dict.

The claims are decided at the end of a notebook but shown at the top of its chapter. myst-nb 1.x pastes a
glued output anywhere in the same notebook, before or after the cell that glued it (execution is off when the
book is built, so every glue of the notebook is known before its first line is rendered). The recipe:

1. Late in the notebook, once every claim is added, a cell tagged `remove-cell`:

       display.glue_claims(report)     # glues "claims-glance" and "claims-table" (display=False)

2. Right under the chapter's title and question, a markdown cell:

       ## The claims at a glance

       ```{glue} claims-glance
       ```

3. At the end of the chapter, a markdown cell:

       ## All claims

       ```{glue} claims-table
       ```

Numbers in the narrative are glued the same way: `glue("gap", 4.2, display=False)` in a code cell and
{glue:text}`gap:.1f` in markdown. Tables are shown with `display.table(df, caption=...)`, numbered
"Table <chapter>.<k>" once `display.number_tables(paper_id)` has named the chapter; a mean and spread over seeds
is written with `lastlayer.numbers.fmt_mean_sd(values, scale=100, digits=1, unit="%")`. The badge styles are in
`book/_static/lastlayer.css`.
"""
from __future__ import annotations

import html
import math
import re
from collections.abc import Mapping

import numpy as np

from lastlayer.numbers import count, fixed, unit_scale
from lastlayer.stats import VERDICTS



class HTML(str):
    """An HTML fragment that notebooks display (`_repr_html_`) and `glue` stores as text/html."""

    def _repr_html_(self) -> str:
        return str(self)

    def __repr__(self) -> str:  # the text/plain fallback: never a wall of markup in a text output
        return f"<{len(self)} characters of HTML>"


def _e(text) -> str:
    return html.escape("" if text is None else str(text))


def badge(verdict: str) -> str:
    """A coloured verdict badge (the colour is never the only signal: the word is in it)."""
    slug = str(verdict).replace(" ", "-")
    return f'<span class="ll-badge ll-{_e(slug)}">{_e(verdict)}</span>'


def setting_tag(setting: str | None) -> str:
    """'proxy' and 'extension' claims carry a small tag; the paper's own setup carries none."""
    setting = setting or "paper setup"
    if setting.startswith("proxy"):
        return f' <span class="ll-tag" title="{_e(setting)}">proxy</span>'
    if setting.startswith("extension"):
        return ' <span class="ll-tag" title="our addition, not a claim of the paper">extension</span>'
    return ""


def claims_of(source) -> list[dict]:
    """The claim entries of a `Report`, a results dict or a list of entries."""
    if hasattr(source, "claims"):
        return list(source.claims)
    if isinstance(source, Mapping):
        return list(source.get("claims", []))
    return list(source)


def _number(x: float) -> str:
    """A readable number: 3 significant digits, no scientific notation for everyday sizes."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    x = float(x)
    if x == 0:
        return "0"
    a = abs(x)
    if a >= 1000:
        return f"{x:,.0f}"
    if a >= 0.001:
        digits = max(0, 2 - int(math.floor(math.log10(a))))
        return f"{x:.{digits}f}"
    return f"{x:.1e}"


def ours_text(c: dict) -> str:
    """Our measurement in words; for an inconclusive claim, the n that would decide it (80% power, planned from
    this run's effect and spread by `lastlayer.power`), and, where the claim has a stage-1 plan, what that n
    costs and whether the paper profile reaches it."""
    text = c.get("ours") or ""
    if c.get("verdict") == "inconclusive" and c.get("n_needed"):
        text += f" — n = {count(c['n_needed'])} would decide it with 80% power"
    plan = c.get("plan") or {}
    if c.get("verdict") == "inconclusive" and plan.get("minutes_needed"):
        text += (f"; the pilot planned n = {count(plan['n_planned'])}, about {plan['minutes_needed']:.0f} CPU "
                 f"minutes for this chapter on 2 cores, which the paper profile's n "
                 f"{'reaches' if plan.get('paper_reaches') else 'does not reach'}")
    elif (c.get("verdict") == "inconclusive" and plan.get("funded") and c.get("n_needed")
          and plan.get("seconds_per_n") and plan.get("run_minutes")):
        minutes = plan["run_minutes"] + max(0, c["n_needed"] - plan["run_n"]) * plan["seconds_per_n"] / 60
        text += (f"; this run had the n the pilot planned, and was not decided: n = {count(c['n_needed'])} on "
                 f"fresh seeds, a new confirmatory run, would take about {minutes:.0f} CPU minutes for this "
                 f"chapter on 2 cores")
    elif c.get("verdict") == "inconclusive" and plan and plan.get("n_planned") is None:
        text += "; the pilot's estimate sat on a boundary of the claim: no n up to the planner's cap decides it"
    return text


def plan_text(c: dict) -> str:
    """Stage 1 of the claim's verdict: the pilot's n, estimate and verdict, the planned n and the n this run has."""
    plan = c.get("plan") or {}
    if not plan:
        return "–"
    scale, suffix = unit_scale(c.get("unit") or "")
    est = plan.get("pilot_estimate")
    est = "–" if est is None else f"{_number(est * scale)}{suffix}"
    planned = ("none decides (estimate on a boundary)" if plan.get("n_planned") is None
               else f"{count(plan['n_planned'])} for 80% power")
    funded = "" if plan.get("funded") is None else (" (funded)" if plan["funded"] else " (short of the plan)")
    return (f"pilot {plan.get('pilot_commit', '')[:7]}: {est}, n = {count(plan.get('pilot_n') or 0)}, "
            f"{plan.get('pilot_verdict')}; planned n: {planned}; this run: n = {count(plan.get('run_n') or 0)}"
            f"{funded}")


def measured(c: dict) -> str:
    """What the claim's numbers measure (its declared estimand), as a line under the claim."""
    return f'<br><span class="ll-estimand">Measured: {_e(c["estimand"])}</span>' if c.get("estimand") else ""


def _head(columns) -> str:
    head = "".join(f'<th class="ll-col-{k}">{_e(label)}</th>' for k, label in columns)
    return f"<thead><tr>{head}</tr></thead>"


def at_a_glance(source) -> HTML:
    """The claims, verdict first, with the paper's number and ours: the top of each chapter."""
    claims = claims_of(source)
    counts = {v: sum(c.get("verdict") == v for c in claims) for v in VERDICTS}
    summary = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
    body = "".join(
        f'<tr><td class="ll-verdict">{badge(c.get("verdict", ""))}</td>'
        f'<td data-label="claim">{_e(c.get("statement"))}{setting_tag(c.get("setting"))}{measured(c)}</td>'
        f'<td data-label="the paper">{_e(c.get("paper"))}</td>'
        f'<td data-label="ours">{_e(ours_text(c))}</td></tr>' for c in claims)
    head = _head([("verdict", "verdict"), ("claim", "claim"), ("paper", "the paper"), ("ours", "ours")])
    return HTML(f'<div class="ll-glance"><p class="ll-summary">{len(claims)} claims: {_e(summary)}.</p>'
                f'<div class="ll-table-wrap"><table class="ll-table ll-claims ll-stack">{head}<tbody>{body}</tbody>'
                f'</table></div></div>')


def claims_table(source) -> HTML:
    """Every claim in full, nothing truncated: verdict, claim and setting, the paper's number, ours as estimate
    [95% interval] (n), and the rule that decided; then the declarations revised, with their reasons."""
    claims = claims_of(source)
    planned = any(c.get("plan") for c in claims)
    rows = []
    for c in claims:
        setting = c.get("setting") or "paper setup"
        rows.append(  # the row's id is where the scorecard links to (pages.claim_anchor)
            f'<tr id="claim-{_e(c.get("id"))}"><td class="ll-verdict">{badge(c.get("verdict", ""))}</td>'
            f'<td data-label="claim">{_e(c.get("statement"))}<br><span class="ll-setting">{_e(setting)}</span>'
            f'{measured(c)}</td>'
            f'<td data-label="the paper">{_e(c.get("paper"))}</td><td data-label="ours">{_e(ours_text(c))}</td>'
            + (f'<td class="ll-plan" data-label="pilot and plan">{_e(plan_text(c))}</td>' if planned else "")
            + f'<td class="ll-rule" data-label="rule">{_e(c.get("criterion"))}'
            + (f'<br><span class="ll-why">Why: {_e(c["why"])}</span>' if c.get("why") else "")
            + "</td></tr>")
    head = _head([("verdict", "verdict"), ("claim", "claim and setting"), ("paper", "the paper"),
                  ("ours", "ours: estimate [95% interval] (n)")]
                 + ([("plan", "pilot and plan (stage 1)")] if planned else []) + [("rule", "rule")])
    out = f'<div class="ll-table-wrap"><table class="ll-table ll-claims ll-full ll-stack">{head}<tbody>{"".join(rows)}' \
          f'</tbody></table></div>'
    revised = [c for c in claims if c.get("revised")]
    if revised:
        items = "".join(f'<li><strong>{_e(c["id"])}</strong>: {_e(c["revised"])}</li>' for c in revised)
        out += f'<div class="ll-revised"><p><strong>Declarations revised, with their reasons</strong> (the runs they changed are listed in the note at the top)</p><ul>{items}</ul></div>'
    return HTML(out)


def glue_claims(report) -> None:
    """Glue the claims at a glance ("claims-glance") and in full ("claims-table") for the chapter to paste."""
    from lastlayer.book.notebook import glue  # myst-nb's format, without needing myst-nb where notebooks run
    glue("claims-glance", at_a_glance(report), display=False)
    glue("claims-table", claims_table(report), display=False)


def claims_digest(report, exclude=()) -> None:
    """Print each claim's and each part's verdict and n: the output that the nbval references compare (tag the cell
    `nbval-check-output`). The estimates are not printed: the same seeds train to numbers that differ in their last
    digits from one CPU to another (their floating-point kernels differ, and training amplifies it), and at a smoke
    reference's n = 2 the t-interval's ends move by a few percent; the verdicts and n are what a rerun must give.
    `exclude` names claims measured in wall-clock time, whose verdicts no two runs share."""
    for c in claims_of(report):
        if c["id"] in exclude:
            print(f"{c['id']}: measured in wall-clock time, not compared")
            continue
        for label, d in [(c["id"], c)] + [(f"  part {i + 1}", p) for i, p in enumerate(c.get("parts") or [])]:
            print(f"{label}: {d['verdict']} (n = {d.get('n')})")


# A number rounded to zero from below, alone or inside a cell's text ('+0.69 (-0.00)', '[-0.0, 1.2]'): a reader
# reads it as a sign that is not there.
_NEGATIVE_ZERO = re.compile(r"(?<![\w.])[-\u2212](0(?:\.0+)?)(?![\d.])")


def no_negative_zero(text: str) -> str:
    """`text` with every number that rounds to a signed zero written as zero."""
    return _NEGATIVE_ZERO.sub(r"\1", text)


def _cell(x) -> str:
    if x is None:
        return "–"
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return f"{int(x):,}" if abs(int(x)) >= 10000 else str(int(x))
    if isinstance(x, (float, np.floating)):
        return _number(float(x))
    try:
        import pandas as pd
        if pd.isna(x):
            return "–"
    except (TypeError, ValueError):
        pass
    return str(x)


class Table(HTML):
    """A table for the book: HTML for the page, and its caption and plain text for a text-only output."""

    def __new__(cls, markup: str, text: str):
        obj = super().__new__(cls, markup)
        obj.text = text
        return obj

    def __repr__(self) -> str:
        return self.text


_numbering = {"chapter": None, "count": 0}


def number_tables(paper: str | int | None) -> None:
    """Number the tables shown from now on "Table <chapter>.<k>", the chapter being the paper's place in the
    book (its `order`, as Sphinx numbers its figures), or a number given directly; None stops numbering."""
    if isinstance(paper, str):
        from lastlayer.book.registry import get_paper
        paper = get_paper(paper).order
    _numbering.update(chapter=paper, count=0)


def _flat(c) -> str:
    return " ".join(str(x) for x in c if str(x)) if isinstance(c, tuple) else str(c)


def table(df, *, caption: str, index: bool | None = None, digits: dict | None = None) -> Table:
    """A DataFrame as a readable HTML table that fits the column, under a numbered caption: numbers rounded to
    3 significant digits (or `digits={column: decimals}`), no `<NA>`/`nan`, long cells wrapped. The index is
    kept as the first column(s) when it is named or not the default 0, 1, 2, ... (`index` forces either); an
    unnamed index gets no header of its own."""
    import pandas as pd
    if not (isinstance(caption, str) and caption.strip()):
        raise ValueError("a table needs a caption that says what it shows")
    if index is None:
        index = not isinstance(df.index, pd.RangeIndex) or any(n is not None for n in df.index.names)
    df = df.reset_index() if index else df
    if index:
        df = df.rename(columns={c: "" for c in df.columns if c in ("index", "level_0")})
    digits = digits or {}
    cols = [_flat(c) for c in df.columns]
    head = "".join(f"<th>{_e(c)}</th>" for c in cols)
    body, lines = [], []
    for row in df.itertuples(index=False):
        cells, texts = [], []
        for col, x in zip(cols, row):
            if col in digits and isinstance(x, (int, float, np.number)) and not pd.isna(x):
                text = fixed(x, digits[col])
            else:
                text = no_negative_zero(_cell(x))
            texts.append(text)
            num = isinstance(x, (int, float, np.number)) and not isinstance(x, (bool, np.bool_))
            cells.append(f'<td class="ll-num">{_e(text)}</td>' if num else f"<td>{_e(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
        lines.append(" | ".join(texts))
    if _numbering["chapter"] is not None:
        _numbering["count"] += 1
        label = f"Table {_numbering['chapter']}.{_numbering['count']}. "
    else:
        label = ""
    cap = f'<caption><span class="ll-caption-number">{_e(label)}</span>{_e(caption)}</caption>'
    markup = (f'<div class="ll-table-wrap"><table class="ll-table ll-data">{cap}<thead><tr>{head}</tr></thead>'
              f'<tbody>{"".join(body)}</tbody></table></div>')
    return Table(markup, "\n".join([f"{label}{caption}", " | ".join(cols), *lines]))
