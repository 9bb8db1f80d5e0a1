"""`--cluster`: the runs of a notebook trained on a real Dask LocalCluster give the results file of one process,
and a cluster setting that cannot work is refused before anything runs."""
import json
import os
import subprocess
import sys

import pytest

from lastlayer.book import runner
from lastlayer.book.runner import RunnerError

from .conftest import ROOT
from .test_runner import make_project

RUNS = """import functools
from lastlayer.training.cache import cached_runs
from tests.helpers.slow_runs import one_run
runs = cached_runs([functools.partial(one_run, s, "log", 0) for s in range(4)])
report.add_runs([{"seed": r["seed"], "w": float(r["w"].sum())} for r in runs])
report.save()"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the kernel and the cluster's workers import tests.helpers
    monkeypatch.delenv("LASTLAYER_DEADLINE", raising=False)
    return make_project(tmp_path, body=RUNS)


def test_workers_and_a_cluster_give_the_results_of_one_process(project, monkeypatch, tmp_path):
    results = {}
    for name, kw in {"one process": {"workers": 1}, "workers": {"workers": 2}, "dask": {"cluster": "local:2"}}.items():
        monkeypatch.setenv("LASTLAYER_CACHE", str(tmp_path / f"cache {name}"))
        results[name] = runner.run("digit_pairs", "smoke", root=project, progress=False, force=True, **kw)
    one, dask = results["one process"], results["dask"]
    assert dask["cluster"] == "local:2" and one["cluster"] is None and results["workers"]["workers"] == 2
    assert [r["seed"] for r in dask["runs"] if "seed" in r] == [0, 1, 2, 3]
    same = lambda r: {k: v for k, v in r.items() if k not in ("cluster", "workers", "seconds", "chunks", "rule_changes")}
    assert same(dask) == same(one) == same(results["workers"])
    log = (project / "notebooks" / "log").read_text().splitlines()
    assert len(log) == 24  # each run trained once per backend (start and end lines) ...
    pids = {line.split()[2] for line in log if line.startswith("start")}
    assert len(pids) >= 3  # ... by the kernel, then by worker processes


@pytest.mark.parametrize("kw,message", [({"cluster": "local:x"}, "expected local:N"),
                                        ({"cluster": "local:2", "workers": 2}, "choose one"),
                                        ({"cluster": "slurm"}, "needs its settings in")])
def test_a_bad_cluster_is_refused_before_anything_runs(project, kw, message, monkeypatch):
    monkeypatch.delenv("LASTLAYER_CLUSTER_CONFIG", raising=False)
    with pytest.raises(RunnerError, match=message):
        runner.run("digit_pairs", "smoke", root=project, progress=False, **kw)
    assert not (project / "book" / "results").exists()


def test_the_command_line_refuses_a_bad_cluster_with_exit_2():
    out = subprocess.run([sys.executable, "-m", "lastlayer", "run", "geometry", "--cluster", "nowhere"], cwd=ROOT,
                         capture_output=True, text=True, env={**os.environ})
    assert out.returncode == 2 and "--cluster 'nowhere': expected local:N" in out.stderr
