"""The run cache: every training run stored on disk, keyed by what determines it.

    from lastlayer.training.cache import cached_run
    result = cached_run(train_one, arm, seed, train, test, config)   # trains, or loads the stored result

A run's key is the function (module and name), its arguments (hashed by value: tensors, arrays, dataclasses),
the code of the library's core and of the function's paper package, the torch version and the device kind.
Change any of them and the run trains again; change nothing and a rerun of a notebook loads instead of training.
Because each finished run is stored the moment it ends, a paper profile stopped at any point resumes losing at
most the run in progress.

Independent runs (the seeds and arms of one experiment) can train several at once:

    runs = cached_runs([functools.partial(train_one, arm, seed, train, test, config) for arm in arms ...])

in local worker processes (`run --workers N`) or on a Dask cluster (`run --cluster ...`): `lastlayer.training.
fanout`. Each worker stores its runs and the caller loads them from the store, so the result is the same list,
in the same order, as one run after another. That pays on a GPU, where one small model cannot keep the card
busy, and wherever one machine is not enough.

The store is a folder, `$LASTLAYER_CACHE` (default `build/cache` in the project's folder; `off` disables it),
which may be on a file system that workers on other machines share. One file per run, `runs/<k>/<key>.pt`: a
header with the SHA-256 of the payload (torch's serialisation of the result). A file is written to a temporary
name beside its place and renamed into it, so two workers finishing the same run leave one whole entry, and a
full disk or a killed process leaves none. An entry whose checksum or load fails is reported with its key,
removed and trained again: the cache never returns what it cannot verify.

`$LASTLAYER_DEADLINE` (a unix time, set by `python -m lastlayer run --max-minutes`) makes a run that would have
to train after that moment raise `DeadlineReached` instead, so a long profile can be executed in chunks that each
fit a time limit: finished runs are loaded, the next missing one stops the notebook, and the same command run
again continues from there.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import time
from pathlib import Path

import torch

from lastlayer.environment import CACHE_ENV, DEADLINE_ENV, WORKERS_ENV
from lastlayer.provenance import PACKAGE_DIR, code_hash


class DeadlineReached(RuntimeError):
    """The time budget of this chunk is spent; rerun the same command to continue from the cached runs."""


def _paper_of(fn) -> str | None:
    parts = getattr(fn, "__module__", "").split(".")
    return parts[2] if len(parts) > 2 and parts[:2] == ["lastlayer", "papers"] else None


def fingerprint(obj) -> str:
    """A hash of `obj` by value that is the same in every process. (Pickling a tensor is not: joblib's own
    hash of a tensor changes from one process to the next, so tensors are hashed through their bytes.)"""
    h = hashlib.sha256()
    _feed(h, obj)
    return h.hexdigest()


def _feed(h, obj) -> None:
    import dataclasses

    import numpy as np
    if isinstance(obj, torch.nn.Module):
        h.update(f"module:{type(obj).__qualname__}".encode())
        _feed(h, obj.state_dict())
    elif isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"tensor:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(obj, np.ndarray):
        h.update(f"array:{obj.dtype}:{obj.shape}".encode())
        h.update(np.ascontiguousarray(obj).tobytes())
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        h.update(f"dataclass:{type(obj).__module__}.{type(obj).__qualname__}".encode())
        _feed(h, {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)})
    elif isinstance(obj, dict):
        h.update(f"dict:{len(obj)}".encode())
        for k in sorted(obj, key=repr):
            _feed(h, k)
            _feed(h, obj[k])
    elif isinstance(obj, (list, tuple)):
        h.update(f"{type(obj).__name__}:{len(obj)}".encode())
        for v in obj:
            _feed(h, v)
    elif obj is None or isinstance(obj, (bool, int, float, str, bytes, torch.dtype, torch.device)):
        h.update(f"{type(obj).__name__}:{obj!r}".encode())
    elif isinstance(obj, functools.partial):
        h.update(b"partial:")
        _feed(h, (obj.func, obj.args, obj.keywords))
    elif callable(obj) and hasattr(obj, "__qualname__") and "<" not in obj.__qualname__:
        h.update(f"callable:{obj.__module__}.{obj.__qualname__}".encode())  # importable by name: its code is hashed
    else:
        raise TypeError(f"cached_run cannot fingerprint {obj!r}: pass tensors, arrays, dataclasses, containers, "
                        f"scalars, module-level functions or functools.partial of them (a lambda or a local "
                        f"function has no name that says what it computes)")


MAGIC = b"lastlayer-run 1\n"


class CacheError(OSError):
    """A run could not be stored (a full disk, a read-only folder); the message names the run and the folder."""


def entry_path(location: Path, key: str) -> Path:
    return Path(location) / "runs" / key[:2] / f"{key}.pt"


def _load(location: Path, key: str):
    """(True, result) for a verified entry; (False, None) when there is none or it is corrupt (then removed)."""
    import io
    path = entry_path(location, key)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return False, None
    why = None
    head, digest = data[:len(MAGIC)], data[len(MAGIC):len(MAGIC) + 64]
    payload = data[len(MAGIC) + 65:]
    if head != MAGIC or len(data) < len(MAGIC) + 65:
        why = "not a run entry"
    elif hashlib.sha256(payload).hexdigest().encode() != digest:
        why = "checksum mismatch: truncated or changed"
    else:
        try:
            return True, torch.load(io.BytesIO(payload), weights_only=False)
        except Exception as e:  # noqa: BLE001 - any failure to unpickle means the entry cannot be trusted
            why = f"cannot be loaded: {type(e).__name__}: {e}"
    # stdout, not stderr: a warning on stderr would keep the chapter out of the book; the rerun is the remedy
    print(f"run cache: the stored run {key[:16]} is corrupt ({why}); it is trained again", flush=True)
    path.unlink(missing_ok=True)
    return False, None


def _store(location: Path, key: str, result) -> None:
    import io
    import uuid
    buffer = io.BytesIO()
    torch.save(result, buffer)
    payload = buffer.getvalue()
    path = entry_path(location, key)
    tmp = path.parent / f".{key}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic: readers see the old state or the whole entry
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise CacheError(e.errno, f"could not store the run {key[:16]} in {location}: {e.strerror or e}") from None


def cache_dir() -> Path | None:
    """$LASTLAYER_CACHE, else `build/cache` of the project holding this package (a notebook may run in any
    folder: the runner executes it in a temporary one), else of the working folder."""
    value = os.environ.get(CACHE_ENV)
    if value is None:
        project = PACKAGE_DIR.parent
        return (project if (project / "notebooks").is_dir() else Path.cwd()) / "build" / "cache"
    return None if value.lower() in ("off", "0", "none", "") else Path(value).expanduser().resolve()


def deadline() -> float | None:
    value = os.environ.get(DEADLINE_ENV)
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{DEADLINE_ENV} must be a unix time in seconds, not {value!r}") from None


def _key(fn, args, kwargs, device_kind: str | None) -> str:
    if device_kind is None:
        device_kind = "cuda" if torch.cuda.is_available() else "cpu"
    return fingerprint((f"{fn.__module__}.{fn.__qualname__}", code_hash(_paper_of(fn)), torch.__version__,
                        device_kind, args, kwargs))


def cached_run(fn, *args, device_kind: str | None = None, **kwargs):
    """`fn(*args, **kwargs)`, or its stored result when the same call with the same code ran before.

    `device_kind` ('cpu', 'cuda', ...) enters the key: results from another kind of device are not reused
    (floating point differs). By default it is the kind torch would pick ('cuda' when available)."""
    location = cache_dir()
    if location is None:
        _check_deadline(fn, deadline())
        return fn(*args, **kwargs)
    key = _key(fn, args, kwargs, device_kind)
    found, result = _load(location, key)
    if found:
        return result
    _check_deadline(fn, deadline())
    result = fn(*args, **kwargs)
    _store(location, key, result)
    return result


def store_run(call: functools.partial, location: Path, limit: float | None, threads: int | None = None) -> bool:
    """Train one run into the store at `location` unless it is there: what a worker executes. A run that would
    start after `limit` is skipped (False); the caller's loading pass names it. Nothing but an error travels
    back: the caller loads the result from the store."""
    if threads:
        torch.set_num_threads(threads)
    key = _key(call.func, call.args, call.keywords, None)
    if _load(location, key)[0]:
        return True
    if limit is not None and time.time() > limit:
        return False
    _store(location, key, call.func(*call.args, **call.keywords))
    return True


def is_cached(call: functools.partial) -> bool:
    """Whether `cached_run(call.func, *call.args, **call.keywords)` would load rather than train."""
    location = cache_dir()
    return location is not None and entry_path(location, _key(call.func, call.args, call.keywords, None)).exists()


def cached_runs(calls, n_workers: int | None = None) -> list:
    """`[cached_run(c.func, *c.args, **c.keywords) for c in calls]` for `functools.partial` calls, with the runs
    that must train trained by the environment's backend (`lastlayer.training.fanout`: in this process, local
    worker processes, or a Dask cluster); `n_workers` > 1 asks for that many local processes.

    The workers store every finished run; the list is then loaded from the store in order, so it is the one a
    single process computes. Without a cache (`LASTLAYER_CACHE=off`) the runs go one after another here. A run
    that fails on a worker raises `fanout.RunFailed` with its key and the worker's traceback; at the deadline the
    runs in progress finish and are stored, and `DeadlineReached` names the first run still missing."""
    from lastlayer.training import fanout
    calls = list(calls)
    for c in calls:
        if not isinstance(c, functools.partial):
            raise TypeError(f"cached_runs takes functools.partial calls, not {c!r}")
    kind, _ = fanout.backend()  # checks the environment's settings even when nothing is left to train
    location = cache_dir()
    if location is not None and (kind != "inline" or (n_workers or 1) > 1):
        keys = [_key(c.func, c.args, c.keywords, None) for c in calls]
        missing = [(c, k) for c, k in zip(calls, keys) if not entry_path(location, k).exists()]
        limit = deadline()
        if len(missing) > 1 and (limit is None or time.time() < limit):
            with _workers(n_workers):
                fanout.train_all([c for c, _ in missing], store_run, location, limit, [k for _, k in missing])
    return [cached_run(c.func, *c.args, **c.keywords) for c in calls]


@contextlib.contextmanager
def _workers(n: int | None):
    """`n_workers` given by a caller: that many local processes, whatever the environment says."""
    if not n:
        yield
        return
    saved = os.environ.get(WORKERS_ENV)
    os.environ[WORKERS_ENV] = str(n)
    try:
        yield
    finally:
        os.environ.pop(WORKERS_ENV) if saved is None else os.environ.__setitem__(WORKERS_ENV, saved)


def _check_deadline(fn, limit: float | None) -> None:
    if limit is not None and time.time() > limit:
        raise DeadlineReached(f"time budget spent before {getattr(fn, '__qualname__', fn)} could start; "
                              f"rerun the same command to continue (finished runs are cached)")
