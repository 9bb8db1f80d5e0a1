"""The command line's promises about bad input and about runs, end to end: every bad input exits 2 before a
kernel starts; a run stopped by `--max-minutes` exits 3 and the same command continues it to the results of one
uninterrupted run; a corrupt data file and a notebook that writes to stderr exit 1 and leave the book alone."""
import json
import shutil
from pathlib import Path

import pytest

from lastlayer.book import cli, install, runner
from lastlayer.book.runner import Paths, notebook_parameters

from .conftest import ROOT
from .test_runner import SAVE, make_project
from .test_signals import cli_process

PAPERS = ("digit_pairs", "asv_init", "feature_cache", "fixed_classifier", "geometry")


def main(root, capsys, *argv) -> tuple[int, str]:
    """`python -m lastlayer ARGV` in this process with its project at `root`: (exit code, stderr)."""
    saved = cli.default_root
    cli.default_root = lambda: root
    try:
        with pytest.raises(SystemExit) as e:
            cli.main(list(argv))
    finally:
        cli.default_root = saved
    return e.value.code, capsys.readouterr().err


# ------------------------------------------------------------------ bad input: exit 2, nothing runs
@pytest.mark.parametrize("argv,message", [
    (["run", "nope"], "unknown paper 'nope'"),
    (["run", "digit_pairs", "--profile", "laptop"], "unknown profile 'laptop'"),
    (["run", "digit_pairs", "-p", "epoch", "2"], "unknown parameter\\(s\\) epoch"),
    (["run", "digit_pairs", "-p", "epochs", "many"], "'epochs' expects int, got str"),
    (["run", "digit_pairs", "-p", "epochs", "0"], "'epochs' 0 is out of range: must be >= 1"),
    (["run", "digit_pairs", "-p", "lr", "1e999"], "'lr' inf is not a finite number"),
    (["run", "digit_pairs", "-p", "epochs", "[1, 2"], "cannot read"),
    (["run", "digit_pairs", "--max-minutes", "0"], "--max-minutes must be positive"),
    (["run", "digit_pairs", "--workers", "0"], "--workers must be a whole number"),
    (["run", "digit_pairs", "DATA"], "the data folder .*datta does not exist"),
    (["run", "digit_pairs", "BOOK"], "book/results is not writable"),
    (["run", "digit_pairs", "LOCK"], "digit_pairs is already being run"),
])
def test_bad_input_exits_2_before_anything_runs(tmp_path, capsys, monkeypatch, argv, message):
    ran = tmp_path / "ran"
    root = make_project(tmp_path, body=f"open({str(ran)!r}, 'w').close()\n" + SAVE)
    monkeypatch.setenv("LASTLAYER_DATA", str(root / "data"))
    lock = None
    if argv[-1] == "DATA":
        monkeypatch.setenv("LASTLAYER_DATA", str(tmp_path / "datta"))
    elif argv[-1] == "BOOK":
        (root / "book").mkdir()
        (root / "book" / "results").write_text("not a folder")
    elif argv[-1] == "LOCK":
        lock = install.paper_lock(root, "digit_pairs")
        lock.__enter__()
    argv = argv[:-1] if argv[-1] in ("DATA", "BOOK", "LOCK") else argv
    try:
        code, err = main(root, capsys, *argv)
    finally:
        if lock is not None:
            lock.__exit__(None, None, None)
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert __import__("re").search(message, err), err
    assert not ran.exists()
    assert not (root / "book").is_dir() or not list((root / "book").rglob("*.json"))


