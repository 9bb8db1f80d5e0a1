"""A Sphinx extension for the book (`_config.yml`: `sphinx.extra_extensions`).

- MathJax without a network: the built site carries its own copy of MathJax 3 (from the `django-static-mathjax`
  package, which ships MathJax's files and nothing else that we use), and `mathjax_path` points to it.
- A stale chapter says so: a chapter whose notebook, profile or code changed since its run gets a warning
  under its title (`lastlayer.book.pages.chapter_status`).
- A chapter is named and sourced from its paper.yml: its title is the paper's `title` (the name the sidebar,
  the scorecard and the introduction all use), and under it a line cites the paper (sphinxcontrib-bibtex, key
  `citation`), links it (`url`) and its authors' code (`code`), names our code in this repository, and offers
  this page's results file and executed notebook as downloads (Sphinx's download role ships them with the
  site). It is added when the page is read, so an executed notebook needs no rerun to get it.
"""
from __future__ import annotations

import json
import posixpath
import re
import shutil
from pathlib import Path

from docutils import nodes
from sphinx.errors import ExtensionError

MATHJAX_URL = "mathjax/tex-chtml.js"  # relative to _static
# What tex-chtml.js loads: itself, its fonts, and the TeX extensions and accessibility parts it loads on demand.
MATHJAX_PARTS = ("tex-chtml.js", "output/chtml/fonts", "input/tex/extensions", "a11y", "ui")


def mathjax_source() -> Path:
    try:
        import mathjax
    except ImportError:
        raise ExtensionError("MathJax is not installed: `pip install -r requirements.txt` installs it "
                             "(package django-static-mathjax)") from None
    src = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (src / "tex-chtml.js").exists():
        raise ExtensionError(f"the installed MathJax package has no es5/tex-chtml.js under {src.parent}")
    return src


def _config_inited(app, config) -> None:
    mathjax_source()  # fail early, before anything is built
    config.mathjax_path = MATHJAX_URL


def _copy_mathjax(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    src, dst = mathjax_source(), Path(app.outdir) / "_static" / "mathjax"
    for part in MATHJAX_PARTS:
        if (src / part).is_dir():
            shutil.copytree(src / part, dst / part, dirs_exist_ok=True)
        else:
            dst.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / part, dst / part)


def _chapters(app) -> dict[str, tuple[str, str]]:
    """{docname: (paper, scale)} of the executed chapters, with their status computed once per build."""
    if not hasattr(app, "_lastlayer_states"):  # on the app, not the env: the env is cached between builds
        from lastlayer.book.pages import executed
        from lastlayer.book.registry import find_papers
        from lastlayer.book.runner import status
        root = Path(app.srcdir)
        states = {}
        for paper in find_papers(root):
            for scale, doc in (("cpu", f"book/executed/{paper}"), ("paper", f"book/executed/paper/{paper}")):
                if executed(root, paper, scale).exists():
                    try:
                        states[doc] = (paper, scale, status(paper, root, scale))
                    except (OSError, ValueError, KeyError):
                        states[doc] = (paper, scale, "stale")
        app._lastlayer_states = states
    return app._lastlayer_states


def _flag_stale(app, doctree) -> None:
    entry = _chapters(app).get(app.env.docname)
    if not entry or entry[2] != "stale":
        return
    paper, scale, _ = entry
    rerun = f"python -m lastlayer run {paper}" + (" --profile paper" if scale == "paper" else "")
    note = nodes.warning()
    para = nodes.paragraph()
    para += nodes.strong(text="Stale: ")
    para += nodes.Text("the notebook, its profile or the library code changed since this page was run, so its "
                       "numbers may not be what the code gives now. Rerun it with ")
    para += nodes.literal(text=rerun)
    para += nodes.Text(".")
    note += para
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is not None and section.children and isinstance(section[0], nodes.title):
        section.insert(1, note)


