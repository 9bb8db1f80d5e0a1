"""The built book as a reader meets it: it builds with -W; no table cell is cut short, no raw TeX shows outside
math, no stray outputs (object reprs, tracebacks, stderr), every image and internal link exists, and the formulas
render from a MathJax copy inside the site, with no network."""
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from PIL import Image

from lastlayer.book.pages import build_html, executed, generated, load_results, results_file
from lastlayer.book.registry import find_papers

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


RAW_NUMBERS = {
    "a negative zero": re.compile(r"(?<![\w.])[-\u2212]0(\.0+)?(?![\d.])"),
    "a singular count in the plural": re.compile(r"(?<![\d.,])1 (threads|seeds|runs|rounds|draws|chunks|workers|"
                                                 r"minutes|epochs|points|images|claims|parts)\b"),
    "a level with four decimals or more": re.compile(r"\d+\.\d{4,}\s?%"),
    "a count of five digits without a separator": re.compile(r"\bn = \d{5,}"),
    "a raw float": re.compile(r"(?<![\w.])0*[1-9][\d.]*\b|(?<![\w.])0\.0*[1-9]\d*\b"),
}
ARXIV_ID = re.compile(r"(arXiv:?\s*|abs/)\d{4}\.\d{4,5}(v\d+)?|doi:\S+")  # names, not numbers
SIGNIFICANT = 6  # a float shown with more significant digits than this was not rounded for a reader


def _raw(what: str, number: str) -> bool:
    return what != "a raw float" or ("." in number and len(number.replace(".", "").lstrip("0")) > SIGNIFICANT)


def test_no_number_reads_raw_in_the_text(pages):
    """Numbers are written for a reader: no -0.0, '1 threads', '98.3333%', 'n = 110823' or an unrounded float, in
    prose, tables and figure captions alike (code is left as it is)."""
    bad = []
    for name, soup in pages.items():
        main = BeautifulSoup(str(_main(soup)), "html.parser")  # a copy: the pages are shared by the module's tests
        for code in main.select("pre, code, div.highlight, .cell_input"):
            code.decompose()
        text = ARXIV_ID.sub("", main.get_text(" ", strip=True))
        for what, pattern in RAW_NUMBERS.items():
            bad += [(name, what, text[max(0, m.start() - 40):m.end() + 20]) for m in pattern.finditer(text)
                    if _raw(what, m.group())]
    assert not bad, f"{len(bad)} raw numbers: {bad[:8]}"


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


