"""The run cache: same call and code -> loaded, not trained; resumable after a kill; deadlines."""
import functools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lastlayer.training import cache
from lastlayer.training.cache import DeadlineReached, cached_run, cached_runs, fingerprint
from tests.helpers.slow_runs import failing_run, meeting_run, one_run

ROOT = Path(__file__).resolve().parent.parent
CALLS = []


def square(x, k=1):
    CALLS.append(x)
    return {"y": x * x * k}


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(cache.DEADLINE_ENV, raising=False)
    CALLS.clear()
    return tmp_path / "cache"


def test_second_call_loads(store):
    assert cached_run(square, 3, k=2) == {"y": 18}
    assert cached_run(square, 3, k=2) == {"y": 18}
    assert CALLS == [3]
    cached_run(square, 3, k=3)  # other arguments: a new run
    assert CALLS == [3, 3]


def test_code_change_invalidates(store, monkeypatch):
    cached_run(square, 2)
    monkeypatch.setattr(cache, "code_hash", lambda paper: "changed")
    cached_run(square, 2)
    assert CALLS == [2, 2]


def test_cache_off_always_runs(store, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV, "off")
    cached_run(square, 4)
    cached_run(square, 4)
    assert CALLS == [4, 4]


def test_deadline_stops_only_runs_that_must_train(store, monkeypatch):
    cached_run(square, 5)
    monkeypatch.setenv(cache.DEADLINE_ENV, str(time.time() - 1))
    assert cached_run(square, 5) == {"y": 25}  # stored: loads despite the deadline
    with pytest.raises(DeadlineReached, match="rerun the same command"):
        cached_run(square, 6)
    assert CALLS == [5]


def test_fingerprint_is_by_value_and_stable_across_processes():
    t = torch.arange(12.0).reshape(3, 4)
    assert fingerprint(t) == fingerprint(t.clone())
    assert fingerprint(t) != fingerprint(t + 1)
    assert fingerprint(t) != fingerprint(t.double())
    code = "import torch; from lastlayer.training.cache import fingerprint; print(fingerprint(torch.arange(12.0).reshape(3, 4)))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert other == fingerprint(t)
    with pytest.raises(TypeError, match="cannot fingerprint"):
        fingerprint(object())
    with pytest.raises(TypeError, match="lambda"):
        fingerprint(lambda: 1)
    assert fingerprint(functools.partial(square, k=2)) == fingerprint(functools.partial(square, k=2))
    assert fingerprint(functools.partial(square, k=2)) != fingerprint(functools.partial(square, k=3))


def test_killed_profile_resumes_repeating_at_most_one_run(tmp_path):
    """Kill a four-run profile while its third run is in progress; the rerun repeats only that run."""
    log = tmp_path / "log"
    env = {**os.environ, cache.CACHE_ENV: str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "tests.helpers.slow_runs", str(log), "1.0"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and "start 2" not in (log.read_text() if log.exists() else ""):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert "end 1" in log.read_text() and "end 3" not in log.read_text()
    resumed = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    starts = [line.split()[1] for line in log.read_text().splitlines() if line.startswith("start")]
    assert starts.count("0") == 1 and starts.count("1") == 1  # finished runs were loaded
    assert starts.count("2") == 2 and starts.count("3") == 1  # only the run in progress was repeated
    fresh = subprocess.run(cmd[:-2] + [str(tmp_path / "log2"), "0"], cwd=ROOT,
                           env={**env, cache.CACHE_ENV: "off"}, capture_output=True, text=True, check=True)
    assert resumed.stdout == fresh.stdout  # the resumed profile gives the numbers of an uninterrupted one


def test_runs_train_in_worker_processes_and_load_in_order(store, tmp_path, monkeypatch):
    log = tmp_path / "log"
    calls = [functools.partial(one_run, seed, str(log), 0.3) for seed in range(4)]
    monkeypatch.setenv(cache.WORKERS_ENV, "2")
    results = cached_runs(calls)
    assert [r["seed"] for r in results] == [0, 1, 2, 3]
    starts = [line.split() for line in log.read_text().splitlines() if line.startswith("start")]
    assert sorted(s for _, s, _ in starts) == ["0", "1", "2", "3"]  # each run trained once ...
    assert str(os.getpid()) not in {pid for *_, pid in starts}  # ... by the workers
    monkeypatch.setenv(cache.CACHE_ENV, "off")
    alone = [one_run(seed, str(tmp_path / "log2"), 0) for seed in range(4)]
    assert all(torch.equal(r["w"], a["w"]) for r, a in zip(results, alone))  # what one process computes
    monkeypatch.setenv(cache.CACHE_ENV, str(store))
    monkeypatch.setenv(cache.DEADLINE_ENV, str(time.time() - 1))
    assert [r["seed"] for r in cached_runs(calls)] == [0, 1, 2, 3]  # all stored: loads past the deadline
    assert len(log.read_text().splitlines()) == 8


def test_workers_train_at_the_same_time(store, tmp_path):
    log = tmp_path / "log"
    start = time.time()
    assert cached_runs([functools.partial(meeting_run, seed, str(log)) for seed in range(2)], n_workers=2) == [0, 1]
    assert time.time() - start < 50  # neither run waited out its minute: both were in progress at once


def test_worker_errors_and_deadlines_reach_the_caller(store, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="run 2 failed"):
        cached_runs([functools.partial(failing_run, seed) for seed in range(4)], n_workers=2)
    assert cache.is_cached(functools.partial(failing_run, 1))  # a run finished before the error stays stored
    monkeypatch.setenv(cache.DEADLINE_ENV, str(time.time() - 1))
    with pytest.raises(DeadlineReached, match="one_run"):  # no worker starts after the deadline
        cached_runs([functools.partial(one_run, seed, str(tmp_path / "log"), 0) for seed in range(3)], n_workers=2)
    assert not (tmp_path / "log").exists()
    with pytest.raises(TypeError, match="functools.partial"):
        cached_runs([one_run])
    monkeypatch.setenv(cache.WORKERS_ENV, "two")
    with pytest.raises(ValueError, match="LASTLAYER_WORKERS must be a whole number"):
        cached_runs([functools.partial(failing_run, 1)])
