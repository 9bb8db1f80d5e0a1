"""nbval references: smoke executions whose checked cells must print the same numbers when run again."""
import json
import subprocess
import sys

import nbformat
import pytest

from lastlayer.book.references import CHECK_TAG, refresh
from lastlayer.book.runner import available_papers

from .conftest import ROOT
from .test_runner import make_project

SANITIZE = ROOT / "tests" / "nbval" / "sanitize.cfg"
# a tiny training run: the same seed must give the same numbers on CPU, or no reference can be compared
TRAIN = """import os, time, torch
t0 = time.time()
x, y = torch.randn(64, 5), torch.randint(0, 3, (64,))
model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
opt = torch.optim.SGD(model.parameters(), lr=lr)
for _ in range(epochs * 5):
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
report.metrics["loss"] = loss.item()
report.save()"""
CHECKED = """print(f"loss {report.metrics['loss']:.6f} after {epochs} epochs")
print(f"took {time.time() - t0:.3f} s on {report.device}, torch {torch.__version__}, in {os.getcwd()}")
print(object())"""


def nbval(notebook):
    return subprocess.run([sys.executable, "-m", "pytest", str(notebook), "--nbval-lax", "--nbval-sanitize-with",
                           str(SANITIZE), "-p", "no:cacheprovider", "-q"], capture_output=True, text=True,
                          cwd=notebook.parent)


def test_reference_is_reproduced_and_a_moved_number_fails_with_a_diff(tmp_path):
    root = make_project(tmp_path, body=TRAIN)
    nb = nbformat.read(root / "notebooks" / "digit_pairs.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(CHECKED, metadata={"tags": [CHECK_TAG]}))
    nbformat.write(nb, root / "notebooks" / "digit_pairs.ipynb")
    [ref] = refresh(None, root, root / "tests" / "nbval")
    text = ref.read_text()
    assert str(tmp_path) not in text and "loss " in text
    assert json.loads(text)["cells"][-1]["metadata"]["tags"] == [CHECK_TAG]
    done = nbval(ref)  # a second execution, same seed: same loss, the times, paths, devices and addresses sanitised
    assert done.returncode == 0, done.stdout[-3000:]
    moved = json.loads(text)
    out = moved["cells"][-1]["outputs"][0]
    out["text"] = [line.replace("loss ", "loss 9") for line in out["text"]]  # a change that moves the number
    ref.write_text(json.dumps(moved))
    done = nbval(ref)
    assert done.returncode != 0 and "loss 9" in done.stdout and "mismatch 'stdout'" in done.stdout, done.stdout[-3000:]


@pytest.mark.parametrize("paper", available_papers(ROOT))
def test_every_notebook_has_a_current_reference(paper):
    """nbval runs the reference's code, not the notebook's: after editing a notebook, `make nbval-refresh`."""
    ref = ROOT / "tests" / "nbval" / f"{paper}.ipynb"
    assert ref.exists(), f"no reference for {paper}: run `make nbval-refresh PAPER={paper}`"
    code = lambda nb: [(c["source"] if isinstance(c["source"], str) else "".join(c["source"]),
                        c["metadata"].get("tags", [])) for c in nb["cells"]
                       if c["cell_type"] == "code" and "injected-parameters" not in c["metadata"].get("tags", [])]
    current = code(json.loads((ROOT / "notebooks" / f"{paper}.ipynb").read_text()))
    assert code(json.loads(ref.read_text())) == current, f"{ref.name} is stale: run `make nbval-refresh PAPER={paper}`"
