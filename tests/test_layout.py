"""The library's layering: the core names no paper, and each paper's package stands alone."""
import ast
from pathlib import Path

import lastlayer

PACKAGE = Path(lastlayer.__file__).resolve().parent


def _imports(path: Path) -> set[str]:
    """Absolute module names imported by a file (relative imports resolved against its package)."""
    tree = ast.parse(path.read_text())
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(parts[:-node.level]) if path.name != "__init__.py" else list(parts[:len(parts) - node.level])
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            names.add(mod)
            names.update(f"{mod}.{a.name}" for a in node.names)
    return names


def _modules(where: Path):
    return sorted(p for p in where.rglob("*.py"))


def test_core_imports_no_paper():
    offenders = {}
    for f in _modules(PACKAGE):
        rel = f.relative_to(PACKAGE)
        if rel.parts[0] == "papers":
            continue
        bad = sorted(n for n in _imports(f) if n.startswith("lastlayer.papers"))
        if bad:
            offenders[str(rel)] = bad
    assert not offenders, f"core modules import paper code: {offenders}"


def test_papers_import_no_other_paper():
    offenders = {}
    for paper_dir in sorted(d for d in (PACKAGE / "papers").iterdir() if d.is_dir() and d.name != "__pycache__"):
        for f in _modules(paper_dir):
            bad = sorted(n for n in _imports(f) if n.startswith("lastlayer.papers.")
                         and n.split(".")[2] != paper_dir.name)
            if bad:
                offenders[str(f.relative_to(PACKAGE))] = bad
    assert not offenders, f"a paper's package imports another paper's: {offenders}"


def test_every_paper_has_a_package_notebook_and_profiles():
    root = PACKAGE.parent
    for paper in lastlayer.PAPERS:
        assert (PACKAGE / "papers" / paper / "__init__.py").exists(), paper
        assert (root / "notebooks" / f"{paper}.ipynb").exists(), paper
        assert (root / "notebooks" / f"{paper}.yml").exists(), paper


def test_import_graph_check_catches_a_paper_import(tmp_path, monkeypatch):
    """The checker itself: a core file that imports a paper is reported."""
    fake = PACKAGE / "_layout_probe_tmp.py"
    fake.write_text("from lastlayer.papers.geometry import experiments\n")
    try:
        assert "lastlayer.papers.geometry" in _imports(fake)
    finally:
        fake.unlink()
