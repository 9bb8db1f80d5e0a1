import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# nbval's kernels run in tests/nbval/ and inherit this environment: the data root must be absolute there, and
# the references' results go to a scratch folder, never the book.
os.environ["LASTLAYER_DATA"] = str(Path(os.environ.get("LASTLAYER_DATA", ROOT / "data")).resolve())
if "LASTLAYER_RESULTS_DIR" not in os.environ:
    os.environ["LASTLAYER_RESULTS_DIR"] = tempfile.mkdtemp(prefix="lastlayer-nbval-results-")
    atexit.register(shutil.rmtree, os.environ["LASTLAYER_RESULTS_DIR"], True)
os.environ.setdefault("TQDM_DISABLE", "1")
# Tests train for real: the run cache is off unless a test turns it on in a folder of its own.
os.environ.setdefault("LASTLAYER_CACHE", "off")


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The real data root ($LASTLAYER_DATA): the tests need MNIST, and say so rather than skip."""
    root = Path(os.environ["LASTLAYER_DATA"])
    if not (root / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").exists():
        pytest.fail(f"MNIST not found under {root}: set LASTLAYER_DATA to a folder holding MNIST/raw/*.gz")
    return root
