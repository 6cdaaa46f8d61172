"""A first start from an empty data folder: every service serves from its shipped weights, without training.

The three services run as processes (the suite launcher, as `make demo` starts them) with their
default settings in empty data folders. Each copies its shipped weights and turns SERVING in
seconds where training would take minutes; its log says where the model came from, and a second
start loads the copy it kept.
"""

from __future__ import annotations

import json
import time

import pytest

from tryon.shared.launcher import SERVICE_NAMES, LocalSuite
from tryon.shared.progress import PROGRESS_MESSAGE
from tryon.shared.shipped_weights import PROVENANCE_FILE

pytestmark = pytest.mark.integration

MODEL_FOLDERS = {"body": "model", "garment": "models", "recommendation": "artifacts"}
LOADED = {"body": "body model loaded", "garment": "garment models loaded", "recommendation": "recommendation artifacts loaded"}
# Training the default models takes minutes on two cores (make weights: about 10); loading takes seconds.
STARTUP_LIMIT_S = 120.0


def _lines(suite: LocalSuite, name: str) -> list[dict]:
    lines = []
    for raw in (suite.data_dir / f"{name}.log").read_text().splitlines():
        try:
            lines.append(json.loads(raw))
        except ValueError:
            continue
    return lines


def test_every_service_serves_from_its_shipped_weights_and_keeps_them(tmp_path, kafka_bootstrap, shipped_weights):
    started = time.monotonic()
    with LocalSuite(tmp_path, bootstrap_servers=kafka_bootstrap, startup_timeout_s=STARTUP_LIMIT_S) as suite:
        seconds = time.monotonic() - started
    assert seconds < STARTUP_LIMIT_S
    for name in SERVICE_NAMES:
        lines = _lines(suite, name)
        messages = [line["message"] for line in lines]
        assert any(message.startswith("copied the shipped weights") for message in messages), messages
        assert [line.get("source") for line in lines if line["message"] == LOADED[name]] == ["shipped"]
        assert PROGRESS_MESSAGE not in messages and not any("trained and saved" in m for m in messages)
        assert (tmp_path / name / MODEL_FOLDERS[name] / PROVENANCE_FILE).is_file()

    with LocalSuite(tmp_path, bootstrap_servers=kafka_bootstrap, startup_timeout_s=STARTUP_LIMIT_S) as suite:
        pass
    for name in SERVICE_NAMES:
        sources = [line.get("source") for line in _lines(suite, name) if line["message"] == LOADED[name]]
        assert sources == ["shipped", "stored"]
