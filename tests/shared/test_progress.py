"""Training progress reaches a service's log as lines a launcher reads back and shows."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from tryon.shared.launcher import ServiceProcess

# A service's training loop in miniature: logging as run_service sets it up, then two epochs of batches.
TRAINING_SCRIPT = textwrap.dedent(
    """
    import time

    from tryon.shared.logs import configure_logging
    from tryon.shared.progress import log_progress_lines, progress_bar

    configure_logging("probe", "INFO", flush_seconds=0)
    log_progress_lines(0.05)
    for epoch in range(2):
        bar = progress_bar(range(10), desc=f"probe epoch {epoch + 1}/2", unit="batch", total=10, stage=(epoch, 2))
        for _ in bar:
            time.sleep(0.02)
            bar.set_postfix(loss=1.0)
    """
)


def _train_and_log(tmp_path: Path) -> Path:
    log_path = tmp_path / "probe.log"
    script = tmp_path / "train.py"
    script.write_text(TRAINING_SCRIPT)
    with log_path.open("ab") as log:
        subprocess.run([sys.executable, str(script)], stdout=log, stderr=subprocess.STDOUT, check=True, timeout=60)
    return log_path


def test_a_training_loop_logs_its_progress_with_the_time_left_over_later_epochs(tmp_path):
    log_path = _train_and_log(tmp_path)
    lines = [json.loads(line) for line in log_path.read_text().splitlines()]

    assert lines and all(line["message"] == "training progress" for line in lines)
    first_epoch = [line for line in lines if line["task"] == "probe epoch 1/2"]
    assert first_epoch[-1]["percent"] == 100.0
    estimated = [line for line in first_epoch if "eta_seconds" in line and line["step"] < 10]
    assert estimated, "no line of the first epoch estimated the time left"
    # Half-way through epoch 1 of 2, the time left covers the rest of this epoch and all of the next.
    line = estimated[0]
    per_batch = line["elapsed_seconds"] / line["step"]
    assert line["eta_seconds"] > (20 - line["step"]) * per_batch * 0.5
    assert len(lines) < 40, "a line per batch: the log would drown in progress"


def test_the_launcher_reads_new_complete_progress_lines_of_this_run_only(tmp_path):
    log_path = tmp_path / "probe.log"
    log_path.write_text(json.dumps({"message": "training progress", "task": "an earlier run"}) + "\n")
    earlier = log_path.stat().st_size
    service = ServiceProcess("body", "127.0.0.1:1", process=None, log_path=log_path, _read_up_to=earlier)
    with log_path.open("a") as log:
        log.write(json.dumps({"message": "listening"}) + "\n")
        log.write(json.dumps({"message": "training progress", "task": "body cvae", "step": 3}) + "\n")
        log.write('{"message": "training progress", "task": "body cvae", "st')

    assert [line["step"] for line in service.new_progress()] == [3]
    assert service.new_progress() == []

    with log_path.open("a") as log:
        log.write('ep": 4}\n')
    assert [line["step"] for line in service.new_progress()] == [4]
