"""The runner: checks before a kernel starts, a clean run into the book, and every way a run can go wrong."""
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from lastlayer.book import install, runner
from lastlayer.book.runner import PartialRun, RunnerError, Paths, input_hash, notebook_parameters, prepare

from .conftest import ROOT

PARAMS = ("seed = 0\nepochs = 3  # epochs per round [>= 1]\nlr = 0.1  # learning rate [> 0]\nname = 'x'\n"
          "sizes = [1, 2]\nflag = True\nextra = None\n")
CLAIM = """from lastlayer.claims import Claim
c = Claim(id="lr-positive", statement="The learning rate is positive.", paper="lr > 0",
          estimand="the learning rate", rule="threshold", parameters={"threshold": 0.0, "side": "above"})
report.add(c, c.decide([lr, lr * 1.1, lr * 0.9]))
report.add_runs([{"lr": lr}])"""
SAVE = "report.metrics['lr'] = lr\nreport.save()"


def make_project(tmp_path, body=SAVE, params=PARAMS, paper="digit_pairs"):
    """A project folder with one notebook that follows the book's notebook layout, and a data folder."""
    (tmp_path / "notebooks").mkdir(exist_ok=True)
    (tmp_path / "data").mkdir(exist_ok=True)
    nb = new_notebook(cells=[
        new_markdown_cell("# A title"),
        new_code_cell("import lastlayer.book.notebook as nb\nnb.mark(globals())"),
        new_code_cell(params, metadata={"tags": ["parameters"]}),
        new_code_cell(f"report = nb.start({paper!r}, globals())\n" + CLAIM),
        new_code_cell(body),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "notebooks" / f"{paper}.ipynb")
    write_paper(tmp_path, paper, "smoke: {epochs: 1}\n  cpu: {}\n  paper: {epochs: 9}\n")
    write_paper(tmp_path, "geometry", "smoke: {}\n  cpu: {}\n  paper: {}\n")  # a paper without a notebook
    return tmp_path


def write_paper(root, paper, profiles, **meta) -> Path:
    """A paper's folder as the registry finds it: lastlayer/papers/<id>/paper.yml."""
    folder = root / "lastlayer" / "papers" / paper
    folder.mkdir(parents=True, exist_ok=True)
    fields = {"title": f"The {paper} paper", "citation": paper, "url": "null", "code": "null",
              "question": "does it work?", "order": 1,
              "paper_scale_needs": "null", **meta}
    text = "".join(f"{k}: {v}\n" for k, v in fields.items()) + "profiles:\n  " + profiles
    (folder / "paper.yml").write_text(text)
    return folder / "paper.yml"


@pytest.fixture(autouse=True)
def data_env(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir(exist_ok=True)
    monkeypatch.setenv("LASTLAYER_DATA", str(tmp_path / "data"))


def run(root, profile="smoke", overrides=None, **kw):
    return runner.run("digit_pairs", profile, overrides, root=root, progress=False, **kw)


# ------------------------------------------------------------------ checks before a kernel starts
def test_defaults_come_from_the_parameters_cell(tmp_path):
    root = make_project(tmp_path)
    assert {k: p.default for k, p in notebook_parameters(root / "notebooks" / "digit_pairs.ipynb").items()} == {
        "seed": 0, "epochs": 3, "lr": 0.1, "name": "x", "sizes": [1, 2], "flag": True, "extra": None}


@pytest.mark.parametrize("paper,profile,overrides,message", [
    ("mnist_pairs", "cpu", {}, "unknown paper 'mnist_pairs'"),
    ("geometry", "cpu", {}, "has no notebook yet"),
    ("digit_pairs", "laptop", {}, "unknown profile 'laptop'"),
    ("digit_pairs", "cpu", {"epoch": 2}, "unknown parameter\\(s\\) epoch"),
    ("digit_pairs", "cpu", {"epochs": 2.5}, "'epochs' expects int, got float 2.5"),
    ("digit_pairs", "cpu", {"epochs": 0}, "'epochs' 0 is out of range: must be >= 1"),
    ("digit_pairs", "cpu", {"epochs": None}, "'epochs' expects int, got null"),
    ("digit_pairs", "cpu", {"sizes": ["a"]}, "'sizes' element 0: expects int"),
])
def test_bad_input_is_rejected_before_running(tmp_path, paper, profile, overrides, message):
    root = make_project(tmp_path)
    with pytest.raises(RunnerError, match=message):
        prepare(paper, profile, overrides, root=root)


def test_paper_file_errors_name_the_file(tmp_path):
    root = make_project(tmp_path)
    write_paper(root, "digit_pairs", "smoke: {}\n  cpu: {}\n")
    with pytest.raises(RunnerError, match="digit_pairs/paper.yml: profiles must be exactly smoke, cpu, paper; missing paper"):
        prepare("digit_pairs", "cpu", root=root)
    write_paper(root, "digit_pairs", "smoke: {epochs: 0}\n  cpu: {}\n  paper: {}\n")  # every profile is checked
    with pytest.raises(RunnerError, match="digit_pairs/paper.yml, profile smoke: parameter 'epochs' 0 is out of range"):
        prepare("digit_pairs", "cpu", root=root)
    write_paper(root, "digit_pairs", "smoke: {epochs: [1, }\n  cpu: {}\n  paper: {}\n")
    with pytest.raises(RunnerError, match="lastlayer/papers/digit_pairs/paper.yml, line \\d+ column \\d+: not valid YAML"):
        prepare("digit_pairs", "cpu", root=root)
    write_paper(root, "digit_pairs", "smoke: {}\n  cpu: {}\n  paper: {}\n", order="first", colour="red")
    with pytest.raises(RunnerError, match="unknown field\\(s\\) colour"):
        prepare("digit_pairs", "cpu", root=root)


def test_parameters_record_every_parameter_as_run(tmp_path):
    root = make_project(tmp_path)
    _, params, overrides = prepare("digit_pairs", "paper", {"lr": 1, "extra": [3]}, root=root)
    assert params == {"seed": 0, "epochs": 9, "lr": 1.0, "name": "x", "sizes": [1, 2], "flag": True, "extra": [3]}
    assert overrides == {"lr": 1.0, "extra": [3]} and isinstance(params["lr"], float)


def test_missing_data_folder_is_named_and_not_created(tmp_path, monkeypatch):
    root = make_project(tmp_path)
    monkeypatch.setenv("LASTLAYER_DATA", str(tmp_path / "datta"))
    with pytest.raises(RunnerError, match="datta does not exist .*set LASTLAYER_DATA"):
        run(root)
    assert not (tmp_path / "datta").exists() and not (root / "book").exists()


def test_unwritable_book_is_found_before_running(tmp_path):
    root = make_project(tmp_path, body=f"open({str(tmp_path / 'ran')!r}, 'w').close()\n" + SAVE)
    (root / "book").mkdir()
    (root / "book" / "results").write_text("not a folder")  # unwritable as a folder, even for root
    with pytest.raises(RunnerError, match="book/results is not writable.*nothing was run"):
        run(root)
    assert not (tmp_path / "ran").exists()


def test_a_second_run_of_the_same_paper_is_refused(tmp_path):
    root = make_project(tmp_path)
    with install.paper_lock(root, "digit_pairs"):
        with pytest.raises(RunnerError, match="digit_pairs is already being run \\(process \\d+"):
            run(root)
    with install.paper_lock(root, "digit_pairs"):  # released: it can be taken again
        pass


def test_the_hash_of_a_paper_ignores_other_papers_and_the_book_tooling(tmp_path):
    root = make_project(tmp_path)
    pkg = tmp_path / "pkg"
    for rel in ("core.py", "papers/__init__.py", "papers/digit_pairs/experiments.py", "papers/geometry/claims.py",
                "book/runner.py"):
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(f"# {rel}\n")
    digest = lambda: input_hash("digit_pairs", "cpu", {}, Paths(root), pkg)
    before = digest()
    (pkg / "papers/geometry/claims.py").write_text("changed = True\n")
    (pkg / "book/runner.py").write_text("changed = True\n")
    assert digest() == before
    (pkg / "papers/digit_pairs/experiments.py").write_text("changed = True\n")
    assert digest() != before
    after = digest()
    (pkg / "core.py").write_text("changed = True\n")
    assert digest() != after


def test_the_page_command_can_be_pasted_back(tmp_path):
    overrides = {"grid_lrs": [0.001, 1.0], "name": "two words", "flag": False, "extra": None, "lr": 1e-3}
    cmd = runner.command("digit_pairs", "smoke", overrides)
    argv = shlex.split(cmd)
    assert argv[:7] == ["python", "-m", "lastlayer", "run", "digit_pairs", "--profile", "smoke"]
    pairs = dict(zip(argv[8::3], argv[9::3]))
    assert {k: runner.parse_value(v) for k, v in pairs.items()} == overrides


# ------------------------------------------------------------------ installing a run's outputs
def test_install_is_all_or_nothing(tmp_path, monkeypatch):
    old_nb, old_res = tmp_path / "book" / "a.ipynb", tmp_path / "book" / "results" / "a.json"
    old_res.parent.mkdir(parents=True)
    old_nb.write_text("old page")
    old_res.write_text("old results")
    new_nb, new_res = tmp_path / "new.ipynb", tmp_path / "new.json"
    new_nb.write_text("new page")
    new_res.write_text("new results")
    real_replace = os.replace

    def failing_replace(src, dst):
        if Path(dst) == old_res:
            raise PermissionError(13, "Permission denied")
        return real_replace(src, dst)

    monkeypatch.setattr(install.os, "replace", failing_replace)
    with pytest.raises(PermissionError):
        install.install_pair({new_nb: old_nb, new_res: old_res})
    assert old_nb.read_text() == "old page" and old_res.read_text() == "old results"
    assert sorted(p.name for p in old_nb.parent.rglob("*")) == ["a.ipynb", "a.json", "results"]  # no temporaries
    monkeypatch.setattr(install.os, "replace", real_replace)
    install.install_pair({new_nb: old_nb, new_res: old_res})
    assert old_nb.read_text() == "new page" and old_res.read_text() == "new results"


def test_atomic_copy_uses_a_fresh_temporary_name(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "out" / "x.ipynb"
    src.write_text("page")
    (tmp_path / "out" / ".x.ipynb.tmp").mkdir(parents=True)  # a fixed temporary name is taken (another copy)
    install.atomic_copy(src, dst)
    assert dst.read_text() == "page" and (dst.stat().st_mode & 0o777) == 0o666 & ~_umask()


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_output_problems_name_the_cell():
    nb = {"cells": [
        {"cell_type": "code", "source": "import warnings", "outputs": []},
        {"cell_type": "code", "source": "fit(model)\nmore", "outputs": [
            {"output_type": "stream", "name": "stderr", "text": "UserWarning: slow\n"}]},
        {"cell_type": "code", "source": "raise", "outputs": [
            {"output_type": "error", "ename": "ValueError", "evalue": "boom", "traceback": []}]}]}
    assert install.output_problems(nb) == ["cell 1 ('fit(model)') wrote to stderr: UserWarning: slow",
                                           "cell 2 ('raise') shows an error: ValueError: boom"]


# ------------------------------------------------------------------ runs (each starts a kernel)
def test_run_writes_the_pair_regenerates_pages_and_skips_unchanged(tmp_path, caplog):
    body = "import os, sys\nprint(sys.prefix, os.getcwd())\n" + SAVE
    root = make_project(tmp_path, body=body)
    res = run(root, overrides={"lr": 0.5})
    assert res["profile"] == "smoke" and res["overrides"] == {"lr": 0.5}
    assert res["parameters"] == {"seed": 0, "epochs": 1, "lr": 0.5, "name": "x", "sizes": [1, 2], "flag": True,
                                 "extra": None}
    assert res["claims"][0]["verdict"] == "reproduced" and res["runs"] == [{"lr": 0.5}]
    saved = root / "book" / "results" / "digit_pairs.json"
    assert json.loads(saved.read_text()) == res and saved.stat().st_mode & 0o777 == 0o644
    executed = json.loads((root / "book" / "executed" / "digit_pairs.ipynb").read_text())
    note = "".join(executed["cells"][1]["source"])
    assert executed["cells"][1]["id"] == "provenance" and "run digit_pairs --profile smoke -p lr 0.5`" in note
    folded = [c["metadata"]["tags"] for c in executed["cells"] if "parameters" in c["metadata"].get("tags", [])
              or "injected-parameters" in c["metadata"].get("tags", [])]
    assert len(folded) == 2 and all("hide-input" in t for t in folded)
    text = json.dumps(executed)
    assert "start_time" not in text and "duration" not in text
    assert str(tmp_path) not in text and sys.prefix not in text and "lastlayer-digit_pairs-" not in text
    assert "<python> ./notebooks" in text
    assert not any("Unable to parse line" in r.getMessage() for r in caplog.records)
    assert runner.status("digit_pairs", root) == "current"  # same profile and overrides, same code
    mtime = saved.stat().st_mtime_ns
    run(root, overrides={"lr": 0.5})  # unchanged: skipped
    assert saved.stat().st_mtime_ns == mtime
    notebook = root / "notebooks" / "digit_pairs.ipynb"
    notebook.write_text(notebook.read_text().replace("# A title", "# A new title"))
    assert runner.status("digit_pairs", root) == "stale"
    big = run(root, "paper")  # the paper scale lands beside the chapter's run, never over it
    assert json.loads(saved.read_text()) == res and big["profile"] == "paper"
    assert (root / "book" / "executed" / "paper" / "digit_pairs.ipynb").exists()
    assert json.loads((root / "book" / "results" / "paper" / "digit_pairs.json").read_text()) == big
    assert runner.status("digit_pairs", root, "paper") == "current"


def test_stderr_in_a_cell_fails_the_run_and_keeps_the_outputs(tmp_path):
    root = make_project(tmp_path, body="import warnings\nwarnings.warn('careful')\n" + SAVE)
    with pytest.raises(RuntimeError, match="cell \\d+ \\('import warnings'\\) wrote to stderr.*careful"):
        run(root)
    assert not (root / "book" / "results").exists() or not list((root / "book" / "results").iterdir())
    assert (root / "build" / "failed" / "digit_pairs.ipynb").exists()
    assert json.loads((root / "build" / "failed" / "digit_pairs.json").read_text())["paper"] == "digit_pairs"


def test_failed_notebook_leaves_the_book_untouched(tmp_path):
    root = make_project(tmp_path, body="raise ValueError('boom')")
    with pytest.raises(RuntimeError, match="ValueError: boom"):
        run(root)
    assert not list((root / "book" / "executed").iterdir()) and not list((root / "book" / "results").iterdir())


def test_deadline_stops_a_run_as_partial(tmp_path):
    body = ("import os, time\nclass DeadlineReached(Exception): pass\n"
            "if float(os.environ['LASTLAYER_DEADLINE']) < time.time() + 120:\n"
            "    raise DeadlineReached('stopped')\n" + SAVE)
    root = make_project(tmp_path, body=body)
    with pytest.raises(PartialRun, match=r"partial run: .* minutes used \(chunk 1, .* in all\); rerun the same "
                                         "command to continue"):
        run(root, max_minutes=1)
    with pytest.raises(PartialRun, match=r"\(chunk 2, "):  # the same inputs again: the run's second chunk
        run(root, max_minutes=1)
    assert not list((root / "book" / "results").iterdir())


def test_workers_reach_the_kernel_and_the_record_but_not_the_hash(tmp_path, monkeypatch):
    """`--workers 2`: a notebook's runs train in two worker processes at once, spawned from the kernel."""
    body = ("import functools, os\nfrom lastlayer.training.cache import cached_runs\n"
            "from tests.helpers.slow_runs import meeting_run\nassert os.environ['LASTLAYER_WORKERS'] == '2'\n"
            f"assert cached_runs([functools.partial(meeting_run, s, {str(tmp_path / 'log')!r}) for s in (0, 1)]) == [0, 1]\n"
            + SAVE)
    root = make_project(tmp_path, body=body)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("LASTLAYER_CACHE", str(tmp_path / "cache"))
    for bad in (0, 2.5, True):
        with pytest.raises(RunnerError, match="--workers must be a whole number"):
            run(root, workers=bad)
    start = time.time()
    res = run(root, workers=2)
    assert res["workers"] == 2 and time.time() - start < 50  # the two runs met: neither waited out its minute
    assert len({line.split()[2] for line in (tmp_path / "log").read_text().splitlines()}) == 2
    assert runner.status("digit_pairs", root) == "current"  # the speed of a run is no input of its numbers


def test_sigterm_cleans_up_the_temporary_folder_and_the_kernel(tmp_path):
    root = make_project(tmp_path, body="import time\ntime.sleep(120)")
    tmp, runtime = tmp_path / "tmp", tmp_path / "runtime"
    tmp.mkdir()
    runtime.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp), "JUPYTER_RUNTIME_DIR": str(runtime)}
    code = (f"from lastlayer.book import runner; from pathlib import Path\n"
            f"runner.run('digit_pairs', 'smoke', root=Path({str(root)!r}), progress=False)")
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while not any(runtime.glob("kernel-*.json")) and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(3)  # the kernel is running the notebook
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode != 0, out
    assert list(tmp.iterdir()) == [] and list(runtime.glob("kernel-*.json")) == [], out


# ------------------------------------------------------------------ command line and Makefile
def test_cli_exit_codes_and_commands(tmp_path):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "lastlayer", *args], capture_output=True, text=True, cwd=ROOT)
    out = cli("run", "nope")
    assert out.returncode == 2 and "unknown paper 'nope'" in out.stderr
    out = cli("run", "digit_pairs", "-p", "rounds", "many")
    assert out.returncode == 2 and "'rounds' expects int" in out.stderr
    out = cli("run", "digit_pairs", "--workers", "0")
    assert out.returncode == 2 and "--workers must be a whole number of at least 1" in out.stderr
    out = cli("run", "digit_pairs", "-p", "rounds", "[1, 2")
    assert out.returncode == 2 and "cannot read" in out.stderr and "Traceback" not in out.stderr
    out = cli("params", "digit_pairs")
    assert out.returncode == 0 and "epochs  (int)  default" in out.stdout and "smoke:" in out.stdout
    out = cli("status")
    assert out.returncode == 0 and all(p in out.stdout for p in ("digit_pairs", "geometry"))


