"""The results contract: what a notebook's Report writes and what the runner accepts."""
import json
import os

import pytest

from lastlayer.book.report import CLAIM_KEYS, REQUIRED_KEYS, VERDICTS, Report, validate, write_json_atomic
from lastlayer.claims import Claim

ABOVE = Claim(id="acc-above-half", statement="Accuracy is above one half.", paper="0.9",
              estimand="mean test accuracy over runs", rule="threshold", parameters={"threshold": 0.5, "side": "above"})
UNTESTABLE = Claim(id="needs-gpu", statement="ImageNet accuracy is 76%.", paper="76%", estimand="top-1 accuracy",
                   rule="not testable", parameters={"reason": "needs ImageNet and a GPU"})


def report_with_claims(monkeypatch) -> Report:
    r = Report("digit_pairs", {"epochs": 2}, "cpu")
    r.add(ABOVE, ABOVE.decide([0.9, 0.92, 0.91]))
    r.add(UNTESTABLE, UNTESTABLE.decide())
    r.add_runs([{"run": 0, "acc": 0.9}, {"run": 1, "acc": 0.92}, {"run": 2, "acc": 0.91}])
    return r


def test_report_follows_the_contract(tmp_path, monkeypatch):
    r = report_with_claims(monkeypatch)
    r.metrics["acc"] = float("nan")  # JSON has no NaN: stored as null
    data = json.loads(r.save(tmp_path).read_text())
    # the kernel writes what it measured; the runner alone adds the provenance, so the kernel's file lacks it
    assert {"profile", "parameters", "commit", "seconds"} & set(data) == set()
    assert validate(data) == [f"missing key {k!r}" for k in ("profile", "parameters", "commit", "seconds")]
    data.update(profile="smoke", parameters={"epochs": 2}, commit="abc", seconds=1.0)
    assert validate(data) == [] and set(REQUIRED_KEYS) <= set(data)
    assert data["metrics"]["acc"] is None and len(data["runs"]) == 3
    above, untestable = data["claims"]
    assert set(CLAIM_KEYS) <= set(above) and above["verdict"] == "reproduced" and above["n"] == 3
    assert above["interval"][0] < above["estimate"] < above["interval"][1]
    assert above["rule"] == "threshold" and above["rule_parameters"] == {"threshold": 0.5, "side": "above"}
    assert above["declaration_hash"] == ABOVE.declaration_hash and above["setting"] == "paper setup"
    assert untestable["verdict"] == "not testable" and untestable["estimate"] is None
    with pytest.raises(ValueError, match="added twice"):
        r.add(ABOVE, ABOVE.decide([0.9, 0.8]))


@pytest.mark.parametrize("key", ["estimate", "interval", "n", "rule", "rule_parameters", "declaration_hash",
                                 "setting", "verdict"])
def test_a_claim_missing_a_field_breaks_the_contract(monkeypatch, key):
    data = report_with_claims(monkeypatch).to_dict()
    del data["claims"][0][key]
    assert f"claim 'acc-above-half': missing {key!r}" in validate(data)


@pytest.mark.parametrize("key,value,message", [
    ("verdict", "sort of", "verdict 'sort of' not in"),
    ("verdict", "reproduced-ish", "not in"),
    ("n", -1, "n must be a count"),
    ("n", 2.5, "n must be a count"),
    ("interval", [0.1], "interval must be"),
    ("estimate", "high", "estimate must be"),
    ("rule_parameters", [1], "rule_parameters must be a mapping"),
    ("criterion", "", "empty 'criterion'"),
    ("declaration_hash", "", "empty 'declaration_hash'"),
])
def test_validate_finds_broken_claims(monkeypatch, key, value, message):
    data = report_with_claims(monkeypatch).to_dict()
    data["claims"][0][key] = value
    assert any(message in p for p in validate(data))


def test_validate_needs_every_top_level_key_and_runs_as_rows(monkeypatch):
    assert "missing key 'runs'" in validate({"paper": "x", "claims": []})
    data = report_with_claims(monkeypatch).to_dict()
    data["runs"] = [0.9, 0.8]
    assert "'runs' must be a list of per-run dicts" in validate(data)
    assert set(VERDICTS) == {"reproduced", "partly", "inconclusive", "not reproduced", "not testable"}


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "r.json"
    write_json_atomic(target, {"a": 1})
    with pytest.raises(TypeError):
        write_json_atomic(target, {"a": object()})
    assert json.loads(target.read_text()) == {"a": 1}  # the old file is intact
    assert os.listdir(tmp_path) == ["r.json"]  # and no temporary is left behind


def test_results_files_are_readable_by_everyone(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_json_atomic(tmp_path / "r.json", {"a": 1})
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_rows_may_be_dataclasses():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Row:
        seed: int
        acc: float
    r = Report("digit_pairs", {}, "cpu")
    r.add_runs([Row(0, 0.5), {"seed": 1, "acc": 0.25}])
    assert r.runs == [{"seed": 0, "acc": 0.5}, {"seed": 1, "acc": 0.25}]


def test_commit_is_dirty_only_when_the_sources_changed(tmp_path):
    """A run that follows another finds the book's outputs changed: that does not make its code dirty."""
    import subprocess
    from lastlayer.book.report import git_commit
    git = lambda *a: subprocess.run(["git", *a], cwd=tmp_path, check=True, capture_output=True)
    git("init", "-q")
    for f in ("lastlayer/core.py", "book/results/x.json"):
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text("1\n")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    assert not git_commit(tmp_path).endswith("+dirty")
    (tmp_path / "book/results/x.json").write_text("2\n")
    assert not git_commit(tmp_path).endswith("+dirty")
    (tmp_path / "lastlayer/core.py").write_text("2\n")
    assert git_commit(tmp_path).endswith("+dirty")
