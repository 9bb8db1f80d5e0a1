"""Reference executions for nbval: every notebook run once with the smoke profile, stored in tests/nbval/.

`make test` re-executes each reference with nbval (`--nbval-lax`): every cell must run, and the cells tagged
`nbval-check-output` (claims tables, tables of numbers printed at a stated precision) must print what the
reference printed, after `tests/nbval/sanitize.cfg` has blanked what legitimately varies (times, paths,
devices, addresses, versions). A change that moves a number then fails with a diff; refreshing the
references (`make nbval-refresh`) is the deliberate act of accepting new numbers.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

from lastlayer.book import install
from lastlayer.environment import CACHE_ENV, DATA_ENV, RESULTS_ENV
from lastlayer.book.runner import (KERNEL_ARGS, _environment, available_papers, data_folder, inject_parameters,
                                   prepare, strip_volatile)

CHECK_TAG = "nbval-check-output"  # nbval 0.11's tag (or a `# NBVAL_CHECK_OUTPUT` comment) for compared cells
PROFILE = "smoke"


def without_images(nb: dict) -> dict:
    """nbval never compares images, so the references keep none: megabytes of PNG in git for nothing."""
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            for key in [k for k in output.get("data", {}) if k.startswith("image/")]:
                output["data"][key] = ""
    return nb


def refresh(papers: list[str] | None, root: Path, out_dir: Path, progress: bool = False) -> list[Path]:
    """Execute each paper's notebook with the smoke profile into out_dir/<paper>.ipynb, where nbval runs it
    again (the kernel's working folder is out_dir in both runs)."""
    import papermill as pm

    out_dir.mkdir(parents=True, exist_ok=True)
    data = data_folder()
    written = []
    for paper in papers or available_papers(root):
        paths, params, _ = prepare(paper, PROFILE, None, root)
        with tempfile.TemporaryDirectory(prefix=f"lastlayer-ref-{paper}-") as tmp:
            tmp = Path(tmp)
            env = {RESULTS_ENV: str(tmp), DATA_ENV: str(data), "TQDM_DISABLE": "1",
                   CACHE_ENV: "off"}  # the references show a run, never a load from the cache
            source = inject_parameters(paths.notebook(paper), params, tmp / "input.ipynb")
            with _environment(env):
                pm.execute_notebook(str(source), str(tmp / "ref.ipynb"),
                                    kernel_name="python3", progress_bar=progress, cwd=str(out_dir),
                                    log_output=False, extra_arguments=KERNEL_ARGS)
            nb = without_images(strip_volatile(json.loads((tmp / "ref.ipynb").read_text())))
            text = install.scrub(json.dumps(nb, indent=1, ensure_ascii=False),
                                 install.machine_paths(paths.root, tmp.resolve(), tmp, absolute=True))
            out = out_dir / f"{paper}.ipynb"
            out.write_text(text + "\n")
            written.append(out)
        checked = sum(CHECK_TAG in c.get("metadata", {}).get("tags", []) for c in nb["cells"])
        print(f"{paper}: reference written to {out} ({checked} checked cells)", flush=True)
    return written
