"""Execute a paper's notebook with a named profile: notebooks/<id>.ipynb + profile -> book/executed, book/results.

Everything is checked before a kernel starts: the paper and profile exist, every parameter is one the
notebook's `parameters` cell defines, of the default's type and inside its declared range, the data folder
exists, and the book's folders are writable. The notebook runs in a temporary folder; only when it has
finished cleanly (nothing on stderr, no error shown) and its results satisfy the contract are the executed
notebook (stripped of volatile metadata and of this machine's paths, with a provenance note) and the results
file installed into the book, as a pair. A paper whose inputs did not change since its last run is skipped.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shlex
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from lastlayer.book import install
from lastlayer.book.registry import PROFILES, PaperError, find_papers, get_paper
from lastlayer.book.params import ParameterError, Parameter, format_value, parse_value, read_cell
from lastlayer.book.params import check as check_values
from lastlayer.book.report import git_commit, validate, write_json_atomic
from lastlayer.environment import (CLUSTER_CONFIG_ENV, CLUSTER_ENV, DATA_ENV, DEADLINE_ENV, PROGRESS_ENV, RESULTS_ENV,
                                   WORKERS_ENV)
from lastlayer.training.cache import cache_dir
from lastlayer.training.fanout import ClusterError, check_cluster
from lastlayer.provenance import PACKAGE_DIR, code_files

__all__ = ["RunnerError", "PartialRun", "Stopped", "stop_on_signals", "run", "prepare", "parse_value", "format_value", "input_hash"]


class RunnerError(ValueError):
    """Bad input to the runner, found before anything ran: unknown paper, profile or parameter, wrong type,
    value out of range, missing notebook or data, unwritable book, another run of the same paper."""


class PartialRun(RuntimeError):
    """The notebook stopped at its deadline (`--max-minutes`); its finished runs are cached."""


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

    # The paper-scale run lives beside the chapter's (cpu) run, never over it: book/{executed,results}/paper/.
    def executed(self, paper: str, profile: str = "cpu") -> Path:
        return self.root / "book" / "executed" / ("paper" if profile == "paper" else "") / f"{paper}.ipynb"

    def results(self, paper: str, profile: str = "cpu") -> Path:
        return self.root / "book" / "results" / ("paper" if profile == "paper" else "") / f"{paper}.json"


def available_papers(root: Path | None = None) -> list[str]:
    """The papers whose notebook exists, in the book's order."""
    paths = Paths(root or default_root())
    try:
        return [p for p in find_papers(paths.root) if paths.notebook(p).exists()]
    except PaperError as e:
        raise RunnerError(str(e)) from None


def check_paper(paper: str, paths: Paths) -> None:
    try:
        get_paper(paper, paths.root)
    except PaperError as e:
        raise RunnerError(str(e)) from None
    if not paths.notebook(paper).exists():
        raise RunnerError(f"paper {paper!r} has no notebook yet ({paths.notebook(paper).name} is missing)")


def notebook_parameters(notebook: Path) -> dict[str, Parameter]:
    """The parameters the cell tagged `parameters` declares: {name: Parameter(default, help, constraint)}."""
    try:
        nb = json.loads(notebook.read_text())
    except json.JSONDecodeError as e:
        raise RunnerError(f"{notebook.name} is not a valid notebook: {e}") from None
    cells = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise RunnerError(f"{notebook.name}: expected exactly one cell tagged 'parameters', found {len(cells)}")
    try:
        return read_cell("".join(cells[0]["source"]), notebook.name)
    except ParameterError as e:
        raise RunnerError(str(e)) from None


def load_profiles(paper: str, paths: Paths) -> dict[str, dict]:
    """Every profile of a paper: {profile: overrides}, from its paper.yml."""
    try:
        return get_paper(paper, paths.root).profiles
    except PaperError as e:
        raise RunnerError(str(e)) from None


def check_parameters(where: str, values: dict, params: dict[str, Parameter]) -> dict:
    try:
        return check_values(values, params, where)
    except ParameterError as e:
        raise RunnerError(str(e)) from None


