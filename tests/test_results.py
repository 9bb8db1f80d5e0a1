import json
import os

import pytest

from lastlayer.book.report import Report, greater, mean_std, validate, verdict, write_json_atomic


def test_verdict_rule():
    assert verdict(True) == "reproduced" and verdict(True, partly=False) == "reproduced"
    assert verdict(False) == "not reproduced" and verdict(False, partly=True) == "partly"
    assert verdict(None) == "not testable" and verdict(None, partly=True) == "not testable"


def test_report_follows_the_contract(tmp_path, monkeypatch):
    monkeypatch.setenv("LASTLAYER_PROFILE", "smoke")
    r = Report("digit_pairs", {"epochs": 2}, "cpu")
    r.claim("a", "A beats B.", paper="0.9 > 0.8", ours="0.91 > 0.85", criterion="t-test", holds=False, partly=True)
    r.claim("b", "Needs a GPU.", paper="x", ours="not run", criterion="needs CIFAR", holds=None)
    r.metrics["acc"] = float("nan")  # JSON has no NaN: stored as null
    path = r.save(tmp_path)
    data = json.loads(path.read_text())
    assert validate(data) == []
    assert data["profile"] == "smoke" and data["metrics"]["acc"] is None
    assert [c["verdict"] for c in data["claims"]] == ["partly", "not testable"]
    with pytest.raises(ValueError, match="added twice"):
        r.claim("a", "again", paper="", ours="", criterion="", holds=True)


def test_validate_finds_broken_results():
    problems = validate({"paper": "x", "claims": [{"id": "c", "verdict": "sort of", "criterion": ""}]})
    assert any("missing key 'profile'" in p for p in problems)
    assert any("verdict 'sort of'" in p for p in problems) and any("empty 'criterion'" in p for p in problems)


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "r.json"
    write_json_atomic(target, {"a": 1})
    with pytest.raises(TypeError):
        write_json_atomic(target, {"a": object()})
    assert json.loads(target.read_text()) == {"a": 1}  # the old file is intact
    assert os.listdir(tmp_path) == ["r.json"]  # and no temporary is left behind


def test_statistics_helpers():
    assert mean_std([0.9, 1.0]) == "0.950 ± 0.071 (n=2)"
    assert greater([0.9, 0.91, 0.92], [0.5, 0.52, 0.51]) and not greater([0.5, 0.52, 0.51], [0.9, 0.91, 0.92])
    assert not greater([0.5, 0.9, 0.1], [0.5, 0.52, 0.4])  # noisy: not significant
    with pytest.raises(ValueError):
        greater([1.0], [0.0, 0.1])
