"""Run a paper profile on an offline GPU machine that has Python, CUDA and torch but not the rest.

A typical GPU machine image has torch, torchvision, numpy, scipy, pandas, matplotlib, seaborn, scikit-learn,
pyyaml and tqdm, but no network and none of the notebook machinery (papermill and the Jupyter kernel stack).
`python -m lastlayer bundle build/gpu` prepares, on a machine with the network, a folder to carry along:

    build/gpu/wheels/   the notebook machinery as wheels for the GPU machine's Python (pinned as in
                        requirements.txt; pure Python except pyzmq, tornado, psutil and a few others)
    build/gpu/data/     the datasets the paper profiles read (torchvision layout)
    build/gpu/setup.sh  installs the wheels into a private folder and points PYTHONPATH and LASTLAYER_DATA

On the GPU machine, from a copy of the repository with that folder inside it:

    source build/gpu/setup.sh
    python -m lastlayer run geometry --profile paper --max-minutes 9 --workers 4   # repeat until it reports done

Each finished training run is stored in `build/cache/` (the run cache), so a chunk that stops at its time
limit loses at most the run in progress; carry `build/cache/` along between chunks if the machine is not kept.
Bring back `book/executed/paper/`, `book/results/paper/` and `book/results/bench/` (and `build/cache/` to
resume elsewhere), then commit them as any other run.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

# What the GPU image lacks: the notebook machinery and its dependencies, plus the run cache's storage.
GPU_PACKAGES = (
    "papermill", "nbclient", "nbformat", "jupyter_client", "jupyter_core", "ipykernel", "ipython", "joblib",
    "asttokens", "attrs", "certifi", "charset-normalizer", "click", "cloudpickle", "comm", "debugpy",
    "entrypoints", "executing", "fastjsonschema", "idna", "ipython_pygments_lexers", "jedi", "jsonschema",
    "jsonschema-specifications", "matplotlib-inline", "nest-asyncio2", "parso", "pexpect", "platformdirs",
    "prompt_toolkit", "psutil", "ptyprocess", "pure_eval", "Pygments", "pyzmq", "referencing", "requests",
    "rpds-py", "stack-data", "tenacity", "tornado", "traitlets", "urllib3", "wcwidth",
)
# What the GPU image is known to have (imports of the library must come from here or from GPU_PACKAGES).
GPU_IMAGE = ("torch", "torchvision", "numpy", "scipy", "pandas", "matplotlib", "seaborn", "sklearn", "yaml",
             "tqdm", "PIL")
DATASETS = ("MNIST", "FashionMNIST")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64")

SETUP = """# Source this on the GPU machine, from the repository's root: installs the carried wheels (no network)
# into a private folder and points the library at the carried data.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
site="${TMPDIR:-/tmp}/lastlayer-site"
python3 -m pip install -q --no-index --no-deps --no-compile --target "$site" "$here"/wheels/*.whl || return 1
export PYTHONPATH="$site:$(pwd)${PYTHONPATH:+:$PYTHONPATH}"
export LASTLAYER_DATA="$here/data"
export MPLBACKEND=Agg
python3 -c "import papermill, torch; print('ready: torch', torch.__version__, '| cuda', torch.cuda.is_available())"
"""


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(requirements: Path) -> dict[str, str]:
    """{normalised name: version} of a pinned requirements file."""
    out = {}
    for line in requirements.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)", line.strip())
        if m:
            out[_normal(m.group(1))] = m.group(2)
    return out


def bundle(out: Path, root: Path, *, data_root: Path, python: str = "3.12", wheels: bool = True) -> Path:
    """Write the folder described above. `wheels=False` skips the download (for tests)."""
    versions = pins(root / "requirements.txt")
    missing = [p for p in GPU_PACKAGES if _normal(p) not in versions]
    if missing:
        raise ValueError(f"requirements.txt pins no version of {', '.join(missing)}")
    absent = [d for d in DATASETS if not (data_root / d / "raw").is_dir()]
    if absent:
        raise FileNotFoundError(f"{', '.join(absent)} not found under {data_root}: set LASTLAYER_DATA")
    out.mkdir(parents=True, exist_ok=True)
    for d in DATASETS:
        target = out / "data" / d / "raw"
        target.mkdir(parents=True, exist_ok=True)
        for f in sorted((data_root / d / "raw").glob("*.gz")):
            shutil.copy2(f, target / f.name)
    if wheels:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               "--python-version", python, "--implementation", "cp", "-d", str(out / "wheels")]
        cmd += [a for p in PLATFORMS for a in ("--platform", p)]
        cmd += [f"{p}=={versions[_normal(p)]}" for p in GPU_PACKAGES]
        subprocess.run(cmd, check=True)
    (out / "setup.sh").write_text(SETUP)
    return out