@pytest.mark.parametrize("name,value,message", [
    ("epochs", "0", "'epochs' 0 is out of range: must be >= 1"),
    ("epochs", "-1", "'epochs' -1 is out of range: must be >= 1"),
    ("seed", str(2**64), "must be < 2\\*\\*63"),
    ("seed", "-1", "'seed' -1 is out of range: must be >= 0"),
    ("device", "", "'device' '' does not match auto\\|cpu\\|mps\\|cuda"),
    ("device", "off", "'device' 'off' does not match"),
    ("grid_lrs", "[]", "'grid_lrs' \\[\\] has 0 element\\(s\\): its length must be >= 1"),
    ("lr_pair", "1e999", "'lr_pair' inf is not a finite number"),
    ("lr_pair", "0", "'lr_pair' 0 is out of range: must be > 0"),
    ("n_pairs", "6000", "must be <= 5000"),
])
def test_the_books_notebooks_refuse_out_of_range_values(capsys, monkeypatch, name, value, message):
    """The values of the issue, against the real digit_pairs notebook: refused by `prepare`, no kernel."""
    monkeypatch.setattr(runner, "_run_locked", lambda *a, **k: pytest.fail("a kernel would have started"))
    code, err = main(ROOT, capsys, "run", "digit_pairs", "-p", name, value)
    assert code == 2 and __import__("re").search(message, err), err


@pytest.mark.parametrize("paper", PAPERS)
def test_every_parameter_of_the_book_declares_what_it_accepts(paper):
    params = notebook_parameters(Paths(ROOT).notebook(paper))
    for name, p in params.items():
        if isinstance(p.default, list):
            assert p.length and p.length[0][0] == ">=", f"{paper}: list {name} declares no minimum length"
        if name == "seed" or name.endswith("_seed") or (name.endswith("seeds") and isinstance(p.default, list)):
            assert (">=", 0) in p.bounds and ("<", 2**63) in p.bounds, f"{paper}: {name} is a seed"
        if name == "device":
            assert p.pattern and all(__import__("re").fullmatch(p.pattern, d) for d in ("auto", "cpu", "cuda", "cuda:1"))
        if isinstance(p.default, (int, float)) and not isinstance(p.default, bool):
            assert p.bounds, f"{paper}: the number {name} declares no range"


# ------------------------------------------------------------------ runs from the command line
def test_max_minutes_stops_with_exit_3_and_the_same_command_continues(tmp_path):
    body = ("from lastlayer.training.cache import cached_run\nfrom tests.helpers.resumable import step\n"
            "values = [cached_run(step, i, lr) for i in range(4)]\nreport.metrics['values'] = values\n" + SAVE)
    roots = {}
    for name in ("chunked", "whole"):
        (tmp_path / name).mkdir()
        roots[name] = make_project(tmp_path / name, body=body)
    notebook = "notebooks/digit_pairs.ipynb"  # the same notebook, cell ids and all: the same input hash
    (roots["whole"] / notebook).write_text((roots["chunked"] / notebook).read_text())
    env = {"PYTHONPATH": str(ROOT), "LASTLAYER_CACHE": str(tmp_path / "cache"),
           "LASTLAYER_DATA": str(roots["chunked"] / "data")}
    command = ("run", "digit_pairs", "--profile", "smoke", "-p", "lr", "0.5", "--max-minutes", "0.4")
    proc = cli_process(roots["chunked"], *command, env=env)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 3, (out, err)
    assert "partial run" in err and "rerun the same command to continue" in err and "Traceback" not in err
    results = roots["chunked"] / "book" / "results" / "digit_pairs.json"
    assert not results.exists()
    status = cli_process(roots["chunked"], "status", env=env).communicate(timeout=60)[0]
    assert ("a run stopped after 1 chunk" in status
            and "`python -m lastlayer run digit_pairs --profile smoke -p lr 0.5` continues it" in status), status
    # the ledger of the chunks is in the run cache, so another checkout given the same cache continues the run
    assert (tmp_path / "cache" / "chunks" / "digit_pairs-smoke.json").exists()
    assert "a run stopped after 1 chunk" in cli_process(roots["whole"], "status", env=env).communicate(timeout=60)[0]
    # a cache kept in the repository (book/cache/<profile>) is found without pointing at it, and the command says so
    shutil.copytree(tmp_path / "cache", roots["whole"] / "book" / "cache" / "smoke")
    elsewhere = {**env, "LASTLAYER_CACHE": str(tmp_path / "empty")}
    status = cli_process(roots["whole"], "status", env=elsewhere).communicate(timeout=60)[0]
    assert ("a run stopped after 1 chunk" in status and "`LASTLAYER_CACHE=book/cache/smoke python -m lastlayer run "
            "digit_pairs --profile smoke -p lr 0.5` continues it" in status), status
    shutil.rmtree(roots["whole"] / "book" / "cache")
    proc = cli_process(roots["chunked"], *command, env=env)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, (out, err)
    assert "stopped after" not in cli_process(roots["chunked"], "status", env=env).communicate(timeout=60)[0]
    whole = cli_process(roots["whole"], *command[:-2], env={**env, "LASTLAYER_CACHE": "off"})
    out, err = whole.communicate(timeout=180)
    assert whole.returncode == 0, (out, err)
    a, b = (json.loads(r.read_text()) for r in (results, roots["whole"] / "book" / "results" / "digit_pairs.json"))
    assert a["metrics"]["values"] == [0.5, 2.0, 4.5, 8.0]
    # the wall time is the sum of the chunks, each recorded; the ledger of the stopped chunks is gone
    assert len(a["chunks"]) == 2 and a["chunks"][0] >= 0.4 * 60 * 0.5 and len(b["chunks"]) == 1
    assert a["seconds"] == pytest.approx(sum(a["chunks"]), abs=0.11)
    assert not (tmp_path / "cache" / "chunks" / "digit_pairs-smoke.json").exists()
    volatile = ("seconds", "commit", "chunks")
    assert {k: v for k, v in a.items() if k not in volatile} == {k: v for k, v in b.items() if k not in volatile}