def test_makefile_copes_with_spaces(tmp_path):
    project = tmp_path / "my project"
    (project / ".venv").mkdir(parents=True)
    (project / "Makefile").write_text((ROOT / "Makefile").read_text())
    for name in ("requirements.txt", "pyproject.toml"):
        (project / name).write_text("")
    (project / ".venv" / ".installed").touch()
    stub = project / "fake python"
    log = project / "calls.jsonl"
    stub.write_text(f"#!{sys.executable}\nimport json, os, sys\n"
                    f"open({str(log)!r}, 'a').write(json.dumps([sys.argv[1:], os.getcwd(), "
                    f"os.environ.get('LASTLAYER_DATA')]) + '\\n')\n")
    stub.chmod(0o755)
    env = {**os.environ, "LASTLAYER_DATA": str(tmp_path / "my data")}
    for target in (["test"], ["run", "PAPER=digit_pairs", "PROFILE=smoke", "ARGS=-p grid '[1, 2]' --force"]):
        done = subprocess.run(["make", "-s", *target, f"PY={stub}"], cwd=project, env=env, capture_output=True,
                              text=True)
        assert done.returncode == 0, done.stderr
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert calls[0][0][:3] == ["-m", "pytest", "tests"] and "tests/nbval/sanitize.cfg" in calls[0][0]
    assert calls[1][0] == ["-m", "lastlayer", "run", "digit_pairs", "--profile", "smoke", "-p", "grid", "[1, 2]",
                           "--force"]
    assert all(c[1] == str(project) and c[2] == str(tmp_path / "my data") for c in calls)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "my project"]  # no junk folders
    assert sorted(p.name for p in project.iterdir()) == [".venv", "Makefile", "calls.jsonl", "fake python",
                                                        "pyproject.toml", "requirements.txt"]


