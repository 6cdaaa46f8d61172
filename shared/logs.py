"""JSON-line logs: one object a line with timestamp, severity, service and request id.

`configure_logging` routes the standard `logging` module to stdout through
`JsonLineFormatter`, optionally through a `BatchedLineHandler` that writes lines in batches
(a service logs a line per call, and one write per line was the largest cost of a cheap call
under load). While a gRPC call is being served, the request-log interceptor
puts the call's request id in `request_id_var`, so every line logged by the handler
carries it. Fields passed with ``extra={...}`` become keys of the JSON object.
Never log a request payload, a body measurement or any other personal data.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from contextvars import ContextVar
from typing import IO, Any

request_id_var: ContextVar[str | None] = ContextVar("tryon_request_id", default=None)

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD_RECORD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None)).keys()
) | {"message", "asctime", "taskName"}
_HANDLER_MARK = "_tryon_json_handler"
_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False)


def current_request_id() -> str | None:
    """The request id of the gRPC call being served on this thread, if any."""
    return request_id_var.get()


class JsonLineFormatter(logging.Formatter):
    """Formats a record as one JSON object: timestamp, severity, service, logger, message."""

    def __init__(self, service_name: str) -> None:
        super().__init__()
        self.service_name = service_name
        self._second = -1
        self._second_text = ""

    def _timestamp(self, created: float) -> str:
        """ISO 8601 UTC with milliseconds; the text up to the second is reused within a second."""
        second = int(created)
        if second != self._second:
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._second_text}.{int((created - second) * 1000):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        """Render `record` as a single line of JSON."""
        entry: dict[str, Any] = {
            "timestamp": self._timestamp(record.created),
            "severity": record.levelname,
            "service": self.service_name,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = current_request_id()
        if request_id is not None:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD_RECORD_ATTRIBUTES and key[0] != "_":
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return _ENCODER.encode(entry)


class BatchedLineHandler(logging.StreamHandler):
    """A stream handler that writes waiting lines together instead of one write per line.

    Lines wait until one of these comes: a record at ``flush_level`` or above (written at once,
    after the lines before it), ``max_lines`` waiting lines, the next tick of a background
    thread every ``flush_seconds``, or ``flush()``/``close()`` (``logging.shutdown`` at exit
    calls both). A process killed outright loses at most the last ``flush_seconds`` of lines
    below ``flush_level``.
    """

    def __init__(
        self,
        stream: IO[str],
        flush_seconds: float,
        max_lines: int = 512,
        flush_level: int = logging.WARNING,
    ) -> None:
        if flush_seconds <= 0:
            raise ValueError(f"flush_seconds must be positive; got {flush_seconds}")
        if max_lines < 1:
            raise ValueError(f"max_lines must be at least 1; got {max_lines}")
        super().__init__(stream)
        self.flush_seconds = flush_seconds
        self.max_lines = max_lines
        self.flush_level = flush_level
        self._waiting: list[str] = []
        self._closed = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="log-flush", daemon=True)
        self._ticker.start()

    def _tick(self) -> None:
        while not self._closed.wait(self.flush_seconds):
            self.flush()

    def emit(self, record: logging.LogRecord) -> None:
        """Queue the formatted line; write the queue when the record is severe or the queue is full.

        ``Handler.handle`` calls this with the handler's lock held.
        """
        try:
            self._waiting.append(self.format(record))
            if record.levelno >= self.flush_level or len(self._waiting) >= self.max_lines:
                self._write_waiting()
        except Exception:
            self.handleError(record)

    def _write_waiting(self) -> None:
        if not self._waiting:
            return
        text = self.terminator.join(self._waiting) + self.terminator
        self._waiting.clear()
        self.stream.write(text)
        if hasattr(self.stream, "flush"):
            self.stream.flush()

    def flush(self) -> None:
        """Write the waiting lines now."""
        with self.lock:
            if self.stream is not None and not getattr(self.stream, "closed", False):
                self._write_waiting()

    def close(self) -> None:
        """Stop the background thread and write what is waiting."""
        self._closed.set()
        self._ticker.join()
        self.flush()
        super().close()


def configure_logging(
    service_name: str,
    level: str | int = "INFO",
    stream: IO[str] | None = None,
    flush_seconds: float = 0.0,
) -> None:
    """Send all logging to `stream` (stdout by default) as JSON lines tagged with `service_name`.

    With ``flush_seconds`` > 0, lines below WARNING are written in batches at least that often
    (`BatchedLineHandler`); with 0 every line is written at once. Calling it again replaces
    the handler it installed before, so a process has one.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            root.removeHandler(handler)
            if isinstance(handler, BatchedLineHandler):
                handler.close()
    stream = sys.stdout if stream is None else stream
    handler = BatchedLineHandler(stream, flush_seconds) if flush_seconds > 0 else logging.StreamHandler(stream)
    handler.setFormatter(JsonLineFormatter(service_name))
    setattr(handler, _HANDLER_MARK, True)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    # The lines carry no thread or process: spare every record looking them up (the logging
    # HOWTO's "Optimization" advice).
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # kafka-python narrates every connection and rebalance at INFO; keep its warnings only.
    logging.getLogger("kafka").setLevel(max(root.level, logging.WARNING))
    logging.captureWarnings(True)
