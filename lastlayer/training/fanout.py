"""One fan-out for independent runs: in this process, in local worker processes, or on a Dask cluster.

    from lastlayer.training.fanout import train_all
    train_all(calls, store_run, location, limit, keys)   # each functools.partial in `calls` into the run store

The caller then loads the results from the store in order (`cache.cached_runs`), so the list is the one a single
process computes whichever backend trained it. The backend comes from the environment, which the command line sets:

    (neither set)                   one after another, in this process
    LASTLAYER_WORKERS=N             N local worker processes (`run --workers N`)
    LASTLAYER_CLUSTER=local:N       a Dask LocalCluster of N one-thread worker processes (`run --cluster local:N`)
    LASTLAYER_CLUSTER=tcp://h:8786  a running Dask scheduler, its workers started by hand (`--cluster tcp://...`)
    LASTLAYER_CLUSTER=slurm         workers started as Slurm jobs by dask-jobqueue, with the settings of the YAML
                                    file $LASTLAYER_CLUSTER_CONFIG (default cluster.yml in the project folder)

Workers on other machines need the same repository (installed), the data root and the run store on a shared file
system (`LASTLAYER_CACHE=/shared/path`). A worker that dies is replaced and its run retried by Dask; a run that
raises is reported here with its key and the worker's traceback (`RunFailed`). A run that would start after the
deadline is skipped, so `--max-minutes` keeps its meaning: runs in progress finish and are stored.
Dask is imported only when a cluster is asked for: the library runs without it.
"""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from lastlayer.environment import CLUSTER_CONFIG_ENV, CLUSTER_ENV, PROGRESS_ENV, WORKERS_ENV
from lastlayer.provenance import PACKAGE_DIR


class RunFailed(RuntimeError):
    """A run raised on a worker: the message names the run and its key and carries the worker's traceback."""


class ClusterError(ValueError):
    """A cluster setting that cannot work (bad address, missing configuration), found before any run starts."""


_LOCAL = re.compile(r"local:(\d+)")
_ADDRESS = re.compile(r"(tcp|tls|ws|wss|inproc)://[^\s]+")
SLURM_KEYS = ("jobs",)  # ours; every other key of the YAML file goes to dask_jobqueue.SLURMCluster


def check_cluster(spec: str, root: Path | None = None) -> str:
    """The cluster spec if it is well formed (and, for slurm, its settings file readable); else ClusterError."""
    if _LOCAL.fullmatch(spec):
        if int(spec[6:]) < 1:
            raise ClusterError(f"--cluster {spec}: a local cluster needs at least one worker")
        return spec
    if _ADDRESS.fullmatch(spec):
        return spec
    if spec == "slurm":
        slurm_settings(root)
        return spec
    raise ClusterError(f"--cluster {spec!r}: expected local:N, a scheduler address such as tcp://host:8786, "
                       f"or slurm")


def slurm_settings(root: Path | None = None) -> dict:
    """The dask-jobqueue settings: `jobs` (how many Slurm jobs of workers) and SLURMCluster's keywords."""
    import yaml
    file = Path(os.environ.get(CLUSTER_CONFIG_ENV) or Path(root or PACKAGE_DIR.parent) / "cluster.yml")
    if not file.is_file():
        raise ClusterError(f"--cluster slurm needs its settings in {file} (or set {CLUSTER_CONFIG_ENV}); "
                           f"see the README, 'On a cluster'")
    try:
        settings = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as e:
        raise ClusterError(f"{file}: not valid YAML: {e}") from None
    if not isinstance(settings, dict) or not isinstance(settings.get("jobs", 1), int) or settings.get("jobs", 1) < 1:
        raise ClusterError(f"{file}: expected a mapping with `jobs` (a whole number >= 1) and SLURMCluster's "
                           f"keywords (cores, memory, walltime, queue, ...)")
    return settings


def backend() -> tuple[str, str | int]:
    """('cluster', spec), ('processes', N) or ('inline', 1), from the environment."""
    spec = os.environ.get(CLUSTER_ENV, "").strip()
    value = os.environ.get(WORKERS_ENV, "1")
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"{WORKERS_ENV} must be a whole number of at least 1, not {value!r}")
    if spec:
        if n > 1:
            raise ValueError(f"{CLUSTER_ENV} and {WORKERS_ENV} > 1 are two backends: choose one")
        return "cluster", check_cluster(spec)
    return ("processes", n) if n > 1 else ("inline", 1)


