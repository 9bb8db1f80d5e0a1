"""Stopping a run: SIGTERM and SIGINT shut the kernel down and say so in one line (exit 143 / 130), the book and
the lock are left as before the run; a lock file left by a killed run is taken over, saying so."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lastlayer.book import install, runner

from .test_runner import SAVE, make_project


def cli_process(root: Path, *args: str, env: dict | None = None, **kw) -> subprocess.Popen:
    """`python -m lastlayer ARGS` for the project at `root` (the command line's main, with its root there)."""
    code = (f"import sys; from pathlib import Path; from lastlayer.book import cli\n"
            f"cli.default_root = lambda: Path({str(root)!r})\ncli.main(sys.argv[1:])")
    return subprocess.Popen([sys.executable, "-c", code, *args], env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_run_in_one_line_and_leaves_nothing_behind(tmp_path, signum):
    started = tmp_path / "kernel.pid"
    body = (f"import os, time\nopen({str(started)!r}, 'w').write(str(os.getpid()))\ntime.sleep(120)\n" + SAVE)
    root = make_project(tmp_path, body=body)
    tmp, runtime = tmp_path / "tmp", tmp_path / "runtime"
    tmp.mkdir()
    runtime.mkdir()
    proc = cli_process(root, "run", "digit_pairs", "--profile", "smoke",
                       env={"TMPDIR": str(tmp), "JUPYTER_RUNTIME_DIR": str(runtime)})
    deadline = time.time() + 90
    while not started.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert started.exists(), proc.communicate()
    time.sleep(1)  # the kernel is inside its cell
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, (out, err)
    assert err.strip().splitlines() == [f"stopped by {signal.Signals(signum).name}: the kernel was shut down and "
                                        f"the book was not changed"], err
    assert "Traceback" not in out + err and "ZMQError" not in out + err
    assert not list((root / "book").rglob("*.*")), "the book is untouched"
    assert not (root / "build" / "locks" / "digit_pairs.lock").exists()
    assert list(tmp.iterdir()) == [] and list(runtime.glob("kernel-*.json")) == []
    kernel = int(started.read_text())
    for _ in range(50):  # the kernel process is gone (a zombie of a dead parent is reaped by init)
        try:
            os.kill(kernel, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the kernel (process {kernel}) is still running")


def test_a_finished_run_leaves_no_lock_and_a_stale_lock_is_taken_over(tmp_path, capsys):
    root = make_project(tmp_path)
    lock = root / "build" / "locks" / "digit_pairs.lock"
    runner.run("digit_pairs", "smoke", root=root, progress=False)
    assert not lock.exists()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock.write_text(f"{dead.pid}\n")  # what a run killed with SIGKILL leaves: its pid, no flock held
    capsys.readouterr()
    runner.run("digit_pairs", "smoke", root=root, progress=False, force=True)
    assert (f"digit_pairs: taking over the lock {lock} left by process {dead.pid}, which is no longer running"
            in capsys.readouterr().out)
    assert not lock.exists()


def test_a_held_lock_is_still_refused_and_outlives_a_deleted_file(tmp_path):
    """The lock file is deleted on release: a run that opened it just before must not lock the deleted file."""
    root = make_project(tmp_path)
    with install.paper_lock(root, "digit_pairs"):
        with pytest.raises(install.BusyError, match=f"process {os.getpid()}"):
            with install.paper_lock(root, "digit_pairs"):
                pass
    lock = root / "build" / "locks" / "digit_pairs.lock"
    opened = open(lock, "a+")  # a late opener of the old file ...
    lock.unlink()  # ... which its holder then deletes on release
    import fcntl
    fcntl.flock(opened, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the late opener holds an flock on the deleted file
    with install.paper_lock(root, "digit_pairs"):  # a fresh file: not blocked by the orphan, and ...
        with pytest.raises(install.BusyError):  # ... it excludes a third run
            with install.paper_lock(root, "digit_pairs"):
                pass
    opened.close()