def _bib_title(app, key: str) -> str | None:
    """The paper's own title, from book/references.bib (braces that protect capitals dropped)."""
    if not hasattr(app, "_lastlayer_bib"):
        from pybtex.database import parse_file
        app._lastlayer_bib = {}
        for bib in app.config.bibtex_bibfiles:
            app._lastlayer_bib.update(parse_file(str(Path(app.srcdir) / bib)).entries)
    entry = app._lastlayer_bib.get(key)
    return entry.fields["title"].replace("{", "").replace("}", "") if entry and "title" in entry.fields else None


def chapter_title(info, scale: str) -> str:
    return info.title + (": the paper's scale" if scale == "paper" else "")


def sources_line(app, docname: str, info, scale: str) -> str:
    """The MyST line under a chapter's title: the paper, its code, ours, and this page's data."""
    from lastlayer.book.pages import executed, results_file
    here = posixpath.dirname(docname)
    root = Path(app.srcdir)
    rel = lambda path: posixpath.relpath(path.relative_to(root).as_posix(), here)  # noqa: E731
    title = _bib_title(app, info.citation)
    paper = (f"*{title}*, " if title else "") + f"{{cite:t}}`{info.citation}`"
    if info.url:
        paper += f" ([read it]({info.url}))"
    code = f"[its authors' code]({info.code})" if info.code else "its authors' code is not public"
    if info.is_cross:  # a chapter built on the other chapters' packages: it cites the papers whose ideas it tests
        uses = ", ".join(f"`lastlayer/papers/{u}/`" for u in info.uses)
        paper, code = f"{{cite:t}}`{info.citation}`", f"it builds on {uses}"
    ours = (f"ours is `notebooks/{info.id}.ipynb` and `lastlayer/papers/{info.id}/` in this repository "
            f"({{ref}}`how to get it <get-the-code>`)")
    data = (f"{{download}}`results file <{rel(results_file(root, info.id, scale))}>` (claims, verdicts, every "
            f"run's measurements and parameters) and {{download}}`executed notebook <{rel(executed(root, info.id, scale))}>`")
    return f"**The paper{'s' if info.is_cross else ''}:** {paper}; {code}; {ours}. **This page's data:** {data}."


def _name_and_source(app, docname: str, source: list[str]) -> None:
    """Set an executed chapter's title to its paper.yml title, and put the sources line under it."""
    entry = _chapters(app).get(docname)
    if not entry:
        return
    from lastlayer.book.pages import results_file
    from lastlayer.book.registry import find_papers
    paper, scale, _ = entry
    info = find_papers(Path(app.srcdir))[paper]
    nb = json.loads(source[0])
    first = next((c for c in nb["cells"] if c["cell_type"] == "markdown"), None)
    text = "".join(first["source"]) if first else ""
    if not re.match(r"# ", text):
        raise ExtensionError(f"{docname}: the notebook's first markdown cell does not start with a '# ' title")
    rest = text.split("\n", 1)[1] if "\n" in text else ""
    first["source"] = (f"# {chapter_title(info, scale)}\n\n"
                       f":::{{div}} ll-sources\n{sources_line(app, docname, info, scale)}\n:::\n{rest}")
    for cell in nb["cells"]:  # the provenance note (runner.add_provenance) names the results file: link it
        if cell.get("id") == "provenance":
            results = results_file(Path(app.srcdir), paper, scale)
            link = (f"{{download}}`{results.relative_to(app.srcdir).as_posix()} "
                    f"<{posixpath.relpath(results.relative_to(app.srcdir).as_posix(), posixpath.dirname(docname))}>`")
            cell["source"] = re.sub(r"`book/results/[\w/.-]+\.json`", lambda m: link, "".join(cell["source"]))
    source[0] = json.dumps(nb)


def _reread_chapters(app, env, added, changed, removed):
    """The status of a chapter depends on files outside it (the code): read the chapters again every build."""
    return [doc for doc in _chapters(app) if doc in env.found_docs and doc not in changed]


def setup(app):
    app.connect("env-get-outdated", _reread_chapters)
    app.connect("config-inited", _config_inited)
    app.connect("source-read", _name_and_source)
    app.connect("doctree-read", _flag_stale)
    app.connect("build-finished", _copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
