"""The results contract (`book/results/<id>.json`): claims with verdicts computed from measurements.

A notebook builds a `Report`; its paper's package decides each claim from the runs with the claim's declared
rule (`lastlayer.claims.Claim.decide`, the shared functions of `lastlayer.stats`) and adds it with
`report.add(claim, decision)`; the per-run measurements the rules consumed go in with `report.add_runs(...)`.
Nothing is typed in by hand. The notebook ends with `report.save()`; the runner adds the profile, the commit
and the wall time.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch

from lastlayer.environment import RESULTS_ENV
from lastlayer.stats import VERDICTS

REQUIRED_KEYS = ("paper", "profile", "parameters", "device", "torch", "commit", "seconds", "claims", "runs",
                 "metrics")
CLAIM_KEYS = ("id", "statement", "paper", "ours", "estimate", "interval", "n", "rule", "rule_parameters",
              "declaration_hash", "setting", "verdict", "criterion")


# What a run's outputs depend on. The book's own files (executed notebooks, results, generated pages) are not
# among them: a run that follows another finds those changed and uncommitted, and its code is still clean.
SOURCES = ("lastlayer", "notebooks", "pyproject.toml", "requirements.txt")


def git_commit(cwd: str | os.PathLike | None = None) -> str:
    """HEAD's short hash, with '+dirty' when the sources (`SOURCES`) differ from it; 'unknown' outside git."""
    try:
        run = lambda *a: subprocess.run(["git", *a], cwd=cwd, capture_output=True, text=True, check=True).stdout
        head = run("rev-parse", "--short=12", "HEAD").strip()
        dirty = run("status", "--porcelain", "--untracked-files=no", "--", *SOURCES).strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _jsonable(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, torch.Tensor):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def _clean(o):
    """Non-finite floats become None: JSON has no NaN."""
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    return o


def write_json_atomic(path: str | os.PathLike, data: dict) -> Path:
    """Write JSON to a temporary file beside `path`, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_clean(json.loads(json.dumps(data, default=_jsonable))), indent=1, allow_nan=False)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp makes 0600 files; results are for every reader
        with os.fdopen(fd, "w") as f:
            f.write(text + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


class Report:
    """The claims and metrics of one run of a paper's notebook."""

    def __init__(self, paper: str, parameters: dict, device: str = "cpu"):
        self.paper = paper
        self.parameters = dict(parameters)
        self.device = device
        self.claims: list[dict] = []
        self.runs: list[dict] = []
        self.metrics: dict = {}

    def add(self, claim, decision, ours: str | None = None) -> dict:
        """Add a declared claim (`lastlayer.claims.Claim`) with the decision its rule computed."""
        if any(c["id"] == claim.id for c in self.claims):
            raise ValueError(f"claim {claim.id!r} added twice")
        entry = claim.entry(decision, ours)
        self.claims.append(entry)
        return entry

    def add_decisions(self, decided) -> None:
        """Every (claim, decision, ours) of a paper's `decide`, in its order."""
        for claim, decision, ours in decided:
            self.add(claim, decision, ours)

    def add_runs(self, rows) -> None:
        """The raw per-run measurements the claims' rules consumed (a paper's row dataclasses, or dicts of
        scalars), so that every verdict can be recomputed from the results file without rerunning."""
        self.runs.extend(dataclasses.asdict(r) if dataclasses.is_dataclass(r) else dict(r) for r in rows)

    def to_dict(self) -> dict:
        """What the kernel knows. The runner adds the provenance (profile, parameters as run, commit, wall
        time, input hash): one writer for each field."""
        return {"paper": self.paper, "device": self.device, "torch": torch.__version__,
                "claims": list(self.claims), "runs": self.runs, "metrics": self.metrics}

    def save(self, directory: str | os.PathLike | None = None) -> Path:
        """Write `<directory>/<paper>.json` atomically; the directory defaults to $LASTLAYER_RESULTS_DIR
        or ./results."""
        directory = Path(directory or os.environ.get(RESULTS_ENV, "results"))
        return write_json_atomic(directory / f"{self.paper}.json", self.to_dict())


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def validate(results: dict) -> list[str]:
    """Problems with a results dict against the contract (empty when it conforms)."""
    problems = [f"missing key {k!r}" for k in REQUIRED_KEYS if k not in results]
    if not isinstance(results.get("runs", []), list) or not all(isinstance(r, dict) for r in results.get("runs", [])):
        problems.append("'runs' must be a list of per-run dicts")
    for c in results.get("claims", []):
        name = f"claim {c.get('id')!r}"
        problems += [f"{name}: missing {key!r}" for key in CLAIM_KEYS if key not in c]
        for key in ("id", "statement", "paper", "ours", "verdict", "criterion", "rule", "setting", "declaration_hash"):
            if key in c and not c.get(key):
                problems.append(f"{name}: empty {key!r}")
        if c.get("verdict") not in VERDICTS:
            problems.append(f"{name}: verdict {c.get('verdict')!r} not in {VERDICTS}")
        if "n" in c and not (isinstance(c["n"], int) and not isinstance(c["n"], bool) and c["n"] >= 0):
            problems.append(f"{name}: n must be a count, got {c['n']!r}")
        if c.get("estimate") is not None and not _number(c["estimate"]):
            problems.append(f"{name}: estimate must be a number or null, got {c['estimate']!r}")
        iv = c.get("interval")
        if iv is not None and not (isinstance(iv, list) and len(iv) == 2 and all(v is None or _number(v) for v in iv)):
            problems.append(f"{name}: interval must be [low, high] or null, got {iv!r}")
        if "rule_parameters" in c and not isinstance(c["rule_parameters"], dict):
            problems.append(f"{name}: rule_parameters must be a mapping")
    return problems
