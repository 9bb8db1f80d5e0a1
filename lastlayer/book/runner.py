"""Execute a paper's notebook with a named profile: notebooks/<id>.ipynb + profile -> book/executed, book/results.

Everything is checked before a kernel starts: the paper and profile exist, every parameter is one the
notebook's `parameters` cell defines, with a value of the default's type. The notebook runs in a temporary
folder; only when it has finished and its results satisfy the contract are the executed notebook (stripped
of volatile metadata, with a provenance note) and the results file moved into the book, atomically.
A paper whose notebook, profile, parameters and library code did not change since its last run is skipped.
"""
from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from lastlayer import PAPERS, PROFILES
from lastlayer.data import DATA_ENV
from lastlayer.book.report import PROFILE_ENV, RESULTS_ENV, git_commit, validate, write_json_atomic

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # lastlayer/


class RunnerError(ValueError):
    """Bad input to the runner: unknown paper, profile or parameter, wrong type, missing notebook."""


def default_root() -> Path:
    """The project folder: the one holding this package (editable install), else the working directory."""
    here = PACKAGE_DIR.parent
    return here if (here / "notebooks").is_dir() else Path.cwd()


@dataclass
class Paths:
    root: Path

    @property
    def notebooks(self) -> Path:
        return self.root / "notebooks"

    def notebook(self, paper: str) -> Path:
        return self.notebooks / f"{paper}.ipynb"

    def profiles(self, paper: str) -> Path:
        return self.notebooks / f"{paper}.yml"

    def executed(self, paper: str) -> Path:
        return self.root / "book" / "executed" / f"{paper}.ipynb"

    def results(self, paper: str) -> Path:
        return self.root / "book" / "results" / f"{paper}.json"


def available_papers(root: Path | None = None) -> list[str]:
    """The papers whose notebook exists, in the book's order."""
    paths = Paths(root or default_root())
    return [p for p in PAPERS if paths.notebook(p).exists()]


def check_paper(paper: str, paths: Paths) -> None:
    if paper not in PAPERS:
        raise RunnerError(f"unknown paper {paper!r}; known papers: {', '.join(PAPERS)}")
    if not paths.notebook(paper).exists():
        raise RunnerError(f"paper {paper!r} has no notebook yet ({paths.notebook(paper).name} is missing)")


def notebook_defaults(notebook: Path) -> dict:
    """The assignments of the cell tagged `parameters`: {name: default value}."""
    nb = json.loads(notebook.read_text())
    cells = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise RunnerError(f"{notebook.name}: expected exactly one cell tagged 'parameters', found {len(cells)}")
    source = "".join(cells[0]["source"])
    defaults = {}
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            raise RunnerError(f"{notebook.name}: the parameters cell must hold plain `name = literal` assignments "
                              f"(line {node.lineno})")
        try:
            defaults[node.targets[0].id] = ast.literal_eval(node.value)
        except ValueError as e:
            raise RunnerError(f"{notebook.name}: parameter {node.targets[0].id!r} is not a literal") from e
    return defaults


def load_profile(paper: str, profile: str, paths: Paths) -> dict:
    if profile not in PROFILES:
        raise RunnerError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    file = paths.profiles(paper)
    if not file.exists():
        raise RunnerError(f"paper {paper!r} has no profiles file ({file.name})")
    profiles = yaml.safe_load(file.read_text()) or {}
    missing = [p for p in PROFILES if p not in profiles]
    if missing:
        raise RunnerError(f"{file.name}: profile(s) {', '.join(missing)} not defined")
    return dict(profiles[profile] or {})


def _type_name(value) -> str:
    return type(value).__name__


def _type_ok(value, default) -> bool:
    if default is None or value is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


