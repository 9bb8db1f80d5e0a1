"""What every paper's notebook does around its parameters cell.

    import lastlayer.book.notebook as nb
    nb.mark(globals())                     # the cell before the `parameters` cell
    # parameters cell: plain assignments only
    report = nb.start("digit_pairs", globals())   # the cell after it

`start` collects the parameters (every public name the parameters cell and papermill's injected cell
defined), applies a `cpu_threads` (or `threads`) parameter, seeds everything, sets the plotting style, prints
the environment, and returns the `Report`.
"""
from __future__ import annotations

import os

import torch

from lastlayer.book.report import Report
from lastlayer.training.trainer import device_name, resolve_device, seed_everything

_marked: set[str] = set()


def mark(namespace: dict) -> None:
    """Remember the names defined before the parameters cell."""
    _marked.clear()
    _marked.update(namespace)


def start(paper: str, namespace: dict) -> Report:
    params = {k: v for k, v in namespace.items() if k not in _marked and not k.startswith("_")}
    if not params:
        raise RuntimeError("no parameters found: call nb.mark(globals()) in the cell before the parameters cell")
    threads = params.get("cpu_threads", params.get("threads"))
    if threads:  # before the device is described, so the record names the threads the run uses
        torch.set_num_threads(int(threads))
    device = resolve_device(params.get("device", "auto"))
    namespace["device"] = str(device)
    seed_everything(int(params.get("seed", 0)))
    os.environ.setdefault("TQDM_DISABLE", "1")  # no progress bars in executed notebooks
    _plot_style()
    report = Report(paper, params, device_name(device))
    print(f"{paper}: device {report.device}, torch {torch.__version__}")
    return report


def _plot_style() -> None:
    from IPython import get_ipython
    shell = get_ipython()
    if shell is not None:  # in a kernel, figures go into the notebook whatever MPLBACKEND says (Agg shows none)
        shell.run_line_magic("matplotlib", "inline")
    from lastlayer.plots import use_book_style
    use_book_style()  # one style for every figure of the book (retina PNG, fonts sized for the column)


GLUE_PREFIX = "application/papermill.record/"


def glue(name: str, value, display: bool = False) -> None:
    """myst-nb's `glue` without myst-nb: store `value`'s display under `name` for `{glue:}` in the book.

    The same output format as `myst_nb.glue` (the book's build reads it), so that a notebook runs where only
    the notebook machinery is installed, not the book's build tools (e.g. on an offline GPU machine)."""
    from IPython.core.formatters import format_display_data
    from IPython.display import display as ipy_display
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # a NumPy or torch scalar: its repr,
        value = value.item()                                           # 'np.float64(0.5)', is no number to format
    bundle, metadata = format_display_data(value)
    prefix = "" if display else GLUE_PREFIX
    metadata["scrapbook"] = {"name": name, "mime_prefix": prefix}
    ipy_display({prefix + k: v for k, v in bundle.items()}, raw=True, metadata=metadata)
