import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The real data root ($LASTLAYER_DATA): the tests need MNIST, and say so rather than skip."""
    root = Path(os.environ.get("LASTLAYER_DATA", ROOT / "data"))
    if not (root / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").exists():
        pytest.fail(f"MNIST not found under {root}: set LASTLAYER_DATA to a folder holding MNIST/raw/*.gz")
    return root
