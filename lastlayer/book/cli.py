"""Command line: `python -m lastlayer run|book|html|pages|prepare|list|bench`."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lastlayer import PAPERS, PROFILES
from lastlayer.book.runner import RunnerError, available_papers, default_root, parse_value, prepare_notebooks, run


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lastlayer", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="execute one paper's notebook into book/executed and book/results")
    r.add_argument("paper", help=f"one of {', '.join(PAPERS)}")
    r.add_argument("--profile", default="cpu", help=f"one of {', '.join(PROFILES)} (default cpu)")
    r.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="override a notebook parameter (YAML value: 0.1, true, [1, 2], text)")
    r.add_argument("--force", action="store_true", help="run even if nothing changed since the last run")

    b = sub.add_parser("book", help="run every paper (skipping unchanged ones), then build the HTML")
    b.add_argument("--profile", default="cpu", help=f"one of {', '.join(PROFILES)} (default cpu)")
    b.add_argument("--force", action="store_true")

    sub.add_parser("html", help="build the HTML book from the executed notebooks (no execution)")
    sub.add_parser("pages", help="regenerate the scorecard and the run-time table from book/results")
    pr = sub.add_parser("prepare", help="inject a profile's parameters into every notebook, without running")
    pr.add_argument("out", type=Path)
    pr.add_argument("--profile", default="smoke")
    sub.add_parser("list", help="the papers, their notebooks and their last runs")
    be = sub.add_parser("bench", help="measure the trainer's speed; writes book/results/bench.json")
    be.add_argument("--quick", action="store_true", help="fewer repeats (for a smoke test)")
    return p


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    root = default_root()
    from lastlayer.book import pages as book
    try:
        if args.command == "run":
            overrides = {name: parse_value(value) for name, value in args.param}
            run(args.paper, args.profile, overrides, root=root, force=args.force)
        elif args.command == "book":
            papers = available_papers(root)
            for i, paper in enumerate(papers, 1):
                print(f"[{i}/{len(papers)}]", end=" ")
                run(paper, args.profile, root=root, force=args.force)
            sys.exit(book.build_html(root))
        elif args.command == "html":
            sys.exit(book.build_html(root))
        elif args.command == "pages":
            for path in book.write_pages(root):
                print(path.relative_to(root))
        elif args.command == "prepare":
            for path in prepare_notebooks(args.profile, args.out, root):
                print(path)
        elif args.command == "list":
            results = book.load_results(root)
            for paper in PAPERS:
                state = "notebook" if paper in available_papers(root) else "no notebook yet"
                if paper in results:
                    r = results[paper]
                    state += f"; last run: profile {r['profile']}, {r['seconds'] / 60:.1f} min on {r['device']}"
                print(f"{paper:18s} {state}")
        elif args.command == "bench":
            from .bench import main as bench_main
            bench_main(root, quick=args.quick)
    except RunnerError as e:  # bad input: nothing was executed
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except RuntimeError as e:  # a notebook failed or broke the results contract; the book is unchanged
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
