"""The papers of the book, found by listing folders: `lastlayer/papers/<id>/paper.yml` makes `<id>` a paper.

A paper's folder says everything the tooling needs to know of it, in one file: its title, its key in
`book/references.bib`, where to read it, its place in the book, what its paper scale needs that cannot be had
offline, and its profiles (overrides of the notebook's `parameters` cell). Its notebook is
`notebooks/<id>.ipynb`, the path users open. Nothing else lists the papers: the runner, the pages, the table
of contents, the benchmark and the command line all ask `find_papers`. It reads YAML only (no torch), so the
command line starts fast.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from lastlayer.provenance import PACKAGE_DIR

PROFILES = ("smoke", "cpu", "paper")
PAPER_FILE = "paper.yml"
_FIELDS = {"title": str, "citation": str, "url": (str, type(None)), "code": (str, type(None)), "question": str,
           "order": int,
           "paper_scale_needs": (str, type(None)), "profiles": dict}
# Optional fields. `uses`: the papers whose packages this one builds on (a chapter that tests the papers' ideas
# against each other); it may import exactly those (tests/test_layout.py), its input hash covers their code
# (runner.input_hash), and the book puts it in a part of its own, its claims counted apart (pages).
_OPTIONAL = {"uses": list}


class PaperError(ValueError):
    """A paper that does not exist, or whose paper.yml is malformed (the message names the file and field)."""


@dataclass(frozen=True)
class Paper:
    id: str
    title: str
    citation: str                  # its key in book/references.bib
    url: str | None                # where to read it (None: no public link)
    code: str | None               # its authors' code (None: not public)
    question: str                  # the chapter's question, in one line of the book's introduction
    order: int                     # its place among the book's chapters
    paper_scale_needs: str | None  # what its paper scale needs that is not available offline (None: nothing)
    profiles: dict                 # {profile: {parameter: value}}
    folder: Path
    uses: tuple[str, ...] = ()     # the papers whose packages this one imports (empty: a paper of its own)

    @property
    def is_cross(self) -> bool:
        """Whether this chapter builds on other papers' packages (its own part of the book, counted apart)."""
        return bool(self.uses)

    def notebook(self, root: Path) -> Path:
        return Path(root) / "notebooks" / f"{self.id}.ipynb"

    def load(self, module: str = ""):
        """`lastlayer.papers.<id>.<module>` (the package itself for ""), or None where the paper has no such
        module. The one place where the tooling imports a paper's code by name (the layout test holds it to that)."""
        import importlib
        import importlib.util
        name = f"lastlayer.papers.{self.id}" + (f".{module}" if module else "")
        try:
            return importlib.import_module(name) if importlib.util.find_spec(name) is not None else None
        except ModuleNotFoundError:  # the paper's package itself is missing (a folder with a paper.yml only)
            return None


def papers_dir(root: Path | None = None) -> Path:
    """The folder of paper packages: under `root` when it has one (a checkout), else this installation's."""
    here = Path(root) / "lastlayer" / "papers" if root else None
    return here if here is not None and here.is_dir() else PACKAGE_DIR / "papers"


def read_paper(folder: Path) -> Paper:
    file = folder / PAPER_FILE
    where = f"lastlayer/papers/{folder.name}/{PAPER_FILE}"
    try:
        meta = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f", line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise PaperError(f"{where}{at}: not valid YAML: {getattr(e, 'problem', None) or e}") from None
    if not isinstance(meta, dict):
        raise PaperError(f"{where}: expected a mapping of {', '.join(_FIELDS)}")
    unknown = sorted(set(meta) - set(_FIELDS) - set(_OPTIONAL))
    missing = sorted(set(_FIELDS) - set(meta))
    if unknown or missing:
        raise PaperError(f"{where}: " + "; ".join(
            ([f"unknown field(s) {', '.join(unknown)}"] if unknown else [])
            + ([f"missing field(s) {', '.join(missing)}"] if missing else [])))
    for name, kind in _FIELDS.items():
        if not isinstance(meta[name], kind) or isinstance(meta[name], bool):
            raise PaperError(f"{where}: {name} must be {getattr(kind, '__name__', 'text or null')}, "
                             f"got {meta[name]!r}")
    uses = meta.get("uses", [])
    if not isinstance(uses, _OPTIONAL["uses"]) or not all(isinstance(u, str) and u for u in uses) \
            or folder.name in uses:
        raise PaperError(f"{where}: uses must be a list of other papers' ids, got {uses!r}")
    profiles = meta["profiles"]
    absent = [p for p in PROFILES if p not in profiles]
    extra = sorted(set(profiles) - set(PROFILES))
    if absent or extra:
        raise PaperError(f"{where}: profiles must be exactly {', '.join(PROFILES)}"
                         + (f"; missing {', '.join(absent)}" if absent else "")
                         + (f"; unknown {', '.join(map(str, extra))}" if extra else ""))
    bad = [p for p in PROFILES if not isinstance(profiles[p] or {}, dict)]
    if bad:
        raise PaperError(f"{where}: profile(s) {', '.join(bad)} must map parameter names to values")
    return Paper(folder.name, meta["title"], meta["citation"], meta["url"], meta["code"], meta["question"], meta["order"],
                 meta["paper_scale_needs"], {p: dict(profiles[p] or {}) for p in PROFILES}, folder, tuple(uses))


def find_papers(root: Path | None = None) -> dict[str, Paper]:
    """{id: Paper} for every folder with a paper.yml, in the book's order (the chapters that build on other papers
    after the others). A paper that `uses` an unknown paper, or one that itself uses others, is an error."""
    found = [read_paper(f) for f in sorted(papers_dir(root).iterdir()) if (f / PAPER_FILE).is_file()]
    papers = {p.id: p for p in sorted(found, key=lambda p: (p.is_cross, p.order, p.id))}
    for p in papers.values():
        bad = [u for u in p.uses if u not in papers or papers[u].is_cross]
        if bad:
            raise PaperError(f"lastlayer/papers/{p.id}/{PAPER_FILE}: uses {', '.join(bad)}, which "
                             f"{'is' if len(bad) == 1 else 'are'} not a paper of its own")
    return papers


def get_paper(paper: str, root: Path | None = None) -> Paper:
    papers = find_papers(root)
    if paper not in papers:
        raise PaperError(f"unknown paper {paper!r}; known papers: {', '.join(papers)}")
    return papers[paper]
