"""A Sphinx extension for the book (`_config.yml`: `sphinx.extra_extensions`).

- MathJax without a network: the built site carries its own copy of MathJax 3 (from the `django-static-mathjax`
  package, which ships MathJax's files and nothing else that we use), and `mathjax_path` points to it.
- A stale chapter says so: a chapter whose notebook, profile or code changed since its run gets a warning
  under its title (`lastlayer.book.pages.chapter_status`).
"""
from __future__ import annotations

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


def _reread_chapters(app, env, added, changed, removed):
    """The status of a chapter depends on files outside it (the code): read the chapters again every build."""
    return [doc for doc in _chapters(app) if doc in env.found_docs and doc not in changed]


def setup(app):
    app.connect("env-get-outdated", _reread_chapters)
    app.connect("config-inited", _config_inited)
    app.connect("doctree-read", _flag_stale)
    app.connect("build-finished", _copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