def test_a_corrupt_data_file_is_named_and_the_run_exits_1(tmp_path, data_root):
    data = tmp_path / "mydata" / "MNIST" / "raw"
    data.mkdir(parents=True)
    for f in (data_root / "MNIST" / "raw").glob("t10k-*.gz"):
        shutil.copy(f, data / f.name)
    victim = data / "t10k-labels-idx1-ubyte.gz"
    victim.write_bytes(victim.read_bytes()[:-100])
    body = "from lastlayer.data import load\ntest = load('mnist', 'test')\n" + SAVE
    root = make_project(tmp_path, body=body)
    proc = cli_process(root, "run", "digit_pairs", "--profile", "smoke", env={"LASTLAYER_DATA": str(tmp_path / "mydata")})
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 1, (out, err)
    assert "DataError" in err and "t10k-labels-idx1-ubyte.gz is corrupt or truncated" in err, err
    assert not list((root / "book" / "results").glob("*.json"))


@pytest.mark.parametrize("write", ["import sys\nsys.stderr.write('careful\\n')", "import os\nos.write(2, b'careful\\n')"])
def test_a_notebook_that_writes_to_stderr_never_reaches_the_book(tmp_path, write):
    root = make_project(tmp_path, body=write + "\n" + SAVE)
    proc = cli_process(root, "run", "digit_pairs", "--profile", "smoke", env={"LASTLAYER_DATA": str(root / "data")})
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 1, (out, err)
    assert "wrote to stderr: careful" in err and "the book was not changed" in err, err
    assert not list((root / "book" / "results").glob("*.json")) and not list((root / "book" / "executed").glob("*"))
    assert (root / "build" / "failed" / "digit_pairs.ipynb").exists()


def test_the_help_of_every_command_prints(capsys):
    """argparse formats help strings with %: a bare '%' in one makes `--help` crash instead of helping."""
    parser = cli._parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    for argv in [["--help"]] + [[name, "--help"] for name in commands]:
        with pytest.raises(SystemExit) as e:
            parser.parse_args(argv)
        assert e.value.code == 0, argv
        assert "usage:" in capsys.readouterr().out


def test_a_reader_that_leaves_early_gets_no_traceback():
    """`python -m lastlayer params feature_cache | head -2`: the reader closes the pipe; the command stops without
    a traceback. Here the reader is gone before the first line, so every write meets a closed pipe."""
    import os
    import subprocess
    import sys
    read, write = os.pipe()
    os.close(read)
    code = (f"from pathlib import Path; from lastlayer.book import cli\n"
            f"cli.default_root = lambda: Path({str(ROOT)!r})\ncli.main(['params', 'feature_cache'])")
    proc = subprocess.run([sys.executable, "-c", code], stdout=write, stderr=subprocess.PIPE, text=True,
                          timeout=120, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    os.close(write)
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr, proc.stderr
    assert proc.returncode == 1
