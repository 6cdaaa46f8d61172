"""Progress of a training loop: a tqdm bar on a terminal, JSON log lines in a service.

Trainers wrap their loops in `progress_bar` instead of calling tqdm themselves. A script run
by a person gets tqdm's bar; a service calls `log_progress_lines()` once at start, and from
then on every bar writes a ``training progress`` log line at most every few seconds, with
the task, the step, the total, the elapsed time and an estimate of the time left
(``eta_seconds``), which a launcher can read from the service's log and show.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm

logger = logging.getLogger("tryon.progress")

PROGRESS_MESSAGE = "training progress"
"""The message of every progress log line, for readers of a service's log."""

_log_interval_seconds: float | None = None


def log_progress_lines(interval_seconds: float = 2.0) -> None:
    """Make every bar from now on write log lines, at most one per `interval_seconds`, and no bar."""
    global _log_interval_seconds
    _log_interval_seconds = interval_seconds


class _LoggedBar(tqdm):
    """A tqdm whose display is a log line; `stage` (index, count) extends the estimate over later stages."""

    def __init__(self, *args: Any, stage: tuple[int, int] | None = None, **kwargs: Any) -> None:
        self._stage = stage
        super().__init__(*args, **kwargs)

    def set_postfix(self, ordered_dict: Any = None, refresh: bool = True, **kwargs: Any) -> None:
        """Keep the postfix for the next line: a redraw per batch would log a stale step per batch."""
        super().set_postfix(ordered_dict, refresh=False, **kwargs)

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        """Log where the loop stands instead of drawing it."""
        state = self.format_dict
        step, total, elapsed, rate = state["n"], state["total"], state["elapsed"], state["rate"]
        fields: dict[str, Any] = {"task": self.desc, "step": step, "unit": self.unit, "elapsed_seconds": round(elapsed, 1)}
        if total:
            fields["total"] = total
            fields["percent"] = round(100.0 * step / total, 1)
            if rate:
                eta = (total - step) / rate
                if self._stage is not None:
                    index, count = self._stage
                    eta += (count - index - 1) * total / rate
                fields["eta_seconds"] = round(eta, 1)
        logger.info(PROGRESS_MESSAGE, extra=fields)
        return True


def progress_bar(
    iterable: Iterable,
    *,
    desc: str,
    unit: str = "it",
    enabled: bool = True,
    total: int | None = None,
    leave: bool = True,
    stage: tuple[int, int] | None = None,
) -> tqdm:
    """Iterate `iterable` with a progress display: a log line in a service, else a bar when `enabled`.

    `stage` is (index, count) when this loop is one of `count` alike loops (one epoch's
    batches), so the estimate of the time left covers the loops still to come.
    """
    if _log_interval_seconds is not None:
        return _LoggedBar(
            iterable, desc=desc, unit=unit, total=total, stage=stage,
            mininterval=_log_interval_seconds, miniters=1, disable=False, file=_NullFile(),
        )
    return tqdm(iterable, desc=desc, unit=unit, total=total, disable=not enabled, leave=leave)


class _NullFile:
    """Where a logged bar's tqdm would draw: nowhere."""

    def write(self, text: str) -> int:
        """Discard `text`."""
        return len(text)

    def flush(self) -> None:
        """Nothing is buffered."""
