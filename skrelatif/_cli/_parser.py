"""The arguments of ``skrelatif [demo | explain]``.

Only the standard library is imported here, so that ``skrelatif --help`` is
quick: numpy, scikit-learn and skrelatif's core load when a command runs. The
choices of ``--method``, ``--hessian`` and ``--solver`` are therefore written
out here; a test checks them against the explainer's.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from .. import __version__
from ._models import BUILTIN_MODELS

#: ``--model`` choices (the default is the first one).
MODELS = tuple(BUILTIN_MODELS)
#: The ``--model`` choices that are regressors (a numeric ``--target``).
REGRESSORS = tuple(name for name, model in BUILTIN_MODELS.items() if model.regressor)
#: ``demo --model`` choices (the default is the first one).
DEMO_MODELS = ("logreg", "mlp")
#: ``--method`` choices: ``skrelatif._adapters.METHODS``.
METHODS = ("if", "theta-relatif", "l-relatif", "newton", "boostin")
#: ``--hessian`` choices: "auto" and ``skrelatif._curvature.CURVATURES``.
HESSIANS = ("auto", "exact", "gauss-newton", "identity")
#: ``--solver`` choices: "auto" and the keys of ``skrelatif._solvers.SOLVERS``.
SOLVER_CHOICES = (
    "auto",
    "cholesky",
    "block-diagonal",
    "cg",
    "lissa",
    "kfac",
    "data-space",
    "ekfac",
)


def _damping(text: str) -> float | str:
    return "auto" if text == "auto" else _non_negative_float(text)


def _number(text: str, kind: type, expected: str) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None


def _positive_int(text: str) -> int:
    value = _number(text, int, "a positive integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    value = _number(text, float, "a number >= 0")
    if not value >= 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text}")
    return value


def _add_demo(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser(
        "demo",
        help="explain digits with IF and RelatIF (the default command)",
        description="Explain scikit-learn's digits with IF, theta-RelatIF and "
        "l-RelatIF and print how typical their proponents are.",
    )
    demo.add_argument(
        "--k",
        type=_positive_int,
        default=5,
        help="proponents per test digit (default: 5)",
    )
    demo.add_argument(
        "--n-show",
        type=_positive_int,
        default=6,
        help="test digits listed (default: 6)",
    )
    demo.add_argument(
        "--model",
        choices=DEMO_MODELS,
        default=DEMO_MODELS[0],
        help="the model explained: a logistic regression (default) or a "
        "(64,) MLPClassifier (Gauss-Newton Hessian)",
    )
    demo.add_argument(
        "--plot",
        metavar="FILE.png",
        help="also save the listed test digits and their top proponents per "
        "method (IF, theta-RelatIF, l-RelatIF, nearest neighbour) as an image; "
        'needs matplotlib (pip install "skrelatif[plot]")',
    )


def _add_explain(commands: argparse._SubParsersAction) -> None:
    explain = commands.add_parser(
        "explain",
        help="explain the rows of a CSV file with the rows of another",
        description="Fit a model on the training CSV (or load a fitted one) and "
        "write, for every row of the test CSV, its top-k proponents and "
        "opponents among the training rows. Rows are numbered from 0, header "
        "excluded.",
    )
    explain.add_argument(
        "--train",
        required=True,
        metavar="TRAIN.csv",
        help="training data: a header row, then one example per row",
    )
    explain.add_argument(
        "--test",
        required=True,
        metavar="TEST.csv",
        help="rows to explain: the training file's feature columns "
        "(the target column is optional)",
    )
    explain.add_argument(
        "--target",
        required=True,
        metavar="COLUMN",
        help="name of the label column of the training file (for a regressor, "
        "such as --model ridge: the numeric target column)",
    )
    explain.add_argument(
        "--model",
        choices=MODELS,
        default=None,
        help="; ".join(
            f"{name}: {model.help}" for name, model in BUILTIN_MODELS.items()
        )
        + ". A regressor explains its predictions of a numeric --target "
        "(positive score: the training row pushes the prediction up). "
        "Each after a ColumnTransformer fitted on the training file: numeric "
        "columns imputed (median) and standardised, text columns imputed (most "
        "frequent) and one-hot encoded (see --verbose)",
    )
    explain.add_argument(
        "--drop",
        action="append",
        default=[],
        metavar="COL[,COL]",
        help="columns to leave out of the training and test files (repeat or "
        "separate by commas)",
    )
    explain.add_argument(
        "--id-column",
        metavar="COL",
        help="a column of row names: not a feature; the output gives test_id "
        "(and train_id, if the training file has the column) instead of the "
        "row numbers",
    )
    explain.add_argument(
        "--model-file",
        metavar="FILE",
        help="a fitted (or unfitted) model or pipeline instead of --model: a .skops "
        "file (loaded with skops.io, trusted types only) or, with --trust-pickle, a "
        "joblib pickle. It is explained as trained on the training file.",
    )
    explain.add_argument(
        "--trust",
        action="append",
        default=[],
        metavar="TYPE",
        help="a type of the .skops file to trust although skops does not by "
        "default (repeat for several); check it first",
    )
    explain.add_argument(
        "--trust-pickle",
        action="store_true",
        help="allow --model-file to be a pickle: loading it runs any code it "
        "contains, so only for files from a source you trust",
    )
    explain.add_argument(
        "--method",
        choices=METHODS,
        default="l-relatif",
        help="the score (default: l-relatif)",
    )
    explain.add_argument(
        "--hessian",
        choices=HESSIANS,
        default="auto",
        help="which matrix stands for the curvature (default: auto, the model "
        "family's own: exact for linear models, gauss-newton for networks)",
    )
    explain.add_argument(
        "--solver",
        choices=SOLVER_CHOICES,
        default="auto",
        help="how the curvature is inverted (default: auto, the cheapest that "
        "fits by a cost model, exact where affordable)",
    )
    explain.add_argument(
        "--damping",
        type=_damping,
        default="auto",
        help="added to the curvature's diagonal: a number >= 0, or auto (the "
        "default: 0 for convex models, a small fraction of the mean curvature "
        "for networks)",
    )
    explain.add_argument(
        "--k",
        type=_positive_int,
        default=5,
        help="proponents and opponents per test row (default: 5)",
    )
    explain.add_argument(
        "--test-labels",
        action="store_true",
        help="explain the labels in the test file's target column instead of "
        "the model's predictions (for a regressor: the squared error at those "
        "targets instead of the predictions themselves)",
    )
    explain.add_argument(
        "--with-test-labels",
        action="store_true",
        help="add two output columns: test_label, the test file's target "
        "column, and correct, whether the model predicts that label (for a "
        "regressor: error, its prediction minus test_label)",
    )
    explain.add_argument(
        "--n-jobs",
        type=int,
        default=None,
        help="joblib jobs over chunks of training rows",
    )
    explain.add_argument(
        "--output",
        metavar="RESULT.csv|.json|.html",
        help="where to write the result (.csv or .json; .html: a self-contained "
        "report with tables and bar charts, for a browser); standard output "
        "(CSV) if not given",
    )
    explain.add_argument(
        "--quiet",
        action="store_true",
        help="nothing on stderr but errors: no progress bar, warnings or "
        "confirmation line",
    )
    explain.add_argument(
        "--verbose",
        action="store_true",
        help="print the columns and how the built-in model prepares them "
        "(imputed values, categories) on stderr",
    )


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``skrelatif``, with its ``demo`` and ``explain`` commands.

    Returns
    -------
    parser : argparse.ArgumentParser
        ``parse_args`` gives a namespace whose ``command`` is ``"demo"``,
        ``"explain"`` or None (the demo).
    """
    parser = argparse.ArgumentParser(
        prog="skrelatif",
        description="Explain scikit-learn predictions with training examples "
        "(influence functions and RelatIF). Without a command, runs the demo.",
    )
    parser.add_argument(
        "--version", action="version", version=f"skrelatif {__version__}"
    )
    commands = parser.add_subparsers(dest="command", metavar="{demo,explain}")
    _add_demo(commands)
    _add_explain(commands)
    return parser
