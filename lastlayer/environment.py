"""Every environment variable the project reads, named once. Torch-free: the command line imports it first.

LASTLAYER_DATA         the data root (torchvision's layout); default ./data, never created
LASTLAYER_CACHE        the run cache's folder (default build/cache); `off` disables the cache
LASTLAYER_DEADLINE     a unix time after which no new training run starts (set by `run --max-minutes`)
LASTLAYER_WORKERS      how many independent runs train at once in worker processes (set by `run --workers`)
LASTLAYER_RESULTS_DIR  where a notebook's `report.save()` writes `<id>.json` (the runner's temporary folder)
"""
DATA_ENV = "LASTLAYER_DATA"
CACHE_ENV = "LASTLAYER_CACHE"
DEADLINE_ENV = "LASTLAYER_DEADLINE"
WORKERS_ENV = "LASTLAYER_WORKERS"
RESULTS_ENV = "LASTLAYER_RESULTS_DIR"
