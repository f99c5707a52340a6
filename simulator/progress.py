"""A one-line progress display on stderr for the simulator's commands.

What ``python -m simulator replay`` and ``demo`` used of ``tqdm``, without its
start-up: importing tqdm reads its own version through ``importlib.metadata``
and its first bar builds a ``multiprocessing`` lock, ~60 ms of CPU together,
1.5 % of a replay of a 4-second clip whose target is real time on one core.

On a terminal the line is redrawn at most every ``min_interval`` seconds; to a
file or pipe only the final line is written, so logs hold one line, not a
hundred carriage returns.

>>> bar = ProgressBar("replay cam-1", unit="frame")       # doctest: +SKIP
>>> bar.total = 105; bar.update(3); bar.set_postfix(events=1); bar.close()  # doctest: +SKIP
replay cam-1: 100%|██████████| 105/105 [00:04<00:00, 25.3 frame/s, events=17]
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

#: Width of the bar itself, in characters.
BAR_WIDTH = 10


class ProgressBar:
    """``desc: pct%|bar| n/total [elapsed<remaining, rate unit/s, key=value]`` on ``stream``."""

    def __init__(
        self,
        desc: str = "",
        *,
        unit: str = "it",
        total: int | None = None,
        stream: TextIO | None = None,
        min_interval: float = 0.1,
    ) -> None:
        self.desc = desc
        self.unit = unit
        self.total = total
        self.n = 0
        self.stream = stream if stream is not None else sys.stderr
        self.min_interval = min_interval
        self.postfix = ""
        self._started = time.monotonic()
        self._drawn = float("-inf")
        self._closed = False
        self._width = 0  # length of the line on screen, to blank what a shorter one leaves
        try:
            self._live = self.stream.isatty()
        except (AttributeError, ValueError):
            self._live = False
        encoding = (getattr(self.stream, "encoding", None) or "ascii").lower().replace("-", "")
        self._fill = "█" if encoding == "utf8" else "#"

    def update(self, n: int = 1) -> None:
        """Advance by ``n`` and redraw when ``min_interval`` has passed (terminal only)."""
        self.n += n
        if self._live:
            now = time.monotonic()
            if now - self._drawn >= self.min_interval:
                self._drawn = now
                self._redraw(self.line(now), "")

    def set_postfix(self, **values: object) -> None:
        """Show ``key=value`` pairs after the rate (drawn with the next update)."""
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def set_description(self, desc: str) -> None:
        self.desc = desc

    def close(self) -> None:
        """Draw the final line and end it; later calls do nothing."""
        if self._closed:
            return
        self._closed = True
        if self._live:
            self._redraw(self.line(time.monotonic()), "\n")
        else:
            self._write(self.line(time.monotonic()) + "\n")

    def line(self, now: float) -> str:
        """The text of the bar at ``now`` (``time.monotonic()``)."""
        elapsed = max(0.0, now - self._started)
        rate = self.n / elapsed if elapsed > 0 else 0.0
        tail = f"{rate:.1f} {self.unit}/s" + (f", {self.postfix}" if self.postfix else "")
        head = f"{self.desc}: " if self.desc else ""
        if self.total:
            done = min(1.0, self.n / self.total)
            filled = int(done * BAR_WIDTH)
            remaining = (self.total - self.n) / rate if rate > 0 else 0.0
            return (
                f"{head}{done * 100:3.0f}%|{self._fill * filled}{' ' * (BAR_WIDTH - filled)}| "
                f"{self.n}/{self.total} [{_clock(elapsed)}<{_clock(remaining)}, {tail}]"
            )
        return f"{head}{self.n} {self.unit} [{_clock(elapsed)}, {tail}]"

    def _redraw(self, text: str, end: str) -> None:
        pad = " " * max(0, self._width - len(text))
        self._width = len(text)
        self._write("\r" + text + pad + end)

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


def _clock(seconds: float) -> str:
    """``mm:ss``, or ``h:mm:ss`` from an hour on."""
    s = int(max(0.0, seconds))
    hours, rest = divmod(s, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"
