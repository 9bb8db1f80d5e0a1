"""What a run's numbers depend on: the code of the library's core and of one paper's package.

Both the run cache (a training run's key) and the runner (a chapter's input hash) ask this module, so the two
agree on when a change of code makes a stored result stale. It imports nothing heavy: the command line uses it
before torch is loaded.
"""
from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent  # lastlayer/


def code_files(paper: str | None, package_dir: Path = PACKAGE_DIR) -> list[Path]:
    """The code that decides a paper's numbers: the core of the library and that paper's own package.

    The book tooling (`lastlayer/book/`) runs and renders notebooks but computes nothing they report, and the
    other papers' packages cannot reach this one (the core imports no paper), so neither is included."""
    files = []
    for f in sorted(package_dir.rglob("*.py")):
        parts = f.relative_to(package_dir).parts
        if parts[0] == "book" or f.name == "__main__.py":
            continue
        if parts[0] == "papers" and len(parts) > 2 and parts[1] != paper:
            continue
        files.append(f)
    return files


@lru_cache(maxsize=None)
def code_hash(paper: str | None) -> str:
    h = hashlib.sha256()
    for f in code_files(paper):
        h.update(f.relative_to(PACKAGE_DIR).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]
