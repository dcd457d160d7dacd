"""One progress display for every long task (training, sweeps, data preparation, Inception
features), built on tqdm: on a terminal a bar redrawn in place, in a log file plain lines at a
steady pace (no carriage returns), and nothing at all when disabled (``--quiet``)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def format_seconds(seconds: float) -> str:
    """A duration as '4m05s', or '1h07m' from an hour on."""
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def report(enabled: bool, message: str) -> None:
    """One line of news on stderr (when ``enabled``)."""
    if enabled:
        print(message, file=sys.stderr, flush=True)


class ProgressDisplay:
    """Progress of ``total`` units of work with a status text.

    Args:
        total: units of work (steps, cells, images); None when unknown.
        desc: what is progressing (the line's prefix).
        enabled: False shows nothing (quiet mode).
        log_every_s: when the stream is not a terminal, print a plain line at most this often
            (0: at every :meth:`update`).
        stream: where to write (stderr by default).
        interactive: force the terminal (True) or log (False) form; default: ``stream.isatty()``.
    """

    def __init__(
        self,
        total: int | None,
        desc: str,
        *,
        enabled: bool = True,
        log_every_s: float = 0.0,
        unit: str = "it",
        stream: TextIO | None = None,
        interactive: bool | None = None,
    ) -> None:
        self.total = total
        self.desc = desc
        self.enabled = enabled
        self.log_every_s = log_every_s
        self.stream = stream if stream is not None else sys.stderr
        if interactive is None:
            interactive = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.interactive = enabled and interactive
        self.done = 0
        self.status = ""
        self._last_line = -float("inf")
        self._bar: Any = None
        if self.interactive:
            self._bar = tqdm(
                total=total, desc=desc, unit=unit, file=self.stream, dynamic_ncols=True, leave=False
            )

    def line(self) -> str:
        """The current state as one line: ``desc: done/total | status``."""
        count = f"{self.done}/{self.total}" if self.total is not None else str(self.done)
        return f"{self.desc}: {count}" + (f" | {self.status}" if self.status else "")

    def update(self, done: int, status: str | None = None, force: bool = False) -> None:
        """Set the units done so far (and optionally the status text) and show them."""
        self.done = done
        if status is not None:
            self.status = status
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.n = done
            self._bar.set_postfix_str(self.status, refresh=False)
            self._bar.refresh()
            return
        now = time.monotonic()
        if force or now - self._last_line >= self.log_every_s:
            self._last_line = now
            print(self.line(), file=self.stream, flush=True)

    def message(self, text: str) -> None:
        """A line of its own (above the bar on a terminal)."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> ProgressDisplay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress_iter(
    items: Iterable[T],
    total: int | None,
    desc: str,
    enabled: bool,
    log_every_s: float = 2.0,
) -> Iterator[T]:
    """``items``, counting them on a :class:`ProgressDisplay`."""
    if not enabled:
        yield from items
        return
    with ProgressDisplay(total, desc, log_every_s=log_every_s) as display:
        for index, item in enumerate(items):
            yield item
            display.update(index + 1)
