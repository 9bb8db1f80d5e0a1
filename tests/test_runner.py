import json
import subprocess
import sys

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from lastlayer.book import runner
from lastlayer.book.runner import RunnerError, check_parameters, notebook_defaults, parse_value, prepare

PARAMS = "seed = 0\nepochs = 3\nlr = 0.1\nname = 'x'\nsizes = [1, 2]\nflag = True\nextra = None\n"


def make_project(tmp_path, params=PARAMS, body="report.metrics['lr'] = lr\nreport.save()"):
    """A project folder with one notebook `digit_pairs` that follows the book's notebook layout."""
    (tmp_path / "notebooks").mkdir()
    nb = new_notebook(cells=[
        new_markdown_cell("# A title"),
        new_code_cell("import lastlayer.book.notebook as nb\nnb.mark(globals())"),
        new_code_cell(params, metadata={"tags": ["parameters"]}),
        new_code_cell("report = nb.start('digit_pairs', globals())\n"
                      "report.claim('c', 's', paper='p', ours='o', criterion='lr > 0', holds=lr > 0)"),
        new_code_cell(body),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "notebooks" / "digit_pairs.ipynb")
    (tmp_path / "notebooks" / "digit_pairs.yml").write_text("smoke: {epochs: 1}\ncpu: {}\npaper: {epochs: 9}\n")
    return tmp_path


def test_defaults_come_from_the_parameters_cell(tmp_path):
    root = make_project(tmp_path)
    assert notebook_defaults(root / "notebooks" / "digit_pairs.ipynb") == {
        "seed": 0, "epochs": 3, "lr": 0.1, "name": "x", "sizes": [1, 2], "flag": True, "extra": None}


def test_parameters_cell_must_be_plain_assignments(tmp_path):
    root = make_project(tmp_path, params="import os\nseed = 0\n")
    with pytest.raises(RunnerError, match="plain `name = literal` assignments"):
        notebook_defaults(root / "notebooks" / "digit_pairs.ipynb")


@pytest.mark.parametrize("paper,profile,overrides,message", [
    ("mnist_pairs", "cpu", {}, "unknown paper 'mnist_pairs'"),
    ("geometry", "cpu", {}, "has no notebook yet"),
    ("digit_pairs", "laptop", {}, "unknown profile 'laptop'"),
    ("digit_pairs", "cpu", {"epoch": 2}, "unknown parameter\\(s\\) epoch"),
    ("digit_pairs", "cpu", {"epochs": 2.5}, "'epochs' expects int .* got float 2.5"),
    ("digit_pairs", "cpu", {"lr": "fast"}, "'lr' expects float .* got str"),
    ("digit_pairs", "cpu", {"flag": 1}, "'flag' expects bool"),
    ("digit_pairs", "cpu", {"epochs": True}, "'epochs' expects int"),
    ("digit_pairs", "cpu", {"sizes": 3}, "'sizes' expects list"),
])
def test_bad_input_is_rejected_before_running(tmp_path, paper, profile, overrides, message):
    root = make_project(tmp_path)
    with pytest.raises(RunnerError, match=message):
        prepare(paper, profile, overrides, root=root)


def test_profile_file_must_define_every_profile(tmp_path):
    root = make_project(tmp_path)
    (root / "notebooks" / "digit_pairs.yml").write_text("smoke: {}\ncpu: {}\n")
    with pytest.raises(RunnerError, match="profile\\(s\\) paper not defined"):
        prepare("digit_pairs", "cpu", root=root)


def test_profile_values_are_checked_too(tmp_path):
    root = make_project(tmp_path)
    (root / "notebooks" / "digit_pairs.yml").write_text("smoke: {epochs: fast}\ncpu: {}\npaper: {}\n")
    with pytest.raises(RunnerError, match="'epochs' expects int"):
        prepare("digit_pairs", "smoke", root=root)


def test_good_input_merges_profile_and_overrides(tmp_path):
    root = make_project(tmp_path)
    _, params, overrides = prepare("digit_pairs", "paper", {"lr": 1, "extra": [3]}, root=root)
    assert params == {"epochs": 9, "lr": 1.0, "extra": [3]} and isinstance(params["lr"], float)
    assert overrides == {"lr": 1.0, "extra": [3]}


def test_cli_values_parse_as_yaml():
    assert parse_value("0.1") == 0.1 and parse_value("3") == 3 and parse_value("true") is True
    assert parse_value("[1, 2]") == [1, 2] and parse_value("null") is None and parse_value("adam") == "adam"


def test_ints_are_accepted_for_floats_only():
    assert check_parameters("p", {"lr": 1}, {"lr": 0.5}) == {"lr": 1.0}
    with pytest.raises(RunnerError):
        check_parameters("p", {"n": 1.0}, {"n": 2})


def test_run_writes_book_files_and_skips_unchanged(tmp_path):
    root = make_project(tmp_path)
    res = runner.run("digit_pairs", "smoke", {"lr": 0.5}, root=root, progress=False)
    assert res["profile"] == "smoke" and res["parameters"] == {"epochs": 1, "lr": 0.5}
    assert res["claims"][0]["verdict"] == "reproduced" and res["metrics"] == {"lr": 0.5}
    saved = json.loads((root / "book" / "results" / "digit_pairs.json").read_text())
    assert saved == res and saved["seconds"] > 0 and saved["torch"]
    executed = json.loads((root / "book" / "executed" / "digit_pairs.ipynb").read_text())
    assert executed["cells"][1]["id"] == "provenance" and "--profile smoke" in "".join(executed["cells"][1]["source"])
    text = json.dumps(executed)
    assert "start_time" not in text and "duration" not in text and str(tmp_path) not in text
    assert "lastlayer-digit_pairs-" not in text and "book/results/digit_pairs.json" in text  # no temporary path
    mtime = (root / "book" / "results" / "digit_pairs.json").stat().st_mtime_ns
    runner.run("digit_pairs", "smoke", {"lr": 0.5}, root=root, progress=False)  # unchanged: skipped
    assert (root / "book" / "results" / "digit_pairs.json").stat().st_mtime_ns == mtime
    runner.run("digit_pairs", "smoke", {"lr": 0.25}, root=root, progress=False)  # new parameters: rerun
    assert json.loads((root / "book" / "results" / "digit_pairs.json").read_text())["metrics"] == {"lr": 0.25}


def test_failed_notebook_leaves_the_book_untouched(tmp_path):
    root = make_project(tmp_path, body="raise ValueError('boom')")
    with pytest.raises(RuntimeError, match="ValueError: boom"):
        runner.run("digit_pairs", "smoke", root=root, progress=False)
    assert not (root / "book" / "results").exists() and not (root / "book" / "executed").exists()


def test_notebook_without_results_is_an_error(tmp_path):
    root = make_project(tmp_path, body="pass")
    with pytest.raises(RuntimeError, match="wrote no results"):
        runner.run("digit_pairs", "smoke", root=root, progress=False)


def test_cli_reports_bad_input_with_exit_code_2():
    out = subprocess.run([sys.executable, "-m", "lastlayer", "run", "nope"], capture_output=True, text=True)
    assert out.returncode == 2 and "unknown paper 'nope'" in out.stderr
    out = subprocess.run([sys.executable, "-m", "lastlayer", "run", "digit_pairs", "-p", "rounds", "many"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "'rounds' expects int" in out.stderr
