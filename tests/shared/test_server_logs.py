"""JSON-line log formatting: one parseable object a line with the fields a log pipeline needs."""

from __future__ import annotations

import io
import json
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tryon.shared.logs import (
    BatchedLineHandler,
    JsonLineFormatter,
    configure_logging,
    current_request_id,
    request_id_var,
)


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    captured = io.StringIO()
    configure_logging("garment", "INFO", stream=captured)
    yield captured
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


def _lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_line_has_timestamp_severity_service_logger_and_message(stream):
    logging.getLogger("tryon.garment").warning("catalogue has %d garments", 12)

    [line] = _lines(stream)
    assert line["severity"] == "WARNING"
    assert line["service"] == "garment"
    assert line["logger"] == "tryon.garment"
    assert line["message"] == "catalogue has 12 garments"
    assert line["timestamp"].endswith("Z") and "T" in line["timestamp"]
    assert "request_id" not in line


def test_the_timestamp_is_the_records_utc_time_in_milliseconds_across_seconds(stream):
    logger = logging.getLogger("tryon.garment")
    for created in (1700000000.9996, 1700000001.0004, 1700000001.25):
        record = logger.makeRecord("tryon.garment", logging.WARNING, __file__, 1, "tick", None, None)
        record.created = created
        logger.handle(record)

    stamps = [line["timestamp"] for line in _lines(stream)]
    assert stamps == ["2023-11-14T22:13:20.999Z", "2023-11-14T22:13:21.000Z", "2023-11-14T22:13:21.250Z"]


def test_extra_fields_become_keys_and_odd_values_become_text(stream):
    logging.getLogger("tryon.garment").info("saved", extra={"path": Path("/srv/x"), "count": 3})

    [line] = _lines(stream)
    assert (line["path"], line["count"]) == ("/srv/x", 3)


def test_lines_below_the_level_are_dropped(stream):
    logging.getLogger("tryon.garment").debug("noise")

    assert _lines(stream) == []


def test_the_request_id_of_the_call_being_served_is_added(stream):
    token = request_id_var.set("req-9")
    try:
        assert current_request_id() == "req-9"
        logging.getLogger("tryon.garment").info("inside a call")
    finally:
        request_id_var.reset(token)
    logging.getLogger("tryon.garment").info("outside")

    inside, outside = _lines(stream)
    assert inside["request_id"] == "req-9"
    assert "request_id" not in outside


def test_an_exception_keeps_its_traceback_on_one_line(stream):
    try:
        raise KeyError("garment-7")
    except KeyError:
        logging.getLogger("tryon.garment").exception("lookup failed")

    output = stream.getvalue()
    assert output.count("\n") == 1
    [line] = _lines(stream)
    assert line["severity"] == "ERROR"
    assert "KeyError: 'garment-7'" in line["exception"]


def test_configuring_again_replaces_the_handler(stream):
    second = io.StringIO()
    configure_logging("garment", "INFO", stream=second)
    logging.getLogger("tryon.garment").info("once")

    assert stream.getvalue() == ""
    assert len(_lines(second)) == 1


def test_kafka_client_chatter_is_kept_to_warnings(stream):
    logging.getLogger("kafka.conn").info("connecting to 127.0.0.1:9092")
    logging.getLogger("kafka.conn").warning("connection to 127.0.0.1:9092 lost")

    assert [line["message"] for line in _lines(stream)] == ["connection to 127.0.0.1:9092 lost"]


def _batched(stream: io.StringIO, **options) -> tuple[logging.Logger, BatchedLineHandler]:
    """A logger of its own that writes through a BatchedLineHandler into ``stream``.

    The logger's name is new to the process: pytest attaches its capture handler to every
    non-propagating logger that exists when a test starts, so a name used by an earlier test
    (an ``id()`` reused after garbage collection, say) would hold pytest's handler too.
    """
    logger = logging.getLogger(f"tryon.batched.{uuid.uuid4().hex}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    handler = BatchedLineHandler(stream, **options)
    handler.setFormatter(JsonLineFormatter("garment"))
    logger.addHandler(handler)
    return logger, handler


def _close(logger: logging.Logger, handler: BatchedLineHandler) -> None:
    logger.removeHandler(handler)
    handler.close()


def test_batched_lines_wait_until_a_warning_writes_them_in_order():
    stream = io.StringIO()
    logger, handler = _batched(stream, flush_seconds=60.0)
    try:
        logger.info("first")
        logger.info("second")
        assert stream.getvalue() == ""
        logger.warning("third")
        assert [line["message"] for line in _lines(stream)] == ["first", "second", "third"]
    finally:
        _close(logger, handler)


def test_batched_lines_are_written_by_the_ticker_within_the_interval():
    stream = io.StringIO()
    logger, handler = _batched(stream, flush_seconds=0.05)
    try:
        logger.info("waiting")
        deadline = time.monotonic() + 10.0
        while not stream.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [line["message"] for line in _lines(stream)] == ["waiting"]
    finally:
        _close(logger, handler)


def test_batched_lines_are_written_when_the_batch_is_full_and_at_close():
    stream = io.StringIO()
    logger, handler = _batched(stream, flush_seconds=60.0, max_lines=3)
    logger.info("a")
    logger.info("b")
    assert stream.getvalue() == ""
    logger.info("c")
    assert len(_lines(stream)) == 3
    logger.info("d")
    _close(logger, handler)
    assert [line["message"] for line in _lines(stream)] == ["a", "b", "c", "d"]
    assert not handler._ticker.is_alive()


def test_batched_handler_rejects_a_non_positive_interval():
    with pytest.raises(ValueError, match="flush_seconds"):
        BatchedLineHandler(io.StringIO(), flush_seconds=0.0)


def test_configuring_with_flush_seconds_batches_and_configuring_again_writes_the_rest(stream):
    batched = io.StringIO()
    configure_logging("garment", "INFO", stream=batched, flush_seconds=60.0)
    [handler] = [h for h in logging.getLogger().handlers if isinstance(h, BatchedLineHandler)]
    logging.getLogger("tryon.garment").info("held back")
    assert batched.getvalue() == ""

    configure_logging("garment", "INFO", stream=io.StringIO())

    assert [line["message"] for line in _lines(batched)] == ["held back"]
    assert not handler._ticker.is_alive()
