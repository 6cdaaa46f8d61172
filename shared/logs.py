"""JSON-line logs: one object a line with timestamp, severity, service and request id.

`configure_logging` routes the standard `logging` module to stdout through
`JsonLineFormatter`. While a gRPC call is being served, the request-log interceptor
puts the call's request id in `request_id_var`, so every line logged by the handler
carries it. Fields passed with ``extra={...}`` become keys of the JSON object.
Never log a request payload, a body measurement or any other personal data.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

request_id_var: ContextVar[str | None] = ContextVar("tryon_request_id", default=None)

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD_RECORD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None)).keys()
) | {"message", "asctime", "taskName"}
_HANDLER_MARK = "_tryon_json_handler"


def current_request_id() -> str | None:
    """The request id of the gRPC call being served on this thread, if any."""
    return request_id_var.get()


class JsonLineFormatter(logging.Formatter):
    """Formats a record as one JSON object: timestamp, severity, service, logger, message."""

    def __init__(self, service_name: str) -> None:
        super().__init__()
        self.service_name = service_name

    def format(self, record: logging.LogRecord) -> str:
        """Render `record` as a single line of JSON."""
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "severity": record.levelname,
            "service": self.service_name,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = current_request_id()
        if request_id is not None:
            entry["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD_RECORD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(service_name: str, level: str | int = "INFO", stream: IO[str] | None = None) -> None:
    """Send all logging to `stream` (stdout by default) as JSON lines tagged with `service_name`.

    Calling it again replaces the handler it installed before, so a process has one.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stdout if stream is None else stream)
    handler.setFormatter(JsonLineFormatter(service_name))
    setattr(handler, _HANDLER_MARK, True)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    # kafka-python narrates every connection and rebalance at INFO; keep its warnings only.
    logging.getLogger("kafka").setLevel(max(root.level, logging.WARNING))
    logging.captureWarnings(True)