def test_rule_changes_are_listed_with_their_reason():
    """A change of what is declared (rule, parameters, estimand ...) is listed; a new hash of the same
    declaration (the hashing changed, or a field was added at its default) is not."""
    from lastlayer.book.runner import rule_changes
    rule = {"rule": "direction", "rule_parameters": {"min_effect": 0.01}, "estimand": "e", "statement": "s",
            "setting": "paper setup"}
    previous = {"claims": [{"id": "a", "declaration_hash": "1", **rule}, {"id": "b", "declaration_hash": "2", **rule},
                           {"id": "gone", "declaration_hash": "3", **rule}]}
    now = {"claims": [{"id": "a", "declaration_hash": "new hash, same declaration", **rule},
                      {"id": "b", "declaration_hash": "9", **rule, "rule_parameters": {"min_effect": 0.02},
                       "revised": "margin from the paper's table"},
                      {"id": "new", "declaration_hash": "4", **rule}]}
    assert rule_changes(None, now) == []
    assert rule_changes(previous, now) == [
        {"id": "b", "change": "declaration changed", "reason": "margin from the paper's table"},
        {"id": "gone", "change": "removed", "reason": "not stated"}]
    now["claims"][1]["revised"] = ""
    assert rule_changes(previous, now)[0]["reason"] == "not stated"


