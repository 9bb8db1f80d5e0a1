"""Screenshot every page of the built book in headless Chromium, at desktop and at phone width.

    python scripts/screenshots.py [--html _build/html] [--out build/screenshots] [--pages intro scorecard]

Needs Debian's `chromium` (`apt-get install chromium`). Each page is rendered in a window as tall as `--height`
and the empty space below the content is trimmed, so one picture shows the whole page as a reader scrolls it.
The pictures go to build/screenshots/ (git-ignored): look at them before a change to the book is done.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

WIDTHS = {"desktop": 1280, "phone": 400}
MAX_HEIGHT = 120000  # CSS pixels: the tallest window tried for one page
SKIP = {"genindex.html", "search.html", "index.html"}


def browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    sys.exit("no Chromium found: apt-get install chromium")


def pages(html: Path, only: list[str]) -> list[Path]:
    found = sorted(p for p in html.rglob("*.html") if p.name not in SKIP and "_static" not in p.parts
                   and "_sources" not in p.parts)
    return [p for p in found if not only or any(o in p.stem for o in only)]


def trim(png: Path) -> tuple[int, int]:
    """Cut the blank space under the content (the window is taller than most pages): the picture ends at the
    last row of the content column that is not a single colour (sidebars and footers run the full height)."""
    img = Image.open(png).convert("RGB")
    a = np.asarray(img)
    column = a[:, a.shape[1] // 4: a.shape[1] * 3 // 4] if a.shape[1] > 800 else a
    busy = np.nonzero((column != column[:, :1]).any(axis=(1, 2)))[0]
    if len(busy):
        gaps = np.nonzero(np.diff(busy) > 800)[0]  # the page footer sits at the window's bottom: stop before it
        end = busy[gaps[0]] if len(gaps) else busy[-1]
        img = img.crop((0, 0, img.width, min(img.height, int(end) + 60)))
    img.save(png, optimize=True)
    return img.size


def shoot(chrome: str, page: Path, out: Path, width: int, height: int) -> None:
    with tempfile.TemporaryDirectory() as profile:  # a fresh profile: no state leaks between pages
        subprocess.run([chrome, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--user-data-dir={profile}", f"--window-size={width},{height}",
                        "--virtual-time-budget=8000",  # let MathJax typeset before the picture
                        f"--screenshot={out}", page.resolve().as_uri()],
                       check=True, capture_output=True, timeout=120 * max(1, height // 30000))  # taller: longer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--html", type=Path, default=Path("_build/html"))
    p.add_argument("--out", type=Path, default=Path("build/screenshots"))
    p.add_argument("--height", type=int, default=30000,
                   help="window height in CSS pixels to start with (doubled for a page that does not fit)")
    p.add_argument("--pages", nargs="*", default=[], help="only pages whose name contains one of these")
    args = p.parse_args()
    if not (args.html / "index.html").exists():
        sys.exit(f"{args.html} holds no built book: run `make html` first")
    chrome = browser()
    for page in pages(args.html, args.pages):
        name = "-".join(page.relative_to(args.html).with_suffix("").parts)
        for label, width in WIDTHS.items():
            out = args.out / label / f"{name}.png"
            out.parent.mkdir(parents=True, exist_ok=True)
            height = args.height
            while True:  # a page as long as the window was cut off: shoot it again in a window twice as tall
                shoot(chrome, page, out, width, height)
                size = trim(out)
                if size[1] < height or height >= MAX_HEIGHT:
                    break
                height = min(2 * height, MAX_HEIGHT)
            cut = " (cut off: longer than the tallest window)" if size[1] >= MAX_HEIGHT else ""
            print(f"{out} ({size[0]}x{size[1]}){cut}", flush=True)


if __name__ == "__main__":
    main()