def check_parameters(paper: str, params: dict, defaults: dict) -> dict:
    """Reject unknown names and values of the wrong type; ints are accepted where floats are expected."""
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise RunnerError(f"{paper}: unknown parameter(s) {', '.join(unknown)}; the notebook's parameters are "
                          f"{', '.join(sorted(defaults))}")
    for name, value in params.items():
        if not _type_ok(value, defaults[name]):
            raise RunnerError(f"{paper}: parameter {name!r} expects {_type_name(defaults[name])} "
                              f"(default {defaults[name]!r}), got {_type_name(value)} {value!r}")
    return {k: (float(v) if isinstance(defaults[k], float) and isinstance(v, int) else v) for k, v in params.items()}


def parse_value(text: str):
    """A CLI value: YAML scalars and lists ('0.1', 'true', '[1, 2]', 'null'); anything else is a string."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def code_files(paper: str) -> list[Path]:
    """The code that decides a paper's numbers: the core of the library and that paper's package. The book
    tooling (`lastlayer/book/`) runs and renders notebooks but computes nothing they report, and the other
    papers' packages cannot reach this one (the core imports no paper), so editing them leaves it current."""
    files = []
    for f in sorted(PACKAGE_DIR.rglob("*.py")):
        part = f.relative_to(PACKAGE_DIR).parts
        if part[0] == "book" or f.name == "__main__.py":
            continue
        if part[0] == "papers" and len(part) > 2 and part[1] != paper:
            continue
        files.append(f)
    return files


