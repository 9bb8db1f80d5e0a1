"""Putting a run's outputs into the book safely: one run per paper at a time, both files or neither, nothing
of this machine on a page.

A page and its results file are a pair: the page shows the numbers the file holds. They are staged beside
their destinations and renamed one after the other; if the second rename fails the first is rolled back, so
a failure leaves both old files. Outputs that could not be installed are kept in `build/failed/`.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path


class BusyError(RuntimeError):
    """Another run of the same paper holds its lock."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _temp_beside(dst: Path) -> Path:
    """A fresh temporary file in dst's folder (so the rename is atomic), readable like any other file."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; the book's files are for every reader
    return Path(tmp)


def atomic_copy(src: Path, dst: Path) -> None:
    """Copy src over dst atomically, with a unique temporary name (concurrent copies do not collide)."""
    tmp = _temp_beside(dst)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def check_writable(*folders: Path) -> None:
    """Raise PermissionError naming the first folder where a file cannot be created (checked by trying:
    permissions alone do not tell for root or a read-only mount)."""
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-test.")
            os.close(fd)
            os.unlink(probe)
        except OSError as e:
            raise PermissionError(f"{folder} is not writable ({e.strerror or e})") from None


def install_pair(files: dict[Path, Path]) -> None:
    """Move {staged source: destination} into place as a pair: all or none of the destinations change."""
    staged, backups, done = {}, [], []
    try:
        for src, dst in files.items():
            tmp = _temp_beside(dst)
            staged[tmp] = dst
            shutil.copyfile(src, tmp)
        for tmp, dst in staged.items():
            backup = None
            if dst.exists():
                backup = _temp_beside(dst)
                backups.append(backup)
                shutil.copy2(dst, backup)
            os.replace(tmp, dst)
            done.append((dst, backup))
    except BaseException:
        for dst, backup in reversed(done):  # roll back what was already renamed
            if backup is not None:
                os.replace(backup, dst)
            else:
                dst.unlink(missing_ok=True)
        for tmp in staged:
            tmp.unlink(missing_ok=True)
        raise
    finally:
        for backup in backups:
            backup.unlink(missing_ok=True)


def keep_failed(root: Path, paper: str, notebook: Path | None, results: dict | None) -> Path:
    """Keep a run's outputs in build/failed/ (never the book) and return the folder."""
    folder = root / "build" / "failed"
    folder.mkdir(parents=True, exist_ok=True)
    if notebook is not None and notebook.exists():
        atomic_copy(notebook, folder / f"{paper}.ipynb")
    if results is not None:
        tmp = _temp_beside(folder / f"{paper}.json")
        tmp.write_text(json.dumps(results, indent=1, default=str) + "\n")
        os.replace(tmp, folder / f"{paper}.json")
    return folder


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def _open_locked(path: Path, paper: str):
    """Open and flock the lock file; the file opened must still be the one at `path` (a previous holder deletes
    it on release: a flock taken on the deleted file would lock nothing), else try again."""
    while True:
        f = open(path, "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            f.close()
            raise BusyError(f"{paper} is already being run (process {holder}, lock {path}); wait for it to "
                            f"finish, or stop it") from None
        try:
            same = os.stat(path).st_ino == os.fstat(f.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return f
        f.close()


@contextlib.contextmanager
def paper_lock(root: Path, paper: str):
    """Hold build/locks/<paper>.lock for the duration of a run; a second run of the same paper fails at once.

    The lock is an flock, which the system releases when its process ends however it ends; the file holds the
    pid for the message and is deleted on release. A file left by a killed run (kill -9, a crash of the machine)
    is taken over, saying so."""
    path = root / "build" / "locks" / f"{paper}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    f = _open_locked(path, paper)
    try:
        f.seek(0)
        stale = f.read().strip()
        if stale and stale != str(os.getpid()):
            why = ("which is no longer running" if not stale.isdigit() or not _pid_alive(int(stale))
                   else "which no longer holds it")
            print(f"{paper}: taking over the lock {path} left by process {stale}, {why}", flush=True)
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        yield
    finally:
        path.unlink(missing_ok=True)  # while still holding it: whoever opens the path next makes a new file
        f.close()  # releases the flock


@contextlib.contextmanager
def book_lock(root: Path):
    """Hold build/locks/book.lock: the runner while it installs a paper's pair and regenerates the pages, the HTML
    build while it builds. A build that starts during a run's install waits for it, and a run that finishes during
    a build waits to install, so the HTML never shows a paper's new notebook beside its old results. Blocking: each
    holder is short (an install) or bounded (a build of about a minute)."""
    import fcntl
    path = Path(root) / "build" / "locks" / "book.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# ------------------------------------------------------------------ what an executed notebook may show
def output_problems(nb: dict) -> list[str]:
    """Cells whose outputs would break the book: anything on stderr (warnings fail the -W build) and errors."""
    problems = []
    for i, cell in enumerate(nb["cells"]):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                text = "".join(out.get("text", "")).strip().splitlines()
                problems.append(f"cell {i} ({_first_line(cell)}) wrote to stderr: {text[0] if text else ''}")
            elif out.get("output_type") == "error":
                problems.append(f"cell {i} ({_first_line(cell)}) shows an error: {out.get('ename')}: "
                                f"{out.get('evalue')}")
            glued = out.get("metadata", {}).get("scrapbook", {}).get("name")
            text = out.get("data", {}).get(GLUE_TEXT, "")
            if glued and text and _number_like(text) is False:
                problems.append(f"cell {i} ({_first_line(cell)}) glues {glued!r} as {text[:40]!r}, which the book "
                                f"cannot format as a number (glue a Python int or float)")
        figure = cell.get("metadata", {}).get("mystnb", {}).get("figure")
        if figure and not any(k.startswith("image/") for o in cell.get("outputs", []) for k in o.get("data", {})):
            problems.append(f"cell {i} ({_first_line(cell)}) is the figure {figure.get('name', '')!r} but drew no "
                            f"image (a non-interactive matplotlib backend, e.g. MPLBACKEND=Agg, shows none)")
    return problems


GLUE_TEXT = "application/papermill.record/text/plain"


def _number_like(text: str) -> bool | None:
    """None for plain text; True for a number the book can format; False for a number it cannot (the repr of
    a NumPy scalar, 'np.float64(0.5)', which myst-nb's {glue:text}`name:.1f` fails on)."""
    if text.startswith(("np.", "numpy.")) and text.endswith(")"):
        return False
    return None


def _first_line(cell: dict) -> str:
    src = "".join(cell.get("source", "")).strip().splitlines()
    return repr(src[0][:60]) if src else "empty"


def machine_paths(root: Path, *extra: Path, absolute: bool = False) -> list[tuple[str, str]]:
    """(absolute path, what a page shows instead), longest first: the run's own folders, the project, the
    Python environment and the home folder. `absolute` gives placeholders that still look like absolute
    paths (for references that nbval's sanitizer compares with a new run's real paths)."""
    names = {"results": "book/results", "project": ".", "python": "<python>", "home": "~"}
    if absolute:
        names = {k: f"/{k}" for k in names}
    pairs = [(str(p), names["results"]) for p in extra]
    pairs += [(str(root.resolve()), names["project"]), (str(root), names["project"]),
              (sys.prefix, names["python"]), (sys.base_prefix, names["python"]), (str(Path.home()), names["home"])]
    seen, out = set(), []
    for path, repl in sorted(pairs, key=lambda p: -len(p[0])):
        if path not in seen and len(path) > 1:
            seen.add(path)
            out.append((path, repl))
    return out


def scrub(text: str, pairs: list[tuple[str, str]]) -> str:
    for path, repl in pairs:
        text = text.replace(path, repl)
    return text
