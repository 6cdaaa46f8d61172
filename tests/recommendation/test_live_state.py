"""The snapshotter: at most one snapshot per interval, and the last positions of a burst written once it is quiet."""

from __future__ import annotations

import time

from tryon.services.recommendation.live_state import Snapshotter
from tryon.services.recommendation.recommender import read_snapshot
from tryon.shared.events import ConsumerCheckpoint


class CountingState:
    """Stands in for the recommender: its state says how often it was taken."""

    def __init__(self) -> None:
        self.taken = 0

    def state(self) -> dict:
        self.taken += 1
        return {"taken": self.taken}


def offer(snapshotter: Snapshotter, offset: int) -> None:
    snapshotter.on_checkpoint(ConsumerCheckpoint({("tryon.interactions.v1", 0): offset}, ()))


def test_the_last_positions_of_a_burst_are_written_once_the_interval_has_passed(tmp_path):
    state = CountingState()
    path = tmp_path / "snapshot.json"
    snapshotter = Snapshotter(state, path, interval_seconds=0.3)
    offer(snapshotter, 5)
    offer(snapshotter, 9)  # within the interval: not written yet
    assert read_snapshot(path)[1] == {"tryon.interactions.v1:0": 5}
    time.sleep(0.35)
    offer(snapshotter, 9)  # the same positions, offered by an idle poll
    assert read_snapshot(path)[1] == {"tryon.interactions.v1:0": 9}
    time.sleep(0.35)
    offer(snapshotter, 9)  # nothing new: no snapshot
    assert state.taken == 2
