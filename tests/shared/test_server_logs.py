"""JSON-line log formatting: one parseable object a line with the fields a log pipeline needs."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tryon.shared.logs import configure_logging, current_request_id, request_id_var


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
