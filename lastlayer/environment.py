"""Every environment variable the project reads, named once. Torch-free: the command line imports it first.

LASTLAYER_DATA         the data root (torchvision's layout); default ./data, never created
LASTLAYER_CACHE        the run cache's folder (default build/cache); `off` disables the cache
LASTLAYER_DEADLINE     a unix time after which no new training run starts (set by `run --max-minutes`)
LASTLAYER_WORKERS      how many independent runs train at once in worker processes (set by `run --workers`)
LASTLAYER_CLUSTER      a Dask cluster for the runs instead: local:N, a scheduler address, or slurm (`run --cluster`)
LASTLAYER_CLUSTER_CONFIG  the dask-jobqueue settings for `--cluster slurm` (default cluster.yml in the project)
LASTLAYER_PROGRESS     a file where the runs' fan-out writes done/running/left for the command line to show
LASTLAYER_RESULTS_DIR  where a notebook's `report.save()` writes `<id>.json` (the runner's temporary folder)
"""
DATA_ENV = "LASTLAYER_DATA"
CACHE_ENV = "LASTLAYER_CACHE"
DEADLINE_ENV = "LASTLAYER_DEADLINE"
WORKERS_ENV = "LASTLAYER_WORKERS"
CLUSTER_ENV = "LASTLAYER_CLUSTER"
CLUSTER_CONFIG_ENV = "LASTLAYER_CLUSTER_CONFIG"
PROGRESS_ENV = "LASTLAYER_PROGRESS"
RESULTS_ENV = "LASTLAYER_RESULTS_DIR"