def _css_rules(css: str) -> list[tuple[str, dict[str, str]]]:
    """(selector, {property: value}) for every rule of a stylesheet, those inside @media blocks included."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    rules = []
    for m in re.finditer(r"([^{}]+)\{([^{}]*)\}", css):
        decls = dict((k.strip().lower(), v.strip().lower()) for k, _, v in
                     (d.partition(":") for d in m.group(2).split(";") if ":" in d))
        for selector in m.group(1).split(","):
            if "::" not in selector and not selector.strip().startswith("@"):  # no element matches these
                rules.append((selector.strip(), decls))
    return rules


def _inline_size(img) -> tuple[float | None, float | None]:
    """The display size the page itself gives an image: its style="width: ..; height: .." or its attributes."""
    style = dict((k.strip().lower(), v.strip()) for k, _, v in
                 (d.partition(":") for d in img.get("style", "").split(";") if ":" in d))
    size = []
    for side in ("width", "height"):
        value = style.get(side) or img.get(side)
        m = re.fullmatch(r"([\d.]+)(px)?", value or "")
        size.append(float(m.group(1)) if m else None)
    return size[0], size[1]


def test_every_figure_keeps_its_aspect_ratio(site, pages):
    """myst-nb writes each image's size inline; an inline height beats a stylesheet's `height: auto` unless that
    is !important, and then a figure shrunk to the column (max-width) is squashed. Every image must (1) declare
    a size of its own shape, (2) be matched by a rule of the book's stylesheet that caps its width, and (3)
    where it has an inline height, by one that overrides it (`height: auto !important`)."""
    rules = _css_rules((site / "_static" / "lastlayer.css").read_text())
    bad, seen = [], 0
    for name, soup in pages.items():
        assert soup.find("link", href=re.compile(r"_static/lastlayer\.css")), f"{name} does not load lastlayer.css"
        main = _main(soup)
        matching = {}  # id(img) -> the declarations of every rule that selects it
        for selector, decls in rules:
            for el in main.select(selector):
                matching.setdefault(id(el), []).append(decls)
        for img in main.find_all("img"):
            src = img.get("src", "")
            if src.startswith(("http:", "https:", "data:")) or src.endswith(".svg"):
                continue
            seen += 1
            with Image.open((site / name).parent / src) as im:
                natural = im.width / im.height
            width, height = _inline_size(img)
            decls = matching.get(id(img), [])
            if width and height and abs(width / height / natural - 1) > 0.02:
                bad.append((name, src, f"inline size {width}x{height} is not the image's shape {natural:.3f}"))
            if not any(d.get("max-width") == "100%" for d in decls):
                bad.append((name, src, "no rule caps its width at the column (max-width: 100%)"))
            if height and not any(re.fullmatch(r"auto\s*!important", d.get("height", "")) for d in decls):
                bad.append((name, src, f"inline height {height}px is not overridden: squashed when the column "
                                       "is narrower than the figure"))
    assert seen, "the book shows no figure: the check would pass on nothing"
    assert not bad, f"{len(bad)} figures can be drawn out of shape: {bad[:5]}"


def _chromium() -> str | None:
    return next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


# Runs in the page once it has loaded: every image's drawn size, its own size, and the width of the viewport.
PROBE = """<script>window.addEventListener("load", () => parent.postMessage(JSON.stringify(
  [...document.images].map(i => { const r = i.getBoundingClientRect();
    return [i.getAttribute("src"), r.width, r.height, i.naturalWidth, i.naturalHeight, r.right,
            document.documentElement.clientWidth]; })), "*"));</script>"""
# Headless Chromium lays a window out at least 500 px wide: the page is drawn in a frame of the width under test.
FRAME = """<html><body style="margin:0"><pre id="ll-probe"></pre>
<iframe src="{src}" style="width:{width}px;height:2000px;border:0"></iframe>
<script>addEventListener("message", e => document.getElementById("ll-probe").textContent = e.data);</script>
</body></html>"""


@pytest.mark.skipif(_chromium() is None, reason="headless Chromium is not installed (apt-get install chromium): "
                    "the stylesheet check test_every_figure_keeps_its_aspect_ratio still runs")
@pytest.mark.parametrize("width", [1280, 400])
def test_figures_are_drawn_true_to_shape_in_chromium(site, pages, tmp_path, width):
    drawn = []
    for name, soup in pages.items():
        if not soup.find("img"):
            continue
        page = tmp_path / name.replace("/", "-")
        base = ((site / name).parent.resolve().as_uri()) + "/"
        page.write_text((site / name).read_text().replace("<head>", f'<head><base href="{base}">', 1)
                        .replace("</body>", PROBE + "</body>", 1))
        frame = tmp_path / f"frame-{page.name}"
        frame.write_text(FRAME.format(src=page.as_uri(), width=width))
        dom = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                              f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={max(width, 500) + 40},2000",
                              "--virtual-time-budget=10000", "--dump-dom", frame.as_uri()],
                             capture_output=True, text=True, timeout=120).stdout
        m = re.search(r'<pre id="ll-probe">(.*?)</pre>', dom, re.S)
        assert m and m.group(1), f"{name}: the page did not report its images in Chromium"
        drawn += [(name, *row) for row in json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&"))]
    bad = [(name, src, f"drawn {w:.0f}x{h:.0f}, image {nw}x{nh}") for name, src, w, h, nw, nh, right, vw in drawn
           if not nw or not nh or not h or abs((w / h) / (nw / nh) - 1) > 0.02 or right > vw + 1]
    assert len(drawn) >= 20, f"only {len(drawn)} images were drawn"
    assert not bad, f"{len(bad)} of {len(drawn)} images drawn out of shape or wider than the page at {width} px: {bad[:5]}"


# Every table wider than the box that holds it (a reader would have to scroll it sideways): its caption or first
# words, its width and the width it has.
TABLE_PROBE = """<script>window.addEventListener("load", () => parent.postMessage(JSON.stringify(
  [...document.querySelectorAll("article table")].map(t => [
    ((t.querySelector("caption") || {}).textContent || t.textContent).trim().slice(0, 60),
    t.scrollWidth, t.parentElement.clientWidth]).filter(r => r[1] > r[2] + 1)), "*"));</script>"""


@pytest.mark.skipif(_chromium() is None, reason="headless Chromium is not installed (apt-get install chromium)")
def test_every_table_fits_its_column_at_desktop_width_in_chromium(site, pages, tmp_path):
    """At 1280 px no table is wider than the column: long words wrap (overflow-wrap: anywhere counts in a
    column's smallest width, break-word does not), and a data table too wide for the column is laid out the
    other way round by the code that makes it."""
    wide, seen = [], 0
    for name, soup in pages.items():
        if not soup.select("article table"):
            continue
        seen += 1
        page = tmp_path / name.replace("/", "-")
        base = ((site / name).parent.resolve().as_uri()) + "/"
        page.write_text((site / name).read_text().replace("<head>", f'<head><base href="{base}">', 1)
                        .replace("</body>", TABLE_PROBE + "</body>", 1))
        frame = tmp_path / f"frame-{page.name}"
        frame.write_text(FRAME.format(src=page.as_uri(), width=1280))
        dom = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                              f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1320,2000",
                              "--virtual-time-budget=10000", "--dump-dom", frame.as_uri()],
                             capture_output=True, text=True, timeout=120).stdout
        m = re.search(r'<pre id="ll-probe">(.*?)</pre>', dom, re.S)
        assert m and m.group(1), f"{name}: the page did not report its tables in Chromium"
        wide += [(name, *row) for row in json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&"))]
    assert seen >= 5, f"only {seen} pages with tables were checked"
    assert not wide, f"{len(wide)} tables are wider than their column at 1280 px: {wide[:5]}"


def _chapters():
    """(page, paper, scale) of every executed chapter."""
    return [(f"book/executed/{'paper/' if scale == 'paper' else ''}{p}.html", p, scale)
            for scale in ("cpu", "paper") for p in load_results(ROOT, scale)]


def test_every_chapter_cites_and_links_its_paper_its_code_and_its_data(site, pages):
    papers = find_papers(ROOT)
    for name, paper, scale in _chapters():
        info, main = papers[paper], _main(pages[name])
        sources = main.select_one(".ll-sources")
        assert sources, f"{name}: no sources line under the title"
        hrefs = [a["href"] for a in sources.find_all("a", href=True)]
        assert any(h.startswith("../" * name.count("/", len("book/")) + "references.html#") for h in hrefs), \
            f"{name}: the paper is not cited (no link into the references)"
        for url in (info.url, info.code):
            assert url is None or url in hrefs, f"{name}: {url} is not linked"
        assert any("reproduce.html#get-the-code" in h for h in hrefs), f"{name}: no way to the repository"
        downloads = {Path(h).name: (site / name).parent / h for h in hrefs if "_downloads/" in h}
        for file in (results_file(ROOT, paper, scale), executed(ROOT, paper, scale)):
            assert file.name in downloads, f"{name}: {file.name} is not offered for download"
            assert downloads[file.name].read_bytes() == file.read_bytes(), f"{name}: the download is not {file}"
        note = [a["href"] for el in main.select(".admonition.note") for a in el.find_all("a", href=True)]
        assert any(h.endswith(f"/{paper}.json") for h in note), f"{name}: the provenance note does not link its results"


def test_one_name_per_paper_in_the_sidebar_the_chapter_the_scorecard_and_the_introduction(pages):
    papers = find_papers(ROOT)
    sidebar = [a.get_text(" ", strip=True) for a in pages["book/scorecard.html"].select("nav.bd-docs-nav a")]
    scorecard = [h.get_text(" ", strip=True).rstrip("#").strip() for h in _main(pages["book/scorecard.html"]).find_all("h2")]
    intro = [a.get_text(" ", strip=True) for a in _main(pages["book/intro.html"]).select("table a")]
    for name, paper, scale in _chapters():
        if scale != "cpu":
            continue
        title = papers[paper].title
        assert _main(pages[name]).find("h1").get_text(" ", strip=True).rstrip("#").strip().endswith(title), name
        assert any(re.fullmatch(rf"\d+\. {re.escape(title)}", t) for t in sidebar), (title, sidebar)
        assert title in scorecard and title in intro, (title, scorecard, intro)


def test_the_repository_is_named_and_how_to_get_it(pages):
    main = _main(pages["book/reproduce.html"])
    assert main.find(id="get-the-code"), "no 'Get the code' section"
    assert "git clone <repository URL>" in main.get_text(), "the clone command is not shown"
    assert "this repository" in main.find(id="get-the-code").get_text(" ")


def test_the_introduction_totals_the_verdicts(pages):
    main = _main(pages["book/intro.html"])
    results = load_results(ROOT)
    row = next(tr for tr in main.select("table.ll-table tr") if "all papers" in tr.get_text())
    cross = {p for p, info in find_papers(ROOT).items() if info.is_cross}  # counted apart, in rows of their own
    assert sum(int(b.get_text().split()[0]) for b in row.select(".ll-badge")) == \
        sum(len(r["claims"]) for p, r in results.items() if p not in cross)


def test_scorecard_is_compact_and_each_claim_links_to_its_row_in_the_chapter(site, pages):
    soup = pages["book/scorecard.html"]
    rules = _css_rules((site / "_static" / "lastlayer.css").read_text())
    container = soup.select_one(".bd-article-container")
    assert any(d.get("max-width") in ("100%", "none") and container in soup.select(sel) for sel, d in rules), \
        "the scorecard's page is as narrow as a chapter's"
    for paper, r in load_results(ROOT).items():
        chapter = pages[f"book/executed/{paper}.html"]
        anchored = bool(chapter.select('[id^="claim-"]'))  # once the chapter's claims table gives its rows ids
        for c in r["claims"]:
            link = soup.find("a", href=f"executed/{paper}.html#claim-{c['id']}")
            assert link, f"the scorecard row of {paper}/{c['id']} does not link to its claim"
            row = link.find_parent("tr")
            assert row.select_one("td.ll-rule details"), f"{paper}/{c['id']}: the rule is not folded"
            setting = c.get("setting") or ""
            assert not setting.startswith("proxy:") or setting not in row.get_text(" "), \
                f"{paper}/{c['id']}: the full setting is the chapter's; the row shows a tag"
            assert not anchored or chapter.find(id=f"claim-{c['id']}"), f"{paper}: no anchor claim-{c['id']}"
