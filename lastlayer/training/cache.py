"""The run cache: every training run stored on disk, keyed by what determines it.

    from lastlayer.training.cache import cached_run
    result = cached_run(train_one, arm, seed, train, test, config)   # trains, or loads the stored result

A run's key is the function (module and name), its arguments (hashed by value: tensors, arrays, dataclasses),
the code of the library's core and of the function's paper package, the torch version and the device kind.
Change any of them and the run trains again; change nothing and a rerun of a notebook loads instead of training.
Because each finished run is stored the moment it ends, a paper profile stopped at any point resumes losing at
most the run in progress.

Independent runs (the seeds and arms of one experiment) can train several at once in worker processes:

    runs = cached_runs([functools.partial(train_one, arm, seed, train, test, config) for arm in arms ...])

with `$LASTLAYER_WORKERS` processes (`python -m lastlayer run --workers N`; default 1, one after another).
Each worker stores its runs in the cache and the caller loads them from there, so the result is the same list,
in the same order, as one run after another. That pays on a GPU, where one small model cannot keep the card
busy and the host's per-step overhead is the limit (several processes issue their kernels side by side); on a
CPU the cores are already shared by one run's threads, so the default stays 1 there.

Storage is `joblib.Memory` (maintained, hashes arguments by value, writes each result atomically — a killed
process never leaves half a result that a later run would load). The folder is `$LASTLAYER_CACHE`
(default `build/cache` in the project's folder); `LASTLAYER_CACHE=off` disables the cache.

`$LASTLAYER_DEADLINE` (a unix time, set by `python -m lastlayer run --max-minutes`) makes a run that would have
to train after that moment raise `DeadlineReached` instead, so a long profile can be executed in chunks that each
fit a time limit: finished runs are loaded, the next missing one stops the notebook, and the same command run
again continues from there.
"""
from __future__ import annotations

import functools
import hashlib
import os
import time
from functools import lru_cache
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


def _invoke(key, fn, args, kwargs):
    """What joblib stores; only `key` enters joblib's own hash (the arguments are in it already)."""
    return fn(*args, **kwargs)


@lru_cache(maxsize=None)
def _memorized(location: str):
    import joblib
    return joblib.Memory(location, verbose=0).cache(_invoke, ignore=["fn", "args", "kwargs"])


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


def workers() -> int:
    """How many runs `cached_runs` trains at once: $LASTLAYER_WORKERS, default 1."""
    value = os.environ.get(WORKERS_ENV, "1")
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"{WORKERS_ENV} must be a whole number of at least 1, not {value!r}")
    return n


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
        _check_deadline(fn)
        return fn(*args, **kwargs)
    key = _key(fn, args, kwargs, device_kind)
    memorized = _memorized(str(location))
    if not memorized.check_call_in_cache(key, fn, args, kwargs):
        _check_deadline(fn)
    return memorized(key, fn, args, kwargs)


def is_cached(call: functools.partial) -> bool:
    """Whether `cached_run(call.func, *call.args, **call.keywords)` would load rather than train."""
    location = cache_dir()
    return location is not None and _memorized(str(location)).check_call_in_cache(
        _key(call.func, call.args, call.keywords, None), call.func, call.args, call.keywords)


def cached_runs(calls, n_workers: int | None = None) -> list:
    """`[cached_run(c.func, *c.args, **c.keywords) for c in calls]` for `functools.partial` calls, with the runs
    that must train trained `n_workers` at a time (default `$LASTLAYER_WORKERS`) in worker processes.

    The workers store every finished run in the cache; the list is then loaded from it in order, so it is the
    one a single process computes. Without a cache (`LASTLAYER_CACHE=off`) the runs go one after another.
    An error in a worker stops the others' queue and is raised here; at the deadline the runs in progress finish
    and are stored, and `DeadlineReached` names the first run still missing."""
    calls = list(calls)
    for c in calls:
        if not isinstance(c, functools.partial):
            raise TypeError(f"cached_runs takes functools.partial calls, not {c!r}")
    n_workers = workers() if n_workers is None else n_workers
    if n_workers > 1 and cache_dir() is not None:
        missing = [c for c in calls if not is_cached(c)]
        limit = deadline()
        if len(missing) > 1 and (limit is None or time.time() < limit):
            _train_in_workers(missing, min(n_workers, len(missing)))
    return [cached_run(c.func, *c.args, **c.keywords) for c in calls]


def _worker_start(threads: int) -> None:
    torch.set_num_threads(threads)


def _worker_run(call: functools.partial) -> None:
    """Train and store one run; nothing travels back but an error (the caller loads from the cache)."""
    try:
        cached_run(call.func, *call.args, **call.keywords)
    except DeadlineReached:
        pass  # the caller's loading pass raises it, naming the first missing run


def _train_in_workers(calls: list, n_workers: int) -> None:
    import concurrent.futures as cf

    import torch.multiprocessing as tmp  # pickles tensors through shared memory (CPU) or CUDA IPC handles

    # 'spawn': a CUDA context cannot be forked; every worker imports the library afresh
    threads = max(1, torch.get_num_threads() // n_workers)
    with cf.ProcessPoolExecutor(n_workers, mp_context=tmp.get_context("spawn"), initializer=_worker_start,
                                initargs=(threads,)) as pool:
        futures = [pool.submit(_worker_run, c) for c in calls]
        try:
            for future in cf.as_completed(futures):
                future.result()
        except BaseException:
            for f in futures:
                f.cancel()
            raise


def _check_deadline(fn) -> None:
    limit = deadline()
    if limit is not None and time.time() > limit:
        raise DeadlineReached(f"time budget spent before {getattr(fn, '__qualname__', fn)} could start; "
                              f"rerun the same command to continue (finished runs are cached)")