class Progress:
    """Done, running and left, written for the command line to show (a file it polls; never the notebook)."""

    def __init__(self, total: int, parallel: int):
        self.total, self.parallel, self.done = total, parallel, 0
        self.file = os.environ.get(PROGRESS_ENV)
        self.write()

    def step(self) -> None:
        self.done += 1
        self.write()

    def write(self) -> None:
        if not self.file:
            return
        left = self.total - self.done
        state = {"done": self.done, "running": min(self.parallel, left), "left": left, "time": time.time()}
        tmp = f"{self.file}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            json.dump(state, f)
        os.replace(tmp, self.file)


def _failed(call, key: str, error: BaseException, trace: str) -> RunFailed:
    name = getattr(call.func, "__qualname__", repr(call.func))
    return RunFailed(f"run {name} (key {key[:16]}) failed on a worker: {type(error).__name__}: {error}\n"
                     f"worker traceback:\n{trace}")


def train_all(calls: list, store_run, location: Path, limit: float | None, keys: list[str]) -> None:
    """Train every call into the store at `location` with the environment's backend (see the module):
    `store_run(call, location, limit, threads)` is what each worker executes (`cache.store_run`)."""
    kind, value = backend()
    if kind == "inline" or len(calls) < 2 and kind == "processes":
        progress = Progress(len(calls), 1)
        for call in calls:
            store_run(call, location, limit)
            progress.step()
    elif kind == "processes":
        _processes(calls, store_run, location, limit, keys, min(int(value), len(calls)))
    else:
        _dask(calls, store_run, location, limit, keys, str(value))


def _processes(calls, store_run, location, limit, keys, n_workers: int) -> None:
    import concurrent.futures as cf
    import traceback

    import torch
    import torch.multiprocessing as tmp  # pickles tensors through shared memory (CPU) or CUDA IPC handles
    # 'spawn': a CUDA context cannot be forked; every worker imports the library afresh
    threads = max(1, torch.get_num_threads() // n_workers)
    progress = Progress(len(calls), n_workers)
    with cf.ProcessPoolExecutor(n_workers, mp_context=tmp.get_context("spawn")) as pool:
        futures = {pool.submit(store_run, c, location, limit, threads): i for i, c in enumerate(calls)}
        try:
            for future in cf.as_completed(futures):
                error = future.exception()
                if error is not None:
                    i = futures[future]
                    trace = "".join(traceback.format_exception(error))
                    raise _failed(calls[i], keys[i], error, trace) from error
                progress.step()
        except BaseException:
            for f in futures:
                f.cancel()
            raise


def _client(spec: str):
    """A Dask client for the spec, and what to close after."""
    import logging

    import dask
    from distributed import Client, LocalCluster
    # the workers' and scheduler's chatter would reach a notebook's stderr, which keeps a run out of the book
    dask.config.set({"distributed.admin.system-monitor.gil.enabled": False, "logging.distributed": "error"})
    # in a Jupyter kernel, the client's event-loop thread is torn down with the kernel, and asyncio then logs
    # "Task was destroyed but it is pending!" for its idle callbacks: teardown noise, after every run is stored
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    if spec.startswith("local:"):
        cluster = LocalCluster(n_workers=int(spec[6:]), threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
    elif spec == "slurm":
        from dask_jobqueue import SLURMCluster
        settings = slurm_settings()
        jobs = settings.pop("jobs", 1)
        cluster = SLURMCluster(**settings)
        cluster.scale(jobs=jobs)
    else:
        cluster = None
    client = Client(cluster if cluster is not None else spec)
    return client, cluster


def _dask(calls, store_run, location, limit, keys, spec: str) -> None:
    import traceback
    import warnings

    from distributed import as_completed
    client, cluster = _client(spec)
    try:
        parallel = max(1, sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values()))
        progress = Progress(len(calls), parallel)
        # one thread per run on a local cluster (its workers have one thread each); a remote worker keeps torch's
        with warnings.catch_warnings():  # the runs' data travel with them, once per run: that is the design
            warnings.filterwarnings("ignore", message="Sending large graph", category=UserWarning)
            futures = client.map(store_run, calls, [location] * len(calls), [limit] * len(calls),
                                 [1 if spec.startswith("local:") else None] * len(calls),
                                 key=[f"run-{k}" for k in keys], pure=False, retries=2)
        index = {f.key: i for i, f in enumerate(futures)}
        for future in as_completed(futures):
            if future.status == "error":
                i = index[future.key]
                error, trace = future.exception(), "".join(traceback.format_tb(future.traceback()))
                client.cancel(futures)
                raise _failed(calls[i], keys[i], error, trace) from error
            progress.step()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
