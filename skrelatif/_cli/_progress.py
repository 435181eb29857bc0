"""The progress bar of ``skrelatif explain``, drawn on standard error."""

from __future__ import annotations

import time
from typing import TextIO


class ProgressBar:
    """A one-line progress bar, redrawn in place on ``stream``.

    Drawn only when ``enabled`` and after ``delay`` seconds, so that short runs
    print nothing; :meth:`close` erases it.

    Parameters
    ----------
    total : int
        The number of test rows.
    stream : file-like
        Where to draw (standard error).
    enabled : bool
        False: draw nothing.
    delay : float, default=0.5
        Seconds before the first drawing.
    width : int, default=30
        Characters of the bar.
    label : str, default="explaining"
        Text before the bar.

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> bar = ProgressBar(4, stream=out, enabled=True, delay=0.0)
    >>> bar.update(2)
    >>> out.getvalue().strip()
    'explaining [###############               ]  2/4 test rows'
    """

    def __init__(
        self,
        total: int,
        *,
        stream: TextIO,
        enabled: bool,
        delay: float = 0.5,
        width: int = 30,
        label: str = "explaining",
    ) -> None:
        self.total, self.stream, self.enabled = total, stream, enabled
        self.delay, self.width, self.label = delay, width, label
        self.start = time.perf_counter()
        self.drawn = 0

    def update(self, done: int) -> None:
        """Redraw the bar with ``done`` of ``total`` rows explained."""
        if not self.enabled or time.perf_counter() - self.start < self.delay:
            return
        filled = self.width * done // max(self.total, 1)
        text = (
            f"{self.label} [{'#' * filled}{' ' * (self.width - filled)}] "
            f"{done:>{len(str(self.total))}}/{self.total} test rows"
        )
        self.stream.write("\r" + text)
        self.stream.flush()
        self.drawn = len(text)

    def close(self) -> None:
        """Erase the bar, if drawn."""
        if self.drawn:
            self.stream.write("\r" + " " * self.drawn + "\r")
            self.stream.flush()
            self.drawn = 0
