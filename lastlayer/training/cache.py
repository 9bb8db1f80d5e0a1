"""The run cache: every training run stored on disk, keyed by what determines it.

    from lastlayer.training.cache import cached_run
    result = cached_run(train_one, arm, seed, train, test, config)   # trains, or loads the stored result

A run's key is the function (module and name), its arguments (hashed by value: tensors, arrays, dataclasses),
the code of the library's core and of the function's paper package, the torch version and the device kind.
Change any of them and the run trains again; change nothing and a rerun of a notebook loads instead of training.
Because each finished run is stored the moment it ends, a paper profile stopped at any point resumes losing at
most the run in progress.

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

from lastlayer.provenance import PACKAGE_DIR, code_hash

CACHE_ENV = "LASTLAYER_CACHE"
DEADLINE_ENV = "LASTLAYER_DEADLINE"


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


def cached_run(fn, *args, device_kind: str | None = None, **kwargs):
    """`fn(*args, **kwargs)`, or its stored result when the same call with the same code ran before.

    `device_kind` ('cpu', 'cuda', ...) enters the key: results from another kind of device are not reused
    (floating point differs). By default it is the kind torch would pick ('cuda' when available)."""
    if device_kind is None:
        device_kind = "cuda" if torch.cuda.is_available() else "cpu"
    location = cache_dir()
    if location is None:
        _check_deadline(fn)
        return fn(*args, **kwargs)
    key = fingerprint((f"{fn.__module__}.{fn.__qualname__}", code_hash(_paper_of(fn)), torch.__version__,
                       device_kind, args, kwargs))
    memorized = _memorized(str(location))
    if not memorized.check_call_in_cache(key, fn, args, kwargs):
        _check_deadline(fn)
    return memorized(key, fn, args, kwargs)


def _check_deadline(fn) -> None:
    limit = deadline()
    if limit is not None and time.time() > limit:
        raise DeadlineReached(f"time budget spent before {getattr(fn, '__qualname__', fn)} could start; "
                              f"rerun the same command to continue (finished runs are cached)")
