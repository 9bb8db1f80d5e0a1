"""The library's layering: the core names no paper, and each paper's package stands alone."""
import ast
from pathlib import Path

import lastlayer
from lastlayer.book.registry import find_papers
from lastlayer.book.runner import notebook_parameters

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
    """A paper's package imports no other paper's, except the papers its paper.yml declares it `uses` (a chapter
    that tests the papers against each other), and exactly those."""
    offenders = {}
    uses = {p: set(info.uses) for p, info in find_papers().items()}
    for paper_dir in sorted(d for d in (PACKAGE / "papers").iterdir() if d.is_dir() and d.name != "__pycache__"):
        allowed = {paper_dir.name} | uses.get(paper_dir.name, set())
        for f in _modules(paper_dir):
            bad = sorted(n for n in _imports(f) if n.startswith("lastlayer.papers.")
                         and n.split(".")[2] not in allowed)
            if bad:
                offenders[str(f.relative_to(PACKAGE))] = bad
    assert not offenders, f"a paper's package imports another paper's (not declared in its `uses`): {offenders}"


def test_a_paper_declares_exactly_the_papers_it_imports():
    """A declared use that nothing imports is stale: it would make the chapter go stale for nothing."""
    for paper, info in find_papers().items():
        imported = {n.split(".")[2] for f in _modules(PACKAGE / "papers" / paper) for n in _imports(f)
                    if n.startswith("lastlayer.papers.") and len(n.split(".")) > 2} - {paper}
        assert imported == set(info.uses), (paper, sorted(imported), info.uses)


def test_every_paper_is_a_folder_with_a_notebook_and_an_entry_point():
    """A paper is its folder: paper.yml (metadata and profiles), a package with one parameter type whose fields
    are exactly the notebook's parameters (no renames), one `run` and one `decide(rows, params)`."""
    import dataclasses
    import importlib
    import inspect
    papers = find_papers()
    assert len(papers) >= 5
    for paper in papers:
        assert (PACKAGE / "papers" / paper / "__init__.py").exists(), paper
        notebook = PACKAGE.parent / "notebooks" / f"{paper}.ipynb"
        assert notebook.exists(), paper
        package = importlib.import_module(f"lastlayer.papers.{paper}")
        assert dataclasses.is_dataclass(package.Params), paper
        names = [f.name for f in dataclasses.fields(package.Params)]
        assert names == list(notebook_parameters(notebook)), f"{paper}: Params fields differ from the cell"
        assert callable(package.run) and list(inspect.signature(package.run).parameters) == ["params"], paper
        decide = importlib.import_module(f"lastlayer.papers.{paper}.claims").decide
        assert list(inspect.signature(decide).parameters) == ["rows", "params"], paper


def test_the_tooling_imports_papers_by_name_in_one_place_only():
    """`registry.Paper.load` is the one dynamic import of paper code; the import check above cannot see
    dynamic imports, so this test holds every other core module to static imports."""
    users = sorted(str(f.relative_to(PACKAGE)) for f in _modules(PACKAGE) if f.relative_to(PACKAGE).parts[0] != "papers"
                   and ({"importlib", "importlib.util", "importlib.import_module"} & _imports(f)
                        or "__import__(" in f.read_text()))
    assert users == ["book/registry.py"], users


def _graph() -> dict[str, set[str]]:
    """{module: the lastlayer modules it imports}, counting imports inside functions too."""
    mods = {".".join(f.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): f
            for f in _modules(PACKAGE)}
    # a submodule's `from . import x` names its own package too; that is no edge (the package is already loading)
    return {m: {n for n in _imports(f) if n in mods and n != m and not m.startswith(n + ".")}
            for m, f in mods.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == "open":
                return stack[stack.index(n):] + [n]
            if n not in state and (found := visit(n)):
                return found
        stack.pop()
        state[m] = "done"
    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_no_import_cycle():
    """Imports go one way, even the ones deferred into functions (a deferred import hides a cycle, it does
    not remove it)."""
    graph = _graph()
    assert "lastlayer.book.runner" in graph and "lastlayer.book.pages" in graph["lastlayer.book.cli"]
    assert _cycle(graph) is None, f"import cycle: {' -> '.join(_cycle(graph))}"
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]  # the checker finds one


def test_import_graph_check_catches_a_paper_import(tmp_path, monkeypatch):
    """The checker itself: a core file that imports a paper is reported."""
    fake = PACKAGE / "_layout_probe_tmp.py"
    fake.write_text("from lastlayer.papers.geometry import experiments\n")
    try:
        assert "lastlayer.papers.geometry" in _imports(fake)
    finally:
        fake.unlink()