def input_hash(paper: str, profile: str, params: dict, paths: Paths) -> str:
    """What decides a run's outcome: the notebook, the profile, the parameters, the core's and the paper's code."""
    h = hashlib.sha256()
    h.update(paths.notebook(paper).read_bytes())
    h.update(json.dumps({"profile": profile, "parameters": params}, sort_keys=True, default=str).encode())
    for f in code_files(paper):
        h.update(f.relative_to(PACKAGE_DIR).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


_VOLATILE_NB = ("start_time", "end_time", "duration", "input_path", "output_path", "exception",
                "environment_variables", "version")


def strip_volatile(nb: dict) -> dict:
    """Drop timestamps, durations and local paths, so that re-running changes only what changed."""
    pm = nb.get("metadata", {}).get("papermill", {})
    for key in _VOLATILE_NB:
        pm.pop(key, None)
    nb.get("metadata", {}).pop("widgets", None)
    for cell in nb["cells"]:
        cell.get("metadata", {}).pop("execution", None)
        cell.get("metadata", {}).pop("papermill", None)
    return nb


def add_provenance(nb: dict, results: dict) -> dict:
    """A note under the title: which command, profile, device, torch, commit and wall time made this page."""
    minutes = results["seconds"] / 60
    overrides = {k: v for k, v in results.get("overrides", {}).items()}
    cmd = f"python -m lastlayer run {results['paper']} --profile {results['profile']}"
    cmd += "".join(f" -p {k} {json.dumps(v)}" for k, v in overrides.items())
    text = (f"```{{note}}\nThis page was executed by `{cmd}` on {results['device']} with torch "
            f"{results['torch']}, at commit `{results['commit']}`, in {minutes:.1f} minutes. "
            f"Its claims and verdicts are in `book/results/{results['paper']}.json`.\n```")
    cell = {"cell_type": "markdown", "id": "provenance", "metadata": {}, "source": text}
    cells = [c for c in nb["cells"] if c.get("id") != "provenance"]
    first_md = next((i for i, c in enumerate(cells) if c["cell_type"] == "markdown"), -1)
    cells.insert(first_md + 1, cell)
    nb["cells"] = cells
    return nb


def _atomic_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def prepare(paper: str, profile: str = "cpu", overrides: dict | None = None,
            root: Path | None = None) -> tuple[Paths, dict, dict]:
    """Validate everything; return (paths, merged parameters, overrides). Raises RunnerError."""
    paths = Paths(Path(root) if root else default_root())
    check_paper(paper, paths)
    defaults = notebook_defaults(paths.notebook(paper))
    profile_params = check_parameters(paper, load_profile(paper, profile, paths), defaults)
    overrides = check_parameters(paper, dict(overrides or {}), defaults)
    return paths, {**profile_params, **overrides}, overrides


def run(paper: str, profile: str = "cpu", overrides: dict | None = None, *, root: Path | None = None,
        force: bool = False, progress: bool = True) -> dict:
    """Execute one paper's notebook; return its results dict (the existing one if skipped)."""
    import papermill as pm

    paths, params, overrides = prepare(paper, profile, overrides, root)
    digest = input_hash(paper, profile, params, paths)
    if not force and paths.results(paper).exists() and paths.executed(paper).exists():
        old = json.loads(paths.results(paper).read_text())
        if old.get("input_hash") == digest:
            print(f"{paper}: unchanged since its last run ({profile}), skipped; --force reruns it")
            return old

    print(f"{paper}: executing {paths.notebook(paper).relative_to(paths.root)} with profile {profile!r}"
          + (f", overrides {overrides}" if overrides else ""), flush=True)
    commit = git_commit(paths.root)
    with tempfile.TemporaryDirectory(prefix=f"lastlayer-{paper}-") as tmp:
        tmp = Path(tmp)
        out = tmp / f"{paper}.ipynb"
        # the kernel runs in notebooks/: a relative data root is meant from the project folder
        data = Path(os.environ.get(DATA_ENV, "data"))
        env = {RESULTS_ENV: str(tmp), PROFILE_ENV: profile, "TQDM_DISABLE": "1",
               DATA_ENV: str(data if data.is_absolute() else (Path.cwd() / data).resolve())}
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        start = time.perf_counter()
        try:
            pm.execute_notebook(str(paths.notebook(paper)), str(out), parameters=params, kernel_name="python3",
                                progress_bar=progress, cwd=str(paths.notebooks), log_output=False)
        except pm.PapermillExecutionError as e:
            failed = paths.root / "build" / "failed" / f"{paper}.ipynb"
            if out.exists():
                _atomic_copy(out, failed)
            raise RuntimeError(f"{paper} failed in cell {e.exec_count}: {e.ename}: {e.evalue}\n"
                               f"(the partly executed notebook is in {failed}; the book was not changed)") from None
        finally:
            for k, v in saved.items():
                os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
        seconds = time.perf_counter() - start
        res_file = tmp / f"{paper}.json"
        if not res_file.exists():
            raise RuntimeError(f"{paper}: the notebook ran but wrote no results (does it end with report.save()?)")
        results = json.loads(res_file.read_text())
        results.update(profile=profile, parameters=params, overrides=overrides, commit=commit,
                       seconds=round(seconds, 1), input_hash=digest)
        problems = validate(results)
        if problems:
            raise RuntimeError(f"{paper}: results break the contract: {'; '.join(problems)}")
        nb = add_provenance(strip_volatile(json.loads(out.read_text())), results)
        # outputs that show where the results went name their place in the book, not the temporary folder
        text = json.dumps(nb, indent=1, ensure_ascii=False).replace(str(tmp), "book/results")
        out.write_text(text + "\n")
        _atomic_copy(out, paths.executed(paper))
        write_json_atomic(paths.results(paper), results)
    print(f"{paper}: done in {seconds / 60:.1f} min -> {paths.executed(paper).relative_to(paths.root)}, "
          f"{paths.results(paper).relative_to(paths.root)}", flush=True)
    return results


def prepare_notebooks(profile: str, out_dir: Path, root: Path | None = None) -> list[Path]:
    """Inject a profile's parameters into every notebook without executing it (for nbval)."""
    import papermill as pm

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for paper in available_papers(root):
        paths, params, _ = prepare(paper, profile, None, root)
        out = out_dir / f"{paper}.ipynb"
        pm.execute_notebook(str(paths.notebook(paper)), str(out), parameters=params, prepare_only=True,
                            kernel_name="python3", progress_bar=False)
        written.append(out)
    return written
