"""Command line: ``skrelatif [demo | explain]`` (same as ``python -m skrelatif``).

``skrelatif demo`` (the default) runs the digits demo; ``skrelatif explain``
explains the rows of a CSV file with the rows of another::

    skrelatif explain --train train.csv --test test.csv --target label \\
        --model logreg --method l-relatif --k 5 --output result.csv

The built-in models take raw tables (numeric and text columns, missing
values); ``--output report.html`` writes a self-contained HTML report. Bad
input (a missing column, an empty file, a model skrelatif does not explain,
...) gets one line on stderr, ``skrelatif: error: ...``, and exit status 2;
no output file is written then. The CSV files are read with the :mod:`csv`
module, so the command needs only skrelatif's own dependencies; ``.skops``
model files need ``skops`` and a model fitted on a :class:`pandas.DataFrame`
needs ``pandas`` (``pip install "skrelatif[cli]"``).

One module per job: ``_parser`` (arguments; standard library only, so that
``--help`` is quick), ``_csv`` (reading and typing the files), ``_columns``
(features, ``--drop``, ``--id-column``), ``_preprocess`` (the built-in
models' column transformer), ``_models`` (built-in models, loading model
files), ``_hints`` (mistakes caught before fitting), ``_inputs`` (all of
these, checked, for one run), ``_progress``, ``_output`` (records, CSV/JSON,
atomic writing), ``_report`` and ``_svg`` (the HTML report and its bar
charts), and the commands ``_explain`` and ``_demo``, which are imported,
with numpy and scikit-learn, only when they run.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from ._errors import CommandLineError
from ._output import COLUMNS
from ._parser import build_parser
from ._progress import ProgressBar

__all__ = ["COLUMNS", "CommandLineError", "ProgressBar", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Parameters
    ----------
    argv : sequence of str, default=None
        The arguments (``sys.argv[1:]`` when None).

    Returns
    -------
    status : int
        0 on success, 2 for bad input, 1 when standard output was closed
        early, 130 when interrupted.
    """
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.command == "explain":
            from ._explain import run
        else:
            from ._demo import run
        return run(args)
    except CommandLineError as exc:
        print(f"skrelatif: error: {exc}", file=sys.stderr, flush=True)
        return 2
    except BrokenPipeError:
        # The reader of standard output went away (``skrelatif explain | head``):
        # stop quietly, and keep Python's final flush from failing again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print("\nskrelatif: interrupted", file=sys.stderr, flush=True)
        return 130
