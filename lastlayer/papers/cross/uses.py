"""The other papers' packages this chapter builds on, and a fingerprint of their code for the run cache.

The run cache keys a cached function by the core's code and the code of the function's own paper package only
(`lastlayer.training.cache`). A run function of this chapter that calls another paper's code would not see a change
there, so every such function takes a `code` argument: `fingerprint()`, a hash of the used packages' files. A change
in any of them changes the key, and the run trains again. (Runs that call another paper's own cached functions,
such as feature_cache's trainers, are keyed by that paper's code already.)
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

from lastlayer.provenance import PACKAGE_DIR, code_files

# paper.yml is the one place the list is kept; the tooling reads it from there too (registry.Paper.uses)
USES: tuple[str, ...] = tuple(yaml.safe_load(Path(__file__).with_name("paper.yml").read_text())["uses"])


def used_files(uses=USES, package_dir: Path = PACKAGE_DIR) -> list[Path]:
    """The code files of the used papers' packages (not the core: every cache key has that already)."""
    return [f for used in uses for f in code_files(used, package_dir)
            if f.relative_to(package_dir).parts[:2] == ("papers", used)]


def fingerprint(uses=USES, package_dir: Path = PACKAGE_DIR) -> str:
    """A hash of the used packages' code: their files' paths and bytes."""
    h = hashlib.sha256()
    for f in used_files(uses, package_dir):
        h.update(f.relative_to(package_dir).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]
