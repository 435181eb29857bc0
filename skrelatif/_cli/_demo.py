"""``skrelatif demo``: check ``--plot`` first, then run the digits demo."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._errors import CommandLineError


def check_plot_path(path: str) -> None:
    """Refuse ``--plot`` without matplotlib, or to a file that cannot be written
    (no such directory, an image format matplotlib does not write)."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise CommandLineError(
            '--plot needs matplotlib: pip install "skrelatif[plot]"'
        ) from None
    file = Path(path)
    if not file.parent.is_dir():
        raise CommandLineError(f"--plot {path}: no directory {file.parent}")
    formats = Figure().canvas.get_supported_filetypes()
    if file.suffix.lstrip(".").lower() not in formats:
        raise CommandLineError(
            f"--plot {path}: the file name must end in an image format matplotlib "
            f"writes ({', '.join('.' + f for f in sorted(formats))})"
        )


def run(args: argparse.Namespace) -> int:
    """Run ``skrelatif demo`` (also without a command: no options then)."""
    plot = getattr(args, "plot", None)
    if plot is not None:
        check_plot_path(plot)
    from .._demo import run_demo

    run_demo(
        k=getattr(args, "k", 5),
        n_show=getattr(args, "n_show", 6),
        plot=plot,
        model=getattr(args, "model", "logreg"),
    )
    return 0
