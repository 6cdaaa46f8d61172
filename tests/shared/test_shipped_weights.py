"""Shipped weights: written with their provenance, copied only when whole and trained as the service asks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tryon.shared.shipped_weights import PROVENANCE_FILE, check_shipped, install_shipped, write_shipped

TRAINING = {"train_epochs": 3, "train_seed": 0}


def _trainer(weights: bytes = b"weights"):
    def train(data_dir: Path) -> Path:
        folder = data_dir / "model"
        (folder / "part").mkdir(parents=True)
        (folder / "net.pt").write_bytes(weights)
        (folder / "part" / "config.json").write_text('{"layers": 2}')
        return folder

    return train


def _files(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def test_written_weights_carry_their_provenance_and_are_copied_whole(tmp_path):
    shipped = tmp_path / "weights" / "model"
    provenance = write_shipped(shipped, _trainer(), service="body", training=TRAINING, data="a test frame")
    assert provenance["training"] == TRAINING and provenance["service"] == "body"
    assert provenance["command"] == "make weights" and provenance["data"] == "a test frame"
    assert {"date", "commit", "machine", "torch", "seconds"} <= set(provenance)
    assert provenance["files"]["net.pt"]["bytes"] == len(b"weights")
    assert set(provenance["files"]) == {"net.pt", "part/config.json"}
    assert json.loads((shipped / PROVENANCE_FILE).read_text()) == provenance
    assert [path.name for path in shipped.parent.iterdir()] == ["model"], "the scratch folder was left behind"

    installed = install_shipped(shipped, tmp_path / "data" / "model", TRAINING)
    assert installed.provenance == provenance
    assert _files(tmp_path / "data" / "model") == _files(shipped)


def test_weights_trained_with_other_settings_are_not_copied(tmp_path):
    shipped = tmp_path / "weights" / "model"
    write_shipped(shipped, _trainer(), service="body", training=TRAINING, data="a test frame")
    installed = install_shipped(shipped, tmp_path / "data" / "model", {**TRAINING, "train_seed": 1})
    assert installed.provenance is None
    assert "'train_seed': 0" in installed.reason and "'train_seed': 1" in installed.reason
    assert not (tmp_path / "data").exists()


def test_a_shipped_file_that_differs_from_its_provenance_is_refused(tmp_path):
    shipped = tmp_path / "weights" / "model"
    write_shipped(shipped, _trainer(), service="body", training=TRAINING, data="a test frame")
    # What a checkout without the binary files holds instead of them: a pointer of a few lines.
    (shipped / "net.pt").write_text("version https://git-lfs.github.com/spec/v1\n")
    provenance, reason = check_shipped(shipped, TRAINING)
    assert provenance is None and "net.pt" in reason
    assert install_shipped(shipped, tmp_path / "data" / "model", TRAINING).provenance is None
    assert not (tmp_path / "data").exists()


def test_missing_shipped_weights_are_named_in_the_reason(tmp_path):
    installed = install_shipped(tmp_path / "nowhere", tmp_path / "data" / "model", TRAINING)
    assert installed.provenance is None and "no shipped weights" in installed.reason


def test_copying_replaces_a_stale_model_folder_entirely(tmp_path):
    shipped = tmp_path / "weights" / "model"
    write_shipped(shipped, _trainer(), service="body", training=TRAINING, data="a test frame")
    target = tmp_path / "data" / "model"
    target.mkdir(parents=True)
    (target / "net.pt").write_bytes(b"a model of an older format")
    (target / "old_only.pt").write_bytes(b"stale")
    install_shipped(shipped, target, TRAINING)
    assert _files(target) == _files(shipped)
    assert sorted(path.name for path in target.parent.iterdir()) == ["model"]


def test_a_failed_training_keeps_the_weights_shipped_before(tmp_path):
    shipped = tmp_path / "weights" / "model"
    write_shipped(shipped, _trainer(b"first"), service="body", training=TRAINING, data="a test frame")

    def failing(data_dir: Path) -> Path:
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError):
        write_shipped(shipped, failing, service="body", training=TRAINING, data="a test frame")
    assert (shipped / "net.pt").read_bytes() == b"first"
    assert check_shipped(shipped, TRAINING)[0] is not None
    write_shipped(shipped, _trainer(b"second"), service="body", training=TRAINING, data="a test frame")
    assert (shipped / "net.pt").read_bytes() == b"second"
    assert sorted(path.name for path in shipped.parent.iterdir()) == ["model"]


def test_the_committed_weights_are_what_each_service_trains_with_its_default_settings():
    from tryon.services.weights import main, shipped_weights_problems

    # A changed default (epochs, seed, catalogue size) needs make weights, or every first start trains.
    assert shipped_weights_problems() == []
    assert main(["--check"]) == 0
