"""The offline GPU route: what the GPU image lacks is pinned and carried; the library needs nothing else."""
import ast
import sys
from pathlib import Path

import pytest

import lastlayer
from lastlayer.book.offline import DATASETS, GPU_IMAGE, GPU_PACKAGES, bundle, pins

ROOT = Path(lastlayer.__file__).resolve().parent.parent


def _third_party_imports() -> set[str]:
    names = set()
    for f in (ROOT / "lastlayer").rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != "lastlayer"}


def test_every_carried_package_is_pinned():
    versions = pins(ROOT / "requirements.txt")
    assert [p for p in GPU_PACKAGES if p.lower().replace("_", "-") not in versions] == []


def test_the_library_imports_only_what_a_gpu_machine_has_or_gets():
    """A new dependency must be added to the bundle (or be known to the GPU image), or the paper profiles
    break on the GPU machine. The book's build tools (jupyter-book, sphinx, myst) run elsewhere."""
    carried = {p.lower().replace("-", "_") for p in GPU_PACKAGES} | {"IPython", "matplotlib_inline", "zmq"}
    build_only = {"jupyter_book", "sphinx", "myst_nb", "nbval", "pytest", "docutils", "mathjax", "pybtex"}
    unknown = {n for n in _third_party_imports()
               if n not in GPU_IMAGE and n.lower() not in carried and n not in carried and n not in build_only
               and n not in CLUSTER_ONLY}
    assert unknown == set()


CLUSTER_ONLY = {"dask", "distributed", "dask_jobqueue"}  # imported only when a run asks for `--cluster`


def test_the_cluster_packages_are_imported_only_when_a_cluster_is_asked_for():
    """No module imports Dask at its top level, so a machine without it (the GPU image) runs everything else."""
    top = set()
    for f in (ROOT / "lastlayer").rglob("*.py"):
        for node in ast.parse(f.read_text()).body:
            if isinstance(node, ast.Import):
                top.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                top.add(node.module.split(".")[0])
    assert top & CLUSTER_ONLY == set()
    assert CLUSTER_ONLY <= _third_party_imports()  # the check looks where the imports are


def test_bundle_copies_data_and_writes_setup(tmp_path, data_root):
    out = bundle(tmp_path / "gpu", ROOT, data_root=data_root, wheels=False)
    for d in DATASETS:
        assert sorted(p.name for p in (out / "data" / d / "raw").glob("*.gz")) == sorted(
            p.name for p in (data_root / d / "raw").glob("*.gz"))
    setup = (out / "setup.sh").read_text()
    assert "--no-index" in setup and 'LASTLAYER_DATA="$here/data"' in setup


def test_bundle_names_missing_data(tmp_path):
    with pytest.raises(FileNotFoundError, match="LASTLAYER_DATA"):
        bundle(tmp_path / "gpu", ROOT, data_root=tmp_path, wheels=False)


def test_glue_matches_myst_nb_without_needing_it(monkeypatch):
    """Notebooks glue through `lastlayer.book.notebook.glue` (no myst-nb on a GPU machine); the book's build
    must read it exactly as myst-nb's own."""
    import IPython.display
    import myst_nb

    import lastlayer.book.notebook as nb
    seen = []
    monkeypatch.setattr(IPython.display, "display", lambda *a, **k: seen.append((a, k)))
    nb.glue("x", 0.125)
    myst_nb.glue("x", 0.125, display=False)
    assert seen[0] == seen[1] and "application/papermill.record/text/plain" in seen[0][0][0]


def test_glue_stores_numpy_scalars_as_plain_numbers(monkeypatch):
    """myst-nb formats {glue:text}`x:.1f` from the text; 'np.float64(0.5)' would break the book's build."""
    import IPython.display
    import numpy as np

    import lastlayer.book.notebook as nb
    from lastlayer.book.install import output_problems
    seen = []
    monkeypatch.setattr(IPython.display, "display", lambda *a, **k: seen.append((a, k)))
    nb.glue("x", np.float64(0.5))
    nb.glue("n", np.int64(3))
    assert [s[0][0]["application/papermill.record/text/plain"] for s in seen] == ["0.5", "3"]
    bad = {"cells": [{"cell_type": "code", "source": "glue(x)", "outputs": [
        {"output_type": "display_data", "metadata": {"scrapbook": {"name": "x"}},
         "data": {"application/papermill.record/text/plain": "np.float64(0.5)"}}]}]}
    assert output_problems(bad) == ["cell 0 ('glue(x)') glues 'x' as 'np.float64(0.5)', which the book "
                                    "cannot format as a number (glue a Python int or float)"]


def test_a_figure_cell_without_an_image_keeps_the_run_out_of_the_book():
    from lastlayer.book.install import output_problems
    cell = {"cell_type": "code", "source": "figures.plot(runs);", "metadata": {"mystnb": {"figure": {"name": "fig-x"}}},
            "outputs": []}
    assert output_problems({"cells": [cell]}) == [
        "cell 0 ('figures.plot(runs);') is the figure 'fig-x' but drew no image (a non-interactive matplotlib "
        "backend, e.g. MPLBACKEND=Agg, shows none)"]
    cell["outputs"] = [{"output_type": "display_data", "data": {"image/png": "..."}}]
    assert output_problems({"cells": [cell]}) == []
