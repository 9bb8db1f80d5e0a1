"""A notebook's parameters: read from its `parameters` cell, parsed from the command line, checked strictly.

The parameters cell holds plain lines `name = literal  # help text [constraint]`. The default fixes the type
(ints are accepted where floats are expected, never the reverse; a list's elements are checked against the
default's elements); `None` is accepted only where the default is None or the help text mentions None/null.
An optional constraint in square brackets at the end of the comment is enforced before a kernel starts:

    epochs = 25       # training epochs per round [>= 1]
    lr = 0.1          # learning rate [> 0, <= 10]
    schedule = "cos"  # learning-rate schedule [one of cos|plateau]
    device = "auto"   # where to train [matches auto|cpu|mps|cuda(:\\d+)?]   (the whole value, a Python regex)
    sizes = [8, 16]   # channel widths [>= 1, length >= 1]  (bounds, choices and patterns apply to every
                                                           element of a list; `length` to the list itself)
    seed = 0          # first seed [>= 0, < 2**63]          (a bound may be written as a power, 2**63)

Every list parameter declares its minimum length. A pattern may not hold commas or brackets (they delimit the
declaration). Whatever the declaration, a float must be finite (1e999 reads as infinity and is refused).
"""
from __future__ import annotations

import ast
import json
import math
import operator
import re
from dataclasses import dataclass, field


class ParameterError(ValueError):
    """A parameter value or declaration the runner refuses."""


# ------------------------------------------------------------------ strict values from the command line
_INT = re.compile(r"[-+]?\d+")
_FLOAT = re.compile(r"[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?|[-+]?(\d+\.\d*|\.\d+)")
_WORDS = {"true": True, "false": False, "null": None}


def parse_value(text: str):
    """A command-line value, strictly: ints, floats (0.1, 1e-3), true/false, null, [lists], "quoted" or bare
    text. Nothing else turns into a boolean or None: 'yes', 'off' and '' stay text."""
    value, rest = _parse(text.strip(), text)
    if rest.strip():
        raise ParameterError(f"cannot read {text!r}: unexpected {rest.strip()!r}")
    return value


def _parse(s: str, whole: str):
    if s.startswith("["):
        items, s = [], s[1:].lstrip()
        if s.startswith("]"):
            return items, s[1:]
        while True:
            item, s = _parse(s.lstrip(), whole)
            items.append(item)
            s = s.lstrip()
            if s.startswith(","):
                s = s[1:]
            elif s.startswith("]"):
                return items, s[1:]
            else:
                raise ParameterError(f"cannot read {whole!r}: a list needs ',' between items and a closing ']'")
    if s and s[0] in "\"'":
        end = s.find(s[0], 1)
        if end < 0:
            raise ParameterError(f"cannot read {whole!r}: unclosed quote")
        return s[1:end], s[end + 1:]
    m = re.match(r"[^,\[\]]*", s)
    token, rest = m.group(0).strip(), s[m.end():]
    if token in _WORDS:
        return _WORDS[token], rest
    if _INT.fullmatch(token):
        return int(token), rest
    if _FLOAT.fullmatch(token):
        return float(token), rest
    return token, rest


def format_value(value) -> str:
    """The command-line spelling of a value, which `parse_value` reads back as the same value."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    text = str(value)
    try:
        plain = parse_value(text) == text and text == text.strip() and text != ""
    except ParameterError:
        plain = False
    return text if plain and '"' not in text and "'" not in text else json.dumps(text)


# ------------------------------------------------------------------ the parameters cell
_OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}
_BOUND = re.compile(r"(>=|<=|>|<)\s*(\S+)")
_LENGTH = re.compile(r"length\s*(>=|<=|>|<)\s*(\d+)")
_POWER = re.compile(r"(\d+)\*\*(\d+)")


def _bound_value(text: str):
    """A bound's number: a literal (1, 0.5, 1e-3) or a power of integers (2**63); None if neither."""
    m = _POWER.fullmatch(text)
    if m:
        return int(m.group(1)) ** int(m.group(2))
    try:
        value = parse_value(text)
    except ParameterError:
        return None
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _bound_text(value) -> str:
    """How a bound is shown: powers of two beyond 32 bits as 2**k (seeds), anything else as written."""
    if isinstance(value, int) and value > 2**32 and value & (value - 1) == 0:
        return f"2**{value.bit_length() - 1}"
    return format_value(value)


@dataclass
class Parameter:
    name: str
    default: object
    help: str = ""
    bounds: list[tuple[str, float]] = field(default_factory=list)
    choices: list | None = None
    nullable: bool = False
    length: list[tuple[str, int]] = field(default_factory=list)
    pattern: str | None = None

    @property
    def constraint(self) -> str:
        parts = [f"{op} {_bound_text(v)}" for op, v in self.bounds]
        if self.choices is not None:
            parts.append("one of " + "|".join(format_value(c) for c in self.choices))
        if self.pattern is not None:
            parts.append(f"matches {self.pattern}")
        parts += [f"length {op} {n}" for op, n in self.length]
        if self.nullable and self.default is not None:
            parts.append("null")
        return ", ".join(parts)

    @property
    def type_name(self) -> str:
        return _type_name(self.default)


def _type_name(value) -> str:
    if value is None:
        return "any"
    if isinstance(value, (list, tuple)):
        return f"list[{_type_name(value[0])}]" if value else "list"
    return type(value).__name__


@dataclass
class _Declared:
    help: str
    bounds: list = field(default_factory=list)
    choices: list | None = None
    nullable: bool = False
    length: list = field(default_factory=list)
    pattern: str | None = None


