"""The run cache: same call and code -> loaded, not trained; resumable after a kill; deadlines; a store that
cannot lie; one fan-out over three backends."""
import functools
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lastlayer.training import cache, fanout
from lastlayer.training.cache import DeadlineReached, cached_run, cached_runs, fingerprint
from lastlayer.training.fanout import RunFailed
from tests.helpers.slow_runs import big_run, failing_run, meeting_run, one_run

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
    with pytest.raises(RunFailed, match="(?s)run failing_run \\(key [0-9a-f]{16}\\) failed on a worker: ValueError: "
                                        "run 2 failed\nworker traceback:.*raise ValueError"):
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


# ------------------------------------------------------------------ a store that cannot lie
def test_a_corrupt_entry_is_reported_with_its_key_and_trained_again(store, capsys):
    assert cached_run(square, 7) == {"y": 49}
    key = cache._key(square, (7,), {}, None)
    path = cache.entry_path(store, key)
    payload = b"not a pickle"
    forged = cache.MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload
    damages = {"truncated": lambda b: b[:len(b) // 2], "a flipped bit": lambda b: b[:-1] + bytes([b[-1] ^ 1]),
               "another file": lambda b: b"junk", "a payload that does not load": lambda b: forged}
    for what, damage in damages.items():
        path.write_bytes(damage(path.read_bytes()))
        assert cached_run(square, 7) == {"y": 49}, what  # recomputed, never the damaged bytes
        out = capsys.readouterr().out
        assert f"the stored run {key[:16]} is corrupt" in out and "trained again" in out, what
    assert CALLS == [7] * 5 and cache._load(store, key) == (True, {"y": 49})


def test_two_processes_storing_the_same_run_leave_one_good_entry(store, tmp_path):
    """Both processes train the same run at once (they wait for each other inside it), then both store it."""
    log = tmp_path / "log"
    code = ("import sys; from lastlayer.training.cache import cached_run; from tests.helpers.slow_runs import "
            "meeting_run; print(cached_run(meeting_run, 0, sys.argv[1]))")
    env = {**os.environ, cache.CACHE_ENV: str(store), "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(log)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              text=True) for _ in range(2)]
    assert [p.communicate(timeout=120)[0].strip() for p in procs] == ["0", "0"]
    assert len({line.split()[2] for line in log.read_text().splitlines()}) == 2  # both trained it
    files = [f for f in store.rglob("*") if f.is_file()]
    key = cache._key(meeting_run, (0, str(log)), {}, None)
    assert files == [cache.entry_path(store, key)]  # one entry, no temporary file left
    assert cache._load(store, key) == (True, 0)


def test_a_full_disk_leaves_no_partial_entry_and_says_so(tmp_path, monkeypatch):
    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(small)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        monkeypatch.setenv(cache.CACHE_ENV, str(small))
        with pytest.raises(cache.CacheError, match=f"could not store the run [0-9a-f]{{16}} in {small}: No space"):
            cached_run(big_run, 100_000)  # 400 kB into 64 kB
        assert [f for f in small.rglob("*") if f.is_file()] == []
        assert cached_run(big_run, 10).shape == (10,)  # what fits is stored and loads
    finally:
        subprocess.run(["umount", str(small)], check=True)


# ------------------------------------------------------------------ one fan-out, three backends
def test_the_three_backends_give_the_list_of_one_process(tmp_path, monkeypatch):
    """In this process, in two local worker processes, and on a real Dask LocalCluster of two one-thread
    workers: the same results in the same order, trained by the workers, loaded here."""
    monkeypatch.delenv(cache.DEADLINE_ENV, raising=False)
    monkeypatch.delenv(fanout.CLUSTER_ENV, raising=False)
    results, trainers = {}, {}
    for name, env in {"inline": {}, "processes": {cache.WORKERS_ENV: "2"},
                      "dask": {fanout.CLUSTER_ENV: "local:2"}}.items():
        monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / name))
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        log = tmp_path / f"{name}.log"
        results[name] = cached_runs([functools.partial(one_run, seed, str(log), 0) for seed in range(4)])
        trainers[name] = {line.split()[2] for line in log.read_text().splitlines() if line.startswith("start")}
        for k in env:
            monkeypatch.delenv(k)
    assert trainers["inline"] == {str(os.getpid())}
    assert str(os.getpid()) not in trainers["processes"] | trainers["dask"]
    for name in ("processes", "dask"):
        assert [r["seed"] for r in results[name]] == [0, 1, 2, 3]
        assert all(torch.equal(a["w"], b["w"]) for a, b in zip(results[name], results["inline"])), name


def test_a_dask_worker_error_names_the_run_and_no_run_starts_after_the_deadline(store, tmp_path, monkeypatch):
    monkeypatch.setenv(fanout.CLUSTER_ENV, "local:2")
    with pytest.raises(RunFailed, match="(?s)run failing_run \\(key [0-9a-f]{16}\\) failed on a worker: "
                                        "ValueError: run 2 failed\nworker traceback:.*failing_run"):
        cached_runs([functools.partial(failing_run, seed) for seed in range(4)])
    monkeypatch.setenv(cache.DEADLINE_ENV, str(time.time() - 1))
    with pytest.raises(DeadlineReached, match="one_run"):
        cached_runs([functools.partial(one_run, seed, str(tmp_path / "log"), 0) for seed in range(3)])
    assert not (tmp_path / "log").exists()


@pytest.mark.parametrize("spec,message", [("local:0", "at least one worker"), ("localhost", "expected local:N"),
                                          ("slurm", "needs its settings in")])
def test_cluster_settings_are_checked_before_any_run(spec, message, tmp_path, monkeypatch):
    monkeypatch.delenv(fanout.CLUSTER_CONFIG_ENV, raising=False)
    with pytest.raises(fanout.ClusterError, match=message):
        fanout.check_cluster(spec, root=tmp_path)
    (tmp_path / "cluster.yml").write_text("jobs: 2\ncores: 4\nmemory: 16GB\nwalltime: '01:00:00'\n")
    assert fanout.slurm_settings(tmp_path) == {"jobs": 2, "cores": 4, "memory": "16GB", "walltime": "01:00:00"}
    assert fanout.check_cluster("tcp://10.0.0.1:8786") == "tcp://10.0.0.1:8786"


def test_progress_goes_to_a_file_the_command_line_reads(tmp_path, monkeypatch):
    """The fan-out's done/running/left reach the command line through a file, never the notebook's output."""
    import json
    monkeypatch.setenv(fanout.PROGRESS_ENV, str(tmp_path / "progress.json"))
    p = fanout.Progress(total=5, parallel=2)
    state = lambda: {k: v for k, v in json.loads((tmp_path / "progress.json").read_text()).items() if k != "time"}
    assert state() == {"done": 0, "running": 2, "left": 5}
    for _ in range(4):
        p.step()
    assert state() == {"done": 4, "running": 1, "left": 1}
    assert [f.name for f in tmp_path.iterdir()] == ["progress.json"]  # written whole, no temporary left
