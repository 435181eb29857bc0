"""Command line: ``skrelatif [demo]`` (same as ``python -m skrelatif``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skrelatif",
        description="Explain scikit-learn predictions with training examples "
        "(influence functions and RelatIF).",
    )
    commands = parser.add_subparsers(dest="command")
    demo = commands.add_parser(
        "demo", help="explain digits with IF and RelatIF (the default command)"
    )
    demo.add_argument("--k", type=int, default=5, help="proponents per test digit")
    demo.add_argument("--n-show", type=int, default=6, help="test digits listed")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.command in (None, "demo"):
        from ._demo import run_demo

        run_demo(k=getattr(args, "k", 5), n_show=getattr(args, "n_show", 6))
    return 0
