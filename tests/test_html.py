"""The built book as a reader meets it: it builds with -W; no table cell is cut short, no raw TeX shows outside
math, no stray outputs (object reprs, tracebacks, stderr), every image and internal link exists, and the formulas
render from a MathJax copy inside the site, with no network."""
import re
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from lastlayer.book.pages import build_html, generated, load_results

from .conftest import ROOT


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("book")
    assert build_html(ROOT, out) == 0, "the book does not build with warnings as errors (see the output above)"
    return out / "_build" / "html"


def _pages(site: Path) -> dict[str, BeautifulSoup]:
    skip = {"genindex.html", "search.html", "index.html"}
    return {p.relative_to(site).as_posix(): BeautifulSoup(p.read_text(), "html.parser")
            for p in sorted(site.rglob("*.html")) if p.name not in skip and "_static" not in p.parts}


@pytest.fixture(scope="module")
def pages(site) -> dict[str, BeautifulSoup]:
    return _pages(site)


def _main(soup: BeautifulSoup):
    return soup.find("main") or soup.find("article") or soup


def test_every_page_of_the_book_is_built(pages):
    expected = ["book/intro", "book/scorecard", "book/reproduce", "book/references"]
    expected += [f"book/executed/{p}" for p in load_results(ROOT)]
    expected += [f"book/executed/paper/{p}" for p in load_results(ROOT, "paper")]
    for page in expected:
        assert f"{page}.html" in pages, page


def test_no_table_cell_is_truncated(pages):
    bad = [(name, cell.get_text(" ", strip=True)[-60:]) for name, soup in pages.items()
           for cell in _main(soup).find_all(["td", "th"])
           if re.search(r"(\.\.\.|…)$", cell.get_text(strip=True))]
    assert not bad, f"{len(bad)} table cells end in '...': {bad[:5]}"


TEX = re.compile(r"\\(frac|sum|sqrt|mathrm|mathbf|text|left|right|alpha|beta|sigma|mu|cdot|times|leq|geq|in)\b"
                 r"|\$[^$\n]{1,80}\$|\\\(|\\\[")


def test_no_raw_tex_outside_math(pages):
    bad = []
    for name, soup in pages.items():
        main = BeautifulSoup(str(_main(soup)), "html.parser")  # a copy: the pages are shared between tests
        for el in main.find_all(["script", "style", "pre", "code"]) + main.select(".math, .MathJax, mjx-container"):
            el.decompose()
        for m in TEX.finditer(main.get_text(" ")):
            bad.append((name, m.group(0)))
    assert not bad, f"raw TeX shown as text: {bad[:8]}"


STRAY = re.compile(r"PosixPath\(|WindowsPath\(|Traceback \(most recent call last\)|<\w+(\.\w+)+ object at 0x"
                   r"|^\s*(Warning|UserWarning|RuntimeWarning|FutureWarning|DeprecationWarning):", re.M)


def test_no_stray_outputs(pages):
    bad = []
    for name, soup in pages.items():
        main = _main(soup)
        if main.select(".output.stderr, .output.traceback, .output.error"):
            bad.append((name, "stderr or error output"))
        for out in main.select(".cell_output"):
            m = STRAY.search(out.get_text("\n"))
            if m:
                bad.append((name, m.group(0)))
    assert not bad, f"stray outputs: {bad[:8]}"


def test_every_image_and_internal_link_exists(site, pages):
    missing = []
    for name, soup in pages.items():
        here = (site / name).parent
        for img in _main(soup).find_all("img"):
            src = img.get("src", "")
            if not src.startswith(("http:", "https:", "data:")) and not (here / src).exists():
                missing.append((name, src))
        for a in _main(soup).find_all("a", href=True):
            href = a["href"].split("#")[0]
            if href and not href.startswith(("http:", "https:", "mailto:")) and not (here / href).exists():
                missing.append((name, href))
    assert not missing, f"missing images or link targets: {missing[:8]}"


def test_math_renders_from_the_site_without_a_network(site, pages):
    with_math = 0
    for name, soup in pages.items():
        sources = [s.get("src", "") for s in soup.find_all("script")]
        assert not [s for s in sources if "mathjax" in s.lower() and s.startswith(("http:", "https:", "//"))], name
        if soup.select(".math"):  # Sphinx loads MathJax only on pages with math
            with_math += 1
            local = [s for s in sources if s.endswith("mathjax/tex-chtml.js")]
            assert local, f"{name} has math but loads no local MathJax"
            assert ((site / name).parent / local[0]).exists()
    fonts = site / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2"
    assert not with_math or any(fonts.glob("*.woff")), "MathJax's fonts are not in the site"


def test_scorecard_shows_every_claim_verdict_first(pages):
    soup = pages["book/scorecard.html"]
    results = load_results(ROOT)
    rows = [tr for table in soup.select("table.ll-claims") for tr in table.select("tbody tr")]
    assert len(rows) == sum(len(r["claims"]) for r in results.values())
    for tr in rows:
        first = tr.find("td")
        assert first.select(".ll-badge"), "the verdict badge is the first cell"


def test_generated_pages_are_what_the_results_say(site):
    # build_html regenerated them before building: the files in the tree are now exactly the generated text
    for path, text in generated(ROOT).items():
        assert path.read_text() == text, path
