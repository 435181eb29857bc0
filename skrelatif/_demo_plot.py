"""The image of ``skrelatif demo --plot``: test digits and their top proponents.

matplotlib is imported only here, and only when a plot is asked for; the
figure is drawn without :mod:`matplotlib.pyplot`, so no GUI backend is needed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: Column titles of the grid, per key of the ``proponents`` mapping.
TITLES = {
    "if": "IF",
    "theta-relatif": "θ-RelatIF",
    "l-relatif": "ℓ-RelatIF",
    "nearest neighbour": "nearest neighbour",
}

_INSTALL = 'pip install "skrelatif[plot]"'


def _figure_class():
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(f"--plot needs matplotlib: {_INSTALL}") from None
    return Figure


def check_plot_path(path: str) -> None:
    """Raise ``ImportError`` without matplotlib, ``ValueError`` for a path that
    cannot be written (no such directory, an unknown image format)."""
    Figure = _figure_class()
    file = Path(path)
    if not file.parent.is_dir():
        raise ValueError(f"--plot {path}: no directory {file.parent}")
    formats = Figure().canvas.get_supported_filetypes()
    if file.suffix.lstrip(".").lower() not in formats:
        raise ValueError(
            f"--plot {path}: the file name must end in an image format matplotlib "
            f"writes ({', '.join('.' + f for f in sorted(formats))})"
        )


def plot_demo_grid(
    path: str,
    test_images: np.ndarray,
    targets: np.ndarray,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    proponents: dict[str, np.ndarray],
) -> None:
    """Save one row per test digit: the digit, then its proponents per method.

    ``proponents[name]`` has shape (n_test, k): training indices, strongest
    first. Each proponent is labelled with its training label, green when it
    is the label explained for the test digit, red otherwise.
    """
    Figure = _figure_class()
    n_test = len(test_images)
    k = next(iter(proponents.values())).shape[1]
    # Columns: the test digit, then for each method a spacer and k proponents.
    widths = [1.8] + [0.35, *([1.0] * k)] * len(proponents)
    fig = Figure(figsize=(0.62 * sum(widths), 0.8 * n_test + 0.6), layout="constrained")
    grid = fig.add_gridspec(n_test, len(widths), width_ratios=widths)

    def show(ax, image, label, colour):
        image = np.asarray(image).reshape(8, 8)
        ax.imshow(image, cmap="gray_r", interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(str(label), fontsize=8, color=colour, labelpad=1)

    for row in range(n_test):
        ax = fig.add_subplot(grid[row, 0])
        show(ax, test_images[row], f"predicted {targets[row]}", "black")
        if row == 0:
            ax.set_title("test digit", fontsize=9)
        for group, (name, indices) in enumerate(proponents.items()):
            first = 1 + group * (k + 1) + 1
            for rank, index in enumerate(indices[row]):
                ax = fig.add_subplot(grid[row, first + rank])
                label = train_labels[index]
                same = label == targets[row]
                show(ax, train_images[index], label, "tab:green" if same else "tab:red")
                if row == 0 and rank == (k - 1) // 2:
                    ax.set_title(TITLES.get(name, name), fontsize=9)
        for spacer in range(len(proponents)):
            fig.add_subplot(grid[row, 1 + spacer * (k + 1)]).set_axis_off()
    fig.suptitle(
        f"Top {k} proponents of each test digit (labels: green = the predicted label)",
        fontsize=10,
    )
    fig.savefig(path, dpi=100)