def prepare(paper: str, profile: str = "cpu", overrides: dict | None = None,
            root: Path | None = None) -> tuple[Paths, dict, dict]:
    """Validate everything; return (paths, every parameter as it will run, the overrides). Raises RunnerError."""
    paths = Paths(Path(root) if root else default_root())
    check_paper(paper, paths)
    if profile not in PROFILES:
        raise RunnerError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    declared = notebook_parameters(paths.notebook(paper))
    profiles = {name: check_parameters(f"lastlayer/papers/{paper}/paper.yml, profile {name}", values, declared)
                for name, values in load_profiles(paper, paths).items()}
    overrides = check_parameters(paper, dict(overrides or {}), declared)
    defaults = {name: p.default for name, p in declared.items()}
    return paths, {**defaults, **profiles[profile], **overrides}, overrides


def _uses(paper: str, root: Path) -> tuple[str, ...]:
    """The papers `paper` builds on (its paper.yml's `uses`); none for a paper the registry does not know."""
    try:
        return get_paper(paper, root).uses
    except PaperError:
        return ()


def hashed_files(paper: str, package_dir: Path = PACKAGE_DIR, uses=()) -> list[Path]:
    """The code a chapter's input hash covers: the core and the paper's package (`provenance.code_files`), then the
    packages of the papers it uses, so that a chapter built on them goes stale when one of them changes."""
    files = code_files(paper, package_dir)
    for used in uses:
        files += [f for f in code_files(used, package_dir) if f.relative_to(package_dir).parts[:2] == ("papers", used)]
    return files


def input_hash(paper: str, profile: str, params: dict, paths: Paths, package_dir: Path = PACKAGE_DIR) -> str:
    """What decides a run's outcome: the notebook, the profile, the parameters, the core's and the paper's code (and
    the code of the papers it `uses`), and the paper's planned.json (its claims' declarations carry it)."""
    h = hashlib.sha256()
    h.update(paths.notebook(paper).read_bytes())
    h.update(json.dumps({"profile": profile, "parameters": params}, sort_keys=True, default=str).encode())
    for f in hashed_files(paper, package_dir, _uses(paper, paths.root)):
        h.update(f.relative_to(package_dir).as_posix().encode())
        h.update(f.read_bytes())
    planned = package_dir / "papers" / paper / "planned.json"  # the claims' stage-1 plans enter their declarations
    if planned.exists():
        h.update(planned.read_bytes())
    return h.hexdigest()[:16]


def stored_hashes(paper: str, paths: Paths, profile: str = "cpu") -> tuple[str | None, str | None]:
    """The input hash stored in the results file and the one stored in the executed notebook."""
    res, exe = paths.results(paper, profile), paths.executed(paper, profile)
    r = json.loads(res.read_text()).get("input_hash") if res.exists() else None
    e = json.loads(exe.read_text()).get("metadata", {}).get("lastlayer", {}).get("input_hash") if exe.exists() else None
    return r, e


def status(paper: str, root: Path | None = None, scale: str = "cpu") -> str:
    """'current', 'stale' (the code, notebook or profile changed since the stored run), 'not run' or
    'no notebook', for the chapter's run (scale 'cpu') or the paper-scale run beside it ('paper')."""
    paths = Paths(Path(root) if root else default_root())
    if not paths.notebook(paper).exists():
        return "no notebook"
    if not paths.results(paper, scale).exists():
        return "not run"
    old = json.loads(paths.results(paper, scale).read_text())
    try:
        _, params, _ = prepare(paper, old.get("profile", "cpu"), old.get("overrides", {}), paths.root)
    except RunnerError:
        return "stale"
    digest = input_hash(paper, old.get("profile", "cpu"), params, paths)
    return "current" if stored_hashes(paper, paths, scale) == (digest, digest) else "stale"


def command(paper: str, profile: str, overrides: dict) -> str:
    """The shell command that reruns this, ready to paste."""
    args = ["python", "-m", "lastlayer", "run", paper, "--profile", profile]
    for k, v in overrides.items():
        args += ["-p", k, format_value(v)]
    return shlex.join(args)


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


# what a claim's entry records of its declaration: a change of any of them is a change of the rule or its claim
DECLARED = ("statement", "estimand", "rule", "rule_parameters", "setting")