def _constraint(name: str, comment: str) -> _Declared:
    """Split '# help [>= 1, null]' into the help text and what the brackets declare."""
    m = re.search(r"\[([^\[\]]*)\]\s*$", comment)
    items = [i.strip() for i in m.group(1).split(",")] if m else []
    if not items or not re.match(r"(>=|<=|>|<|null\b|one of\b|length\b|matches\b)", items[0]):
        return _Declared(comment)  # brackets that are plain text, e.g. '[1/s]'
    out = _Declared(comment[:m.start()].rstrip())
    for item in items:
        b, n = _BOUND.fullmatch(item), _LENGTH.fullmatch(item)
        if b and _bound_value(b.group(2)) is not None:
            out.bounds.append((b.group(1), _bound_value(b.group(2))))
        elif n:
            out.length.append((n.group(1), int(n.group(2))))
        elif item == "null":
            out.nullable = True
        elif item.startswith("one of "):
            out.choices = [parse_value(c) for c in item[7:].split("|")]
        elif item.startswith("matches "):
            try:
                re.compile(item[8:].strip())
            except re.error as e:
                raise ParameterError(f"parameter {name!r}: the pattern {item[8:].strip()!r} is not a regular "
                                     f"expression ({e})") from None
            out.pattern = item[8:].strip()
        else:
            raise ParameterError(f"parameter {name!r}: cannot read the constraint {item!r} in [{m.group(1)}]; "
                                 f"write e.g. [>= 1], [> 0, <= 1], [null], [one of adam|sgd], "
                                 f"[matches cpu|cuda(:\\d+)?], [length >= 1]")
    return out


def read_cell(source: str, where: str = "the parameters cell") -> dict[str, Parameter]:
    """{name: Parameter} from the source of a parameters cell."""
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        raise ParameterError(f"{where}: syntax error on line {e.lineno}: {e.msg}") from None
    lines = source.splitlines()
    params = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            raise ParameterError(f"{where}: the parameters cell must hold plain `name = literal` assignments "
                                 f"(line {node.lineno})")
        name = node.targets[0].id
        try:
            default = ast.literal_eval(node.value)
        except ValueError:
            raise ParameterError(f"{where}: parameter {name!r} is not a literal") from None
        tail = lines[node.end_lineno - 1][node.end_col_offset:].strip()
        comment = tail[1:].strip() if tail.startswith("#") else ""
        d = _constraint(name, comment)
        nullable = d.nullable or default is None or bool(re.search(r"\b(None|null)\b", d.help))
        p = Parameter(name, default, d.help, d.bounds, d.choices, nullable, d.length, d.pattern)
        if p.length and not isinstance(default, (list, tuple)):
            raise ParameterError(f"{where}: parameter {name!r} declares a length but its default is not a list")
        problem = _problem(p, default)
        if problem:
            raise ParameterError(f"{where}: the default of {name!r} breaks its own declaration: {problem}")
        params[name] = p
    return params


# ------------------------------------------------------------------ checking values
def _type_problem(value, default) -> str | None:
    if default is None:
        return None
    if isinstance(default, (list, tuple)):
        if not isinstance(value, (list, tuple)):
            return f"expects {_type_name(default)}, got {_type_name(value)} {value!r}"
        for i, v in enumerate(value):
            problem = _type_problem(v, default[0]) if default else None
            if problem:
                return f"element {i}: {problem}"
        return None
    if isinstance(default, bool) or isinstance(value, bool):
        ok = isinstance(value, bool) and isinstance(default, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float))
    else:
        ok = isinstance(value, type(default))
    return None if ok else f"expects {_type_name(default)}, got {_type_name(value)} {value!r}"


def _range_problem(value, p: Parameter, top: bool = True) -> str | None:
    if isinstance(value, (list, tuple)):
        if top:
            for op, n in p.length:
                if not _OPS[op](len(value), n):
                    return f"{format_value(value)} has {len(value)} element(s): its length must be {op} {n}"
        return next((f"element {i}: {r}" for i, v in enumerate(value) if (r := _range_problem(v, p, False))), None)
    if value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value!r} is not a finite number"
    if p.choices is not None and value not in p.choices:
        return f"{value!r} is not one of {', '.join(map(repr, p.choices))}"
    if p.pattern is not None and isinstance(value, str) and not re.fullmatch(p.pattern, value):
        return f"{value!r} does not match {p.pattern}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        for op, bound in p.bounds:
            if not _OPS[op](value, bound):
                return f"{value!r} is out of range: must be {op} {_bound_text(bound)}"
    return None


def _problem(p: Parameter, value) -> str | None:
    if value is None:
        return None if p.nullable else f"expects {p.type_name}, got null (None)"
    return _type_problem(value, p.default) or _range_problem(value, p)


def _coerce(value, default):
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(default, (list, tuple)) and default and isinstance(value, (list, tuple)):
        return [_coerce(v, default[0]) for v in value]
    return value


def check(values: dict, params: dict[str, Parameter], where: str) -> dict:
    """Reject unknown names, wrong types, null where none is allowed, and values out of range; ints become
    floats where floats are expected."""
    unknown = sorted(set(values) - set(params))
    if unknown:
        raise ParameterError(f"{where}: unknown parameter(s) {', '.join(unknown)}; the notebook's parameters are "
                             f"{', '.join(sorted(params))}")
    out = {}
    for name, value in values.items():
        p = params[name]
        problem = _problem(p, value)
        if problem:
            hint = " (YAML reads 1e-3 as text: write 1.0e-3)" if isinstance(value, str) and _FLOAT.fullmatch(value) else ""
            raise ParameterError(f"{where}: parameter {name!r} {problem} (default {p.default!r}){hint}")
        out[name] = _coerce(value, p.default)
    return out
