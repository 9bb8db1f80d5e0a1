"""Command line: `python -m lastlayer run|book|html|pages|status|params|plan|prepare|nbval-refresh|bench`.

Exit codes: 0 done, 1 a notebook failed or its outputs could not go into the book, 2 bad input (nothing
ran), 3 a partial run stopped at its `--max-minutes` deadline (rerun the same command to continue), 130 and
143 stopped by SIGINT (Ctrl-C) and SIGTERM (the kernel is shut down, the book is unchanged).
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from lastlayer.book.params import ParameterError, format_value
from lastlayer.book.plan import estimate, format_estimate
from lastlayer.book.registry import PROFILES, find_papers
from lastlayer.book.runner import (PartialRun, RunnerError, stop_on_signals, available_papers, default_root,
                                   load_profiles,
                                   notebook_parameters, parse_value, prepare_notebooks, run, status, Paths,
                                   check_paper, stopped_runs, command as rerun_command)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lastlayer", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="execute one paper's notebook into book/executed and book/results")
    r.add_argument("paper", help=f"one of {', '.join(find_papers())}")
    r.add_argument("--profile", default="cpu", help=f"one of {', '.join(PROFILES)} (default cpu)")
    r.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="override a notebook parameter: 3, 0.1, 1e-3, true, null, [1, 2], text or \"quoted text\"")
    r.add_argument("--force", action="store_true", help="run even if nothing changed since the last run")
    r.add_argument("--max-minutes", type=float, default=None, metavar="M",
                   help="stop after about M minutes (exit 3); finished runs are cached, so the same command continues")
    r.add_argument("--workers", type=int, default=1, metavar="N",
                   help="train up to N of an experiment's independent runs at once, in worker processes (for a "
                        "GPU; default 1). It changes the speed, not the numbers")
    r.add_argument("--cluster", default=None, metavar="SPEC",
                   help="train them on a Dask cluster instead: local:N (N one-thread processes here), a scheduler "
                        "address (tcp://host:8786), or slurm (settings in cluster.yml; README, 'On a cluster')")

    b = sub.add_parser("book", help="run every paper (skipping unchanged ones), then build the HTML")
    b.add_argument("--profile", default="cpu", help=f"one of {', '.join(PROFILES)} (default cpu)")
    b.add_argument("--force", action="store_true")
    b.add_argument("--workers", type=int, default=1, metavar="N", help="as for run")
    b.add_argument("--cluster", default=None, metavar="SPEC", help="as for run")

    sub.add_parser("html", help="build the HTML book from the executed notebooks (no execution)")
    sub.add_parser("pages", help="regenerate the scorecard and the run-time table from book/results")
    sub.add_parser("status", help="each paper's last run and whether it is current or stale for today's code")
    sub.add_parser("list", help="the same as status")
    pa = sub.add_parser("params", help="a paper's parameters: type, default, each profile's value, constraint, help")
    pa.add_argument("paper", help=f"one of {', '.join(find_papers())}")
    pl = sub.add_parser("plan", help="from a paper's committed run (the pilot), the n each claim needs for 80%% "
                                     "power, and what it would cost")
    pl.add_argument("paper", help=f"one of {', '.join(find_papers())}")
    pl.add_argument("--scale", default="cpu", choices=("cpu", "paper"))
    pl.add_argument("--json", action="store_true", help="print the plan as JSON")
    pl.add_argument("--write", action="store_true", help="store each claim's plan in the paper's planned.json, "
                                                           "which its declarations carry (before the confirmatory run)")
    pr = sub.add_parser("prepare", help="inject a profile's parameters into every notebook, without running")
    pr.add_argument("out", type=Path)
    pr.add_argument("--profile", default="smoke")
    nv = sub.add_parser("nbval-refresh", help="re-execute the smoke references in tests/nbval (accepts new numbers)")
    nv.add_argument("papers", nargs="*", help="default: every paper with a notebook")
    nv.add_argument("--out", type=Path, default=None, help="default: tests/nbval")
    be = sub.add_parser("bench", help="measure the trainer's speed; writes book/results/bench/<device>.json")
    be.add_argument("--quick", action="store_true", help="fewer repeats (for a smoke test)")
    bu = sub.add_parser("bundle", help="prepare a folder to carry to an offline GPU machine: wheels, data, setup.sh")
    bu.add_argument("out", type=Path, nargs="?", default=Path("build/gpu"), help="default: build/gpu")
    bu.add_argument("--python", default="3.12", help="the GPU machine's Python version (default 3.12)")
    return p


def print_status(root: Path) -> None:
    from lastlayer.book.pages import load_results
    for scale in ("cpu", "paper"):
        results = load_results(root, scale)
        for paper, info in find_papers(root).items():
            guess = estimate(paper, "paper", root) if scale == "paper" and not info.paper_scale_needs else None
            stopped = [r for r in stopped_runs(paper, root) if (r["profile"] == "paper") == (scale == "paper")]
            if scale == "paper" and paper not in results and not (guess and guess["seconds"]) and not stopped:
                continue
            state = status(paper, root, scale)
            if paper in results:
                r = results[paper]
                chunks = f" in {len(r['chunks'])} chunks" if len(r.get("chunks") or ()) > 1 else ""
                state += f"; last run: profile {r['profile']}, {r['seconds'] / 60:.1f} min{chunks} on {r['device']}"
            if guess and guess["seconds"]:
                state += f"; estimated {guess['seconds'] / 60:.0f} min at plan.yml's costs (`params {paper}`)"
            for r in stopped:
                n, again = len(r["chunks"]), rerun_command(paper, r["profile"], r["overrides"])
                if r["cache"]:  # kept in the repository: the command must use that cache
                    again = f"LASTLAYER_CACHE={r['cache']} {again}"
                state += (f"; a run stopped after {n} chunk{'s' if n > 1 else ''} ({sum(r['chunks']) / 60:.1f} min), "
                          f"its finished trainings in the run cache: `{again}` continues it")
            print(f"{paper:18s} {'paper scale ' if scale == 'paper' else ''}{state}")


def print_params(paper: str, root: Path) -> None:
    paths = Paths(root)
    check_paper(paper, paths)
    params = notebook_parameters(paths.notebook(paper))
    profiles = load_profiles(paper, paths)
    print(f"{paper}: the parameters cell of notebooks/{paper}.ipynb; profiles from lastlayer/papers/{paper}/paper.yml")
    print(f"usage: python -m lastlayer run {paper} --profile PROFILE -p NAME VALUE ...")
    for profile in ("cpu", "paper"):
        line = format_estimate(paper, profile, root)
        if line:
            print(line)
    print()
    for name, p in params.items():
        head = f"{name}  ({p.type_name})  default {format_value(p.default)}"
        print(head + (f"  [{p.constraint}]" if p.constraint else ""))
        if p.help:
            print(f"    {p.help}")
        values = [f"{prof}: {format_value(profiles[prof].get(name, p.default))}" for prof in PROFILES]
        print("    " + "   ".join(values))


def main(argv: list[str] | None = None) -> None:
    with stop_on_signals():  # from the start: a signal while torch imports must not kill us without a word
        try:
            _main(argv)
        except KeyboardInterrupt as e:  # Stopped, or a Ctrl-C that came before the handlers
            signum = getattr(e, "signum", signal.SIGINT)
            print(f"stopped by {signal.Signals(signum).name}: the kernel was shut down and the book was not "
                  f"changed", file=sys.stderr)
            sys.exit(128 + signum)
        except BrokenPipeError:  # `status | head`: the reader left; say nothing more (Python's own convention)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)


def _main(argv: list[str] | None) -> None:
    args = _parser().parse_args(argv)
    root = default_root()
    from lastlayer.book import pages as book
    try:
        if args.command == "run":
            try:
                overrides = {name: parse_value(value) for name, value in args.param}
            except ParameterError as e:
                raise RunnerError(str(e)) from None
            run(args.paper, args.profile, overrides, root=root, force=args.force, max_minutes=args.max_minutes,
                workers=args.workers, cluster=args.cluster)
            book.write_pages(root)  # the scorecard and the run-time pages follow the results
        elif args.command == "book":
            papers = available_papers(root)
            for i, paper in enumerate(papers, 1):
                print(f"[{i}/{len(papers)}]", end=" ")
                run(paper, args.profile, root=root, force=args.force, workers=args.workers, cluster=args.cluster)
                book.write_pages(root)
            sys.exit(book.build_html(root))
        elif args.command == "html":
            sys.exit(book.build_html(root))
        elif args.command == "pages":
            for path in book.write_pages(root):
                print(path.relative_to(root))
        elif args.command in ("status", "list"):
            print_status(root)
        elif args.command == "params":
            print_params(args.paper, root)
        elif args.command == "plan":
            import json
            from lastlayer.book.plan import PlanError, format_plan, pilot_plan, write_planned
            check_paper(args.paper, Paths(root))
            try:
                plan = pilot_plan(args.paper, root, args.scale)
            except PlanError as e:
                raise RunnerError(str(e)) from None
            print(json.dumps(plan, indent=1) if args.json else format_plan(plan))
            if args.write:
                if "design" not in plan:
                    raise RunnerError(f"{args.paper}: no confirmatory design (lastlayer/papers/{args.paper}/plan.yml) "
                                      f"to write a plan for")
                print(f"wrote {write_planned(plan, root).relative_to(root)}")
        elif args.command == "prepare":
            for path in prepare_notebooks(args.profile, args.out, root):
                print(path)
        elif args.command == "nbval-refresh":
            from lastlayer.book.references import refresh
            refresh(args.papers, root, args.out or root / "tests" / "nbval")
        elif args.command == "bench":
            from .bench import main as bench_main
            bench_main(root, quick=args.quick)
        elif args.command == "bundle":
            from lastlayer.book.offline import bundle
            from lastlayer.data import data_root
            out = bundle(args.out, root, data_root=data_root().resolve(), python=args.python)
            print(f"{out}: carry it along, then on the GPU machine: source {out}/setup.sh")
    except RunnerError as e:  # bad input: nothing was executed
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except PartialRun as e:  # stopped at its deadline; the book is unchanged
        print(f"{e}", file=sys.stderr)
        sys.exit(3)
    except RuntimeError as e:  # a notebook failed or broke the results contract; the book is unchanged
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