def test_paper_scale_runs_land_beside_the_chapter():
    from lastlayer.book.runner import Paths
    paths = Paths(Path("/project"))
    assert paths.executed("geometry") == Path("/project/book/executed/geometry.ipynb")
    assert paths.executed("geometry", "paper") == Path("/project/book/executed/paper/geometry.ipynb")
    assert paths.results("geometry", "smoke") == Path("/project/book/results/geometry.json")
    assert paths.results("geometry", "paper") == Path("/project/book/results/paper/geometry.json")


def test_a_new_paper_is_one_folder_and_a_notebook(tmp_path, capsys):
    """A throwaway paper: its folder (paper.yml) and its notebook make it known to the runner, the parameters
    listing, the pages, the run-time table and the table of contents; no list anywhere else names it."""
    from lastlayer.book import cli, pages
    root = make_project(tmp_path, paper="throwaway")
    write_paper(root, "throwaway", "smoke: {epochs: 1}\n  cpu: {}\n  paper: {epochs: 9}\n",
                title='"A throwaway paper"', order=9, paper_scale_needs='"a data set we do not have"')
    assert runner.available_papers(root) == ["throwaway"]  # geometry has a folder but no notebook
    cli.print_params("throwaway", root)
    assert "smoke: 1   cpu: 3   paper: 9" in capsys.readouterr().out
    runner.run("throwaway", "smoke", root=root, progress=False)
    pages.write_pages(root)
    toc = (root / "_toc.yml").read_text()
    assert "- file: book/executed/throwaway\n" in toc
    card = (root / "book" / "scorecard.md").read_text()
    assert "## A throwaway paper" in card and "it needs a data set we do not have" in card
    assert "| A throwaway paper | `smoke` |" in (root / "book" / "_generated" / "times.md").read_text()
    intro = (root / "book" / "_generated" / "papers.md").read_text()
    assert "[A throwaway paper](executed/throwaway.ipynb) | {cite:t}`throwaway` | does it work? |" in intro