def rule_changes(previous: dict | None, results: dict) -> list[dict]:
    """Every claim whose declaration (statement, estimand, rule, parameters, setting ...) differs from the one
    the previous run of this paper and scale judged, with the reason the claim's `revised` gives ('not stated'
    when it gives none), and every claim the previous run had and this one lacks. A rule is never changed
    silently: the chapter lists these."""
    if not previous:
        return []
    # the declared content itself, not its hash: a new way of hashing (or a new field at its default) is no change
    declared = lambda c: [c.get(k) for k in DECLARED]
    before = {c["id"]: declared(c) for c in previous.get("claims", [])}
    now = {c["id"]: c for c in results.get("claims", [])}
    changes = [{"id": cid, "change": "declaration changed", "reason": c.get("revised") or "not stated"}
               for cid, c in now.items() if cid in before and before[cid] != declared(c)]
    changes += [{"id": cid, "change": "removed", "reason": "not stated"} for cid in before if cid not in now]
    return changes


def as_paper_scale_page(nb: dict) -> dict:
    """A paper-scale run's notebook as the page beside its chapter (book/executed/paper/): its figure labels get a
    '-paper' suffix, everywhere they occur, so they do not clash with the chapter's (Sphinx labels are global), and
    its relative links climb one folder more."""
    names = sorted({c.get("metadata", {}).get("mystnb", {}).get("figure", {}).get("name")
                    for c in nb["cells"]} - {None}, key=len, reverse=True)
    text = json.dumps(nb, ensure_ascii=False)
    for name in names:
        text = re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", f"{name}-paper", text)
    nb = json.loads(text)
    for c in nb["cells"]:
        if c["cell_type"] == "markdown":
            src = "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            c["source"] = re.sub(r"\]\(\.\./(?!\.\./)", "](../../", src)
    return nb


def add_provenance(nb: dict, results: dict) -> dict:
    """A note under the title: which command, profile, device, torch, commit and wall time made this page."""
    minutes = results["seconds"] / 60
    cmd = command(results["paper"], results["profile"], results.get("overrides", {}))
    text = (f"```{{note}}\nThis page was executed by `{cmd}` on {results['device']} with torch "
            f"{results['torch']}, at commit `{results['commit']}`, in {minutes:.1f} minutes"
            + (f" ({len(results['chunks'])} chunks of `--max-minutes`, resumed through the run cache)"
               if len(results.get("chunks") or ()) > 1 else "") + ". "
            f"Its claims and verdicts are in `book/results/{'paper/' if results['profile'] == 'paper' else ''}"
            f"{results['paper']}.json`.")
    changes = results.get("rule_changes") or []
    if changes:
        text += "\n\nRules changed since the previous run: " + "; ".join(
            f"`{c['id']}` ({c['change']}: {c['reason']})" for c in changes) + "."
    text += "\n```"
    cell = {"cell_type": "markdown", "id": "provenance", "metadata": {}, "source": text}
    cells = [c for c in nb["cells"] if c.get("id") != "provenance"]
    for c in cells:  # the parameters as declared and as run: folded, one click away
        tags = c.setdefault("metadata", {}).setdefault("tags", [])
        if {"parameters", "injected-parameters"} & set(tags) and "hide-input" not in tags:
            tags.append("hide-input")
    first_md = next((i for i, c in enumerate(cells) if c["cell_type"] == "markdown"), -1)
    cells.insert(first_md + 1, cell)
    nb["cells"] = cells
    nb.setdefault("metadata", {})["lastlayer"] = {"input_hash": results["input_hash"]}
    return nb


def data_folder() -> Path:
    """The data root as the kernel will see it (absolute); it must exist: the runner never creates it."""
    raw = os.environ.get(DATA_ENV)
    data = Path(raw or "data").expanduser()
    data = data if data.is_absolute() else (Path.cwd() / data).resolve()
    if not data.is_dir():
        where = f"${DATA_ENV} is {raw!r}" if raw else f"{DATA_ENV} is not set, so the default ./data is used"
        raise RunnerError(f"the data folder {data} does not exist ({where}); set {DATA_ENV} to the folder that "
                          f"holds the datasets (torchvision layout: MNIST/raw/*.gz, ...), or create it to allow "
                          f"downloads")
    return data


@contextlib.contextmanager
def _environment(env: dict):
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


class Stopped(KeyboardInterrupt):
    """The run was stopped by a signal (SIGINT: Ctrl-C, or SIGTERM: `kill`); `signum` says which. A subclass
    of KeyboardInterrupt, so papermill and the kernel client treat it as an interrupt and shut the kernel down
    on the way out."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def stop_on_signals():
    """SIGTERM and SIGINT raise `Stopped` here, so the kernel, the temporary folder and the lock are cleaned up on
    the way out (SIGTERM's default action would end the process at once and leave them behind). Whatever else is
    raised after a signal came (the kernel client's DeadKernelError, when the interrupt lands in its wait for a
    reply and the kernel is shut down under it) is that signal's consequence, and leaves as `Stopped` too."""
    received: list[int] = []

    def handler(signum, frame):
        received.append(signum)
        # what the kernel client and asyncio log while the kernel is shut down under the interrupt ("Kernel died
        # while waiting for execute reply", "Task exception was never retrieved") is this stop, told in one line
        for name in ("papermill", "nbclient", "traitlets", "asyncio"):
            logging.getLogger(name).disabled = True
        raise Stopped(signum)
    try:
        previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    except Exception:
        if received:
            raise Stopped(received[0]) from None
        raise
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


# the kernel's own log warns on every start that its local TCP sockets are unencrypted; only errors matter here
KERNEL_ARGS = ["--IPKernelApp.log_level=ERROR"]


def _python(value) -> str:
    """A parameter value as Python source (strings in double quotes, as papermill writes them)."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_python(v) for v in value) + "]"
    return repr(value)


def inject_parameters(notebook: Path, params: dict, out: Path) -> Path:
    """Write `notebook` to `out` with a cell tagged `injected-parameters` after its `parameters` cell, assigning
    every parameter as it will run. The runner writes this cell itself, so the parameters cell is read by one
    parser only (`params.read_cell`, which checked the values); papermill just executes the result."""
    nb = json.loads(notebook.read_text())
    cells = [c for c in nb["cells"] if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    at = next(i for i, c in enumerate(cells) if "parameters" in c.get("metadata", {}).get("tags", []))
    source = "# Parameters\n" + "".join(f"{name} = {_python(value)}\n" for name, value in params.items())
    cells.insert(at + 1, {"cell_type": "code", "execution_count": None, "id": "injected-parameters",
                          "metadata": {"tags": ["injected-parameters"]}, "outputs": [], "source": source})
    nb["cells"] = cells
    out.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return out


IPC_PATH_MAX = 96  # bytes of the kernel's socket prefix; it adds '-N', and a Unix socket's path has at most 107


def _kernel_manager(log: Path):
    """The kernel manager class papermill uses, with the kernel process's own stderr sent to `log`: what a cell
    writes reaches the notebook through the kernel's messages either way, but the kernel's log (e.g. the errors
    of its message handlers while it is shut down under a signal) would otherwise land on our terminal. It marks
    in the log where the shutdown began (`SHUTDOWN_MARK`)."""
    from jupyter_client import AsyncKernelManager

    class KernelManager(AsyncKernelManager):
        def __init__(self, **kw):
            # Unix sockets in the run's own folder, not TCP ports: two kernels started at once (two runs, or a
            # run beside the tests) can pick the same free port, and one then dies or gets the other's messages.
            # A socket's path has at most 107 bytes: under a deeper temporary folder the kernel keeps TCP.
            ipc = str(log.parent / "kernel-ipc")
            super().__init__(**({"transport": "ipc", "ip": ipc} if len(ipc.encode()) <= IPC_PATH_MAX else {}), **kw)

        async def _async_launch_kernel(self, kernel_cmd, **kw):
            with open(log, "ab") as stderr:  # the child keeps its own copy of the descriptor
                return await super()._async_launch_kernel(kernel_cmd, **{**kw, "stderr": stderr})

        async def shutdown_kernel(self, now: bool = False, restart: bool = False):
            with open(log, "a") as stderr:  # appended after all the kernel wrote so far (both append)
                stderr.write(f"\n{SHUTDOWN_MARK}\n")
            return await super().shutdown_kernel(now=now, restart=restart)

    return KernelManager


def _execute(paper: str, paths: Paths, params: dict, tmp: Path, env: dict, progress: bool) -> Path:
    import papermill as pm

    out = tmp / f"{paper}.ipynb"
    log = tmp / f"{paper}.kernel.log"
    source = inject_parameters(paths.notebook(paper), params, tmp / f"{paper}.input.ipynb")
    with _environment(env):
        try:
            pm.execute_notebook(str(source), str(out), kernel_name="python3",
                                progress_bar=progress, cwd=str(paths.notebooks), log_output=False,
                                extra_arguments=KERNEL_ARGS, kernel_manager_class=_kernel_manager(log))
        except pm.PapermillExecutionError as e:
            if e.ename == "DeadlineReached":
                raise PartialRun(e.evalue) from None
            failed = install.keep_failed(paths.root, paper, out, None)
            if log.exists() and log.stat().st_size:
                install.atomic_copy(log, failed / log.name)
            raise RuntimeError(f"{paper} failed in cell {e.exec_count}: {e.ename}: {e.evalue}\n"
                               f"(the partly executed notebook is in {failed / f'{paper}.ipynb'}; "
                               f"the book was not changed)") from None
    return out


def run(paper: str, profile: str = "cpu", overrides: dict | None = None, *, root: Path | None = None,
        force: bool = False, progress: bool = True, max_minutes: float | None = None,
        workers: int = 1, cluster: str | None = None) -> dict:
    """Execute one paper's notebook; return its results dict (the existing one if skipped).

    `workers`: how many of an experiment's independent runs train at once, in local worker processes; `cluster`:
    a Dask cluster that trains them instead (`local:N`, a scheduler address, `slurm`; `lastlayer.training.fanout`).
    Either changes how fast a run goes, not what it computes, so it is recorded but not hashed."""
    paths, params, overrides = prepare(paper, profile, overrides, root)
    data = data_folder()
    if max_minutes is not None and not max_minutes > 0:
        raise RunnerError(f"--max-minutes must be positive, got {max_minutes}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise RunnerError(f"--workers must be a whole number of at least 1, got {workers!r}")
    fan_out = {WORKERS_ENV: str(workers)}
    if cluster:
        if workers > 1:
            raise RunnerError("--workers and --cluster are two ways to train the runs: choose one")
        try:
            fan_out[CLUSTER_ENV] = check_cluster(cluster, paths.root)
        except ClusterError as e:
            raise RunnerError(str(e)) from None
        if cluster == "slurm":  # the kernel runs in another folder: name the settings file absolutely
            fan_out[CLUSTER_CONFIG_ENV] = str(Path(os.environ.get(CLUSTER_CONFIG_ENV)
                                                   or paths.root / "cluster.yml").resolve())
    try:
        install.check_writable(paths.executed(paper, profile).parent, paths.results(paper, profile).parent,
                               paths.root / "build" / "locks")
    except PermissionError as e:
        raise RunnerError(f"{e}: the run's outputs could not be installed; nothing was run") from None
    try:
        with stop_on_signals(), install.paper_lock(paths.root, paper):
            return _run_locked(paper, profile, params, overrides, paths, data, force, progress, max_minutes,
                               fan_out)
    except install.BusyError as e:
        raise RunnerError(str(e)) from None


# What the runner appends to the kernel's log when it asks the kernel to shut down, every cell done. jupyter_client
# interrupts the kernel (SIGINT) before the shutdown request, so what the kernel logs after this line is the
# shutdown's racing its own message handlers ("KeyboardInterrupt caught in kernel", "Uncaught exception in ZMQStream
# callback"), no error of the run, whose outputs are all in by then.
SHUTDOWN_MARK = "--- lastlayer: the kernel was asked to shut down ---"


def _kernel_errors(log: str) -> list[str]:
    """The lines of the kernel's own stderr, before its shutdown (`SHUTDOWN_MARK`), that say something went wrong.
    asyncio's report of tasks still pending when an event loop is torn down ("Task was destroyed but it is
    pending!" and its "task: <Task ...>" line) comes from the idle callbacks of a worker pool's loop: it is no error
    of the run either, and is left out."""
    lines, skip = [], False
    for line in log.split(SHUTDOWN_MARK)[0].strip().splitlines():
        if line.startswith("Task was destroyed but it is pending!"):
            skip = True
            continue
        if skip and line.startswith("task: <Task"):
            continue
        skip = False
        if line.strip():
            lines.append(line)
    return lines


@contextlib.contextmanager
def _show_progress(paper: str, file: Path, show: bool):
    """On a terminal, the training runs done, running and left, read from the file the kernel's fan-out writes
    (`lastlayer.training.fanout.Progress`): the progress reaches the command line, never the notebook."""
    import sys
    import threading
    if not (show and sys.stderr.isatty()):
        yield
        return
    stop = threading.Event()

    def poll():
        last = None
        while not stop.wait(1.0):
            try:
                state = json.loads(file.read_text())
            except (OSError, ValueError):
                continue
            line = f"{paper}: training runs {state['done']} done, {state['running']} running, {state['left']} left"
            if line != last:
                print(f"\r{line}\033[K", end="", file=sys.stderr, flush=True)
                last = line
        if last:
            print(file=sys.stderr)
    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _chunk_file(paths: Paths, paper: str, profile: str, cache: Path | None = None) -> Path:
    """The ledger of a run's chunks lives beside the runs they trained, in the run cache (`cache`, default the one in
    use): a cache carried to another checkout or machine (a paper profile longer than one sitting) carries the
    chunks' wall time with it."""
    cache = cache or cache_dir()
    return (cache if cache is not None else paths.root / "build") / "chunks" / f"{paper}-{profile}.json"


def repository_cache(root: Path, profile: str) -> Path:
    """The run cache a long profile run on the CPU keeps in the repository, committed chunk by chunk, so that a fresh
    checkout continues it (`LASTLAYER_CACHE=book/cache/<profile>`)."""
    return Path(root) / "book" / "cache" / profile


def _chunks(paths: Paths, paper: str, profile: str, digest: str) -> list[float]:
    """The seconds of the earlier chunks of this run (same inputs) stopped at their `--max-minutes`."""
    f = _chunk_file(paths, paper, profile)
    try:
        stored = json.loads(f.read_text())
    except (OSError, ValueError):
        return []
    return [float(x) for x in stored.get("chunks", [])] if stored.get("input_hash") == digest else []


def _write_chunks(paths: Paths, paper: str, profile: str, overrides: dict, digest: str, chunks: list[float]) -> None:
    f = _chunk_file(paths, paper, profile)
    f.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(f, {"input_hash": digest, "profile": profile, "overrides": overrides, "chunks": chunks})


def stopped_runs(paper: str, root: Path | None = None) -> list[dict]:
    """The runs of `paper` stopped at their `--max-minutes` whose inputs are still today's, in the run cache in use or
    in the repository's (`repository_cache`), so that the same command continues them: [{profile, overrides, chunks
    (seconds each), cache (None: the one in use; else the repository's, relative to the root)}]."""
    paths = Paths(Path(root) if root else default_root())
    here, out = cache_dir(), []
    for profile in PROFILES:
        committed = repository_cache(paths.root, profile)
        for cache in [here] + ([committed] if here is None or committed.resolve() != here else []):
            try:
                stored = json.loads(_chunk_file(paths, paper, profile, cache).read_text())
                _, params, overrides = prepare(paper, profile, stored.get("overrides") or {}, paths.root)
            except (OSError, ValueError, RunnerError):
                continue
            if stored.get("input_hash") == input_hash(paper, profile, params, paths) and stored.get("chunks"):
                out.append({"profile": profile, "overrides": overrides, "chunks": stored["chunks"],
                            "cache": None if cache is here else committed.relative_to(paths.root).as_posix()})
                break
    return out


def _run_locked(paper, profile, params, overrides, paths, data, force, progress, max_minutes, fan_out) -> dict:
    digest = input_hash(paper, profile, params, paths)
    if not force and stored_hashes(paper, paths, profile) == (digest, digest):
        print(f"{paper}: unchanged since its last run ({profile}), skipped; --force reruns it")
        return json.loads(paths.results(paper, profile).read_text())

    print(f"{paper}: executing {paths.notebook(paper).relative_to(paths.root)} with profile {profile!r}"
          + (f", overrides {overrides}" if overrides else ""), flush=True)
    commit = git_commit(paths.root)
    start_wall = time.time()
    with tempfile.TemporaryDirectory(prefix=f"lastlayer-{paper}-") as tmp:
        tmp = Path(tmp)
        env = {RESULTS_ENV: str(tmp), "TQDM_DISABLE": "1", DATA_ENV: str(data),
               "PYDEVD_DISABLE_FILE_VALIDATION": "1", PROGRESS_ENV: str(tmp / "progress.json"), **fan_out}
        if max_minutes is not None:
            env[DEADLINE_ENV] = str(start_wall + 60 * max_minutes)
        start = time.perf_counter()
        try:
            with _show_progress(paper, tmp / "progress.json", progress):
                out = _execute(paper, paths, params, tmp, env, progress)
        except PartialRun:
            used = time.perf_counter() - start
            earlier = _chunks(paths, paper, profile, digest)
            _write_chunks(paths, paper, profile, overrides, digest, earlier + [round(used, 1)])
            raise PartialRun(f"partial run: {used / 60:.1f} minutes used (chunk {len(earlier) + 1}, "
                             f"{(sum(earlier) + used) / 60:.1f} in all); rerun the same command to continue "
                             f"(finished runs are cached); the book was not changed") from None
        # A run finished in chunks (`--max-minutes`) took the sum of its chunks: the earlier ones trained what this
        # one loaded from the run cache.
        chunks = _chunks(paths, paper, profile, digest) + [round(time.perf_counter() - start, 1)]
        seconds = sum(chunks)
        res_file = tmp / f"{paper}.json"
        if not res_file.exists():
            raise RuntimeError(f"{paper}: the notebook ran but wrote no results (does it end with report.save()?)")
        results = json.loads(res_file.read_text())
        results.update(profile=profile, parameters=params, overrides=overrides, commit=commit,
                       seconds=round(seconds, 1), chunks=chunks, workers=int(fan_out[WORKERS_ENV]),
                       cluster=fan_out.get(CLUSTER_ENV), input_hash=digest)
        before = paths.results(paper, profile)
        previous = json.loads(before.read_text()) if before.exists() else None
        results["rule_changes"] = rule_changes(previous, results)
        problems = validate(results)
        nb = add_provenance(strip_volatile(json.loads(out.read_text())), results)
        if profile == "paper":
            nb = as_paper_scale_page(nb)
        problems += install.output_problems(nb)
        kernel_log = tmp / f"{paper}.kernel.log"  # what reached the kernel's stderr outside any cell's stream
        kernel_errors = _kernel_errors(kernel_log.read_text(errors="replace")) if kernel_log.exists() else []
        if kernel_errors:
            first = kernel_errors[0]
            problems.append(f"the kernel wrote to stderr: {first} (outside any cell's output: os.write(2, ...), "
                            f"a library's C code, the kernel's own errors)")
        # outputs name places in the book or the project, never this machine's folders
        text = install.scrub(json.dumps(nb, indent=1, ensure_ascii=False),
                             install.machine_paths(paths.root, tmp.resolve(), tmp)) + "\n"
        out.write_text(text)
        if problems:
            failed = install.keep_failed(paths.root, paper, out, results)
            if kernel_errors:
                install.atomic_copy(kernel_log, failed / kernel_log.name)
            raise RuntimeError(f"{paper}: the run cannot go into the book:\n  " + "\n  ".join(problems)
                               + f"\n(its outputs are in {failed}; the book was not changed)")
        staged = tmp / "results.json"
        write_json_atomic(staged, results)
        try:
            with install.book_lock(paths.root):  # never while the HTML is being built from book/
                install.install_pair({out: paths.executed(paper, profile), staged: paths.results(paper, profile)})
        except OSError as e:
            failed = install.keep_failed(paths.root, paper, out, results)
            raise RuntimeError(f"{paper}: could not install the outputs into the book ({e}); both book files "
                               f"are as before, the computed outputs are in {failed}") from None
    _chunk_file(paths, paper, profile).unlink(missing_ok=True)
    print(f"{paper}: done in {seconds / 60:.1f} min" + (f" ({len(chunks)} chunks)" if len(chunks) > 1 else "")
          + f" -> {paths.executed(paper, profile).relative_to(paths.root)}, "
          f"{paths.results(paper, profile).relative_to(paths.root)}", flush=True)
    return results


def prepare_notebooks(profile: str, out_dir: Path, root: Path | None = None) -> list[Path]:
    """Inject a profile's parameters into every notebook without executing it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for paper in available_papers(root):
        paths, params, _ = prepare(paper, profile, None, root)
        written.append(inject_parameters(paths.notebook(paper), params, out_dir / f"{paper}.ipynb"))
    return written