def test_only_make_env_reinstalls_an_older_venv(tmp_path):
    """A venv older than requirements.txt is used as it is, with a note, by every target but `make env`."""
    project = tmp_path / "project"
    (project / ".venv").mkdir(parents=True)
    (project / "Makefile").write_text((ROOT / "Makefile").read_text())
    (project / ".venv" / ".installed").touch()
    old = time.time() - 3600
    os.utime(project / ".venv" / ".installed", (old, old))
    for name in ("requirements.txt", "pyproject.toml"):
        (project / name).write_text("")  # newer than the venv
    stub, log = project / "python", project / "calls.jsonl"
    stub.write_text(f"#!{sys.executable}\nimport json, sys\nopen({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n")
    stub.chmod(0o755)

    def make(*target):
        done = subprocess.run(["make", "-s", *target, f"PY={stub}", f"PYTHON={stub}"], cwd=project,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        log.unlink(missing_ok=True)
        return calls, done.stderr

    for target in (["test"], ["status"], ["params", "PAPER=digit_pairs"]):
        calls, err = make(*target)
        assert len(calls) == 1 and calls[0][:2] in (["-m", "pytest"], ["-m", "lastlayer"]), calls
        assert ".venv is older than requirements.txt" in err and "`make env` updates it" in err
    calls, _ = make("env")
    assert [c[:2] for c in calls] == [["-m", "venv"], ["-m", "pip"], ["-m", "pip"], ["-m", "pip"]]
    calls, err = make("status")  # installed now: no note
    assert len(calls) == 1 and err == ""


def test_a_run_that_ends_during_an_html_build_waits_to_install(tmp_path, monkeypatch):
    """`make html` while a paper runs: the build holds the book's lock; the run finishes its notebook, waits,
    and installs its pair only once the build is over, so the HTML never mixes a new notebook with old results."""
    import threading
    from lastlayer.book import pages
    root = make_project(tmp_path)
    held, ready, times = threading.Event(), threading.Event(), {}

    def fake_build(root, out):  # the real build takes a minute; this one holds the lock until the run is ready
        held.set()
        assert ready.wait(120)
        time.sleep(1.0)  # the run is now at the lock
        times["build end"] = time.time()
        return 0
    checked = runner.validate

    def validate(results):  # the last step before the run installs
        times["run ready"] = time.time()
        ready.set()
        return checked(results)
    monkeypatch.setattr(pages, "_build", fake_build)
    monkeypatch.setattr(runner, "validate", validate)
    build = threading.Thread(target=pages.build_html, args=(root,))
    build.start()
    assert held.wait(60)
    run(root)
    build.join()
    installed = (root / "book" / "results" / "digit_pairs.json").stat().st_mtime
    assert times["run ready"] < times["build end"] <= installed  # it waited for the build, then installed


def test_asyncio_teardown_reports_in_the_kernel_log_are_not_errors():
    from lastlayer.book.runner import _kernel_errors
    log = ("Task was destroyed but it is pending!\ntask: <Task pending name='Task-3' coro=<Kernel.poll()>>\n"
           "Traceback (most recent call last):\n  boom\n")
    assert _kernel_errors(log) == ["Traceback (most recent call last):", "  boom"]
    assert _kernel_errors("Task was destroyed but it is pending!\ntask: <Task pending>\n") == []


def test_what_the_kernel_logs_once_asked_to_shut_down_is_not_an_error_of_the_run(tmp_path):
    """jupyter_client interrupts a kernel before asking it to shut down, and the kernel may log the interrupt
    racing its message handlers: the runner's kernel manager marks where the shutdown began."""
    import asyncio
    log = tmp_path / "kernel.log"
    km = runner._kernel_manager(log)(kernel_name="python3")

    async def start_and_stop():
        await km.start_kernel(extra_arguments=runner.KERNEL_ARGS)
        info = km.get_connection_info()
        await km.shutdown_kernel()
        return info
    info = asyncio.run(start_and_stop())
    # its sockets are files in the run's folder: no TCP port another kernel started at the same time could take
    assert info["transport"] == "ipc" and Path(info["ip"]).parent == tmp_path
    assert not list(tmp_path.glob("kernel-ipc*"))  # removed at shutdown
    deep = tmp_path / ("d" * 100) / "kernel.log"  # too long a path for a Unix socket: TCP, and a kernel that starts
    assert runner._kernel_manager(deep)(kernel_name="python3").transport == "tcp"
    text = log.read_text()
    assert text.count(runner.SHUTDOWN_MARK) == 1
    late = "[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel.\nERROR:tornado.general:Uncaught exception\n"
    assert runner._kernel_errors(text + late) == []
    assert runner._kernel_errors("[IPKernelApp] ERROR | boom\n" + text + late) == ["[IPKernelApp] ERROR | boom"]


def test_a_paper_scale_page_gets_its_own_figure_labels_and_links_that_climb_one_folder_more():
    from lastlayer.book.runner import as_paper_scale_page
    nb = {"cells": [
        {"cell_type": "code", "metadata": {"mystnb": {"figure": {"name": "fig-x-1"}}}, "outputs": [], "source": "f()"},
        {"cell_type": "code", "metadata": {"mystnb": {"figure": {"name": "fig-x-1b"}}}, "outputs": [], "source": "g()"},
        {"cell_type": "markdown", "metadata": {}, "source": "See {numref}`fig-x-1`, [a](../reproduce.md), "
                                                          "[b](../../x.md) and [c](https://e.org/../y)."}]}
    out = as_paper_scale_page(nb)
    assert [c["metadata"]["mystnb"]["figure"]["name"] for c in out["cells"][:2]] == ["fig-x-1-paper", "fig-x-1b-paper"]
    assert out["cells"][2]["source"] == ("See {numref}`fig-x-1-paper`, [a](../../reproduce.md), [b](../../x.md) "
                                         "and [c](https://e.org/../y).")
    assert nb["cells"][0]["metadata"]["mystnb"]["figure"]["name"] == "fig-x-1"  # the input is left as it was
