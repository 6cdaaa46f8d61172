"""Trained weights shipped inside a service's package, so a first start loads instead of training.

A service's package holds ``weights/<folder>/``: the files its training would write under
``<data_dir>/<folder>`` with the default settings, and ``PROVENANCE.json`` saying how they were
made (command, training settings, data, date, commit, machine, seconds) and the size and SHA-256
of every file. ``make weights`` writes them (``write_provenance``); at start a service whose data
folder holds no model asks ``install_shipped`` to copy them there, which it does only when the
provenance's training settings are the service's own, so a service told to train otherwise
(another seed, other epochs) still trains. Every refusal comes back as a sentence for the log.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tryon.shared.files import atomic_write
from tryon.shared.results import commit_description, machine_description

PROVENANCE_FILE = "PROVENANCE.json"
"""The provenance document inside a shipped folder (also copied into the data folder with it)."""

WEIGHTS_COMMAND = "make weights"
"""The documented command that rewrites every service's shipped weights."""


@dataclass(frozen=True)
class Installed:
    """The outcome of ``install_shipped``: the provenance of the files now in place, or why none are."""

    provenance: dict[str, Any] | None
    reason: str


def _digest(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            hasher.update(block)
    return hasher.hexdigest()


def _listed_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file() and path.name != PROVENANCE_FILE)


def write_provenance(
    folder: Path,
    *,
    service: str,
    training: Mapping[str, Any],
    data: str,
    seconds: float,
    command: str = WEIGHTS_COMMAND,
    unrelated: Sequence[Path] = (),
) -> dict[str, Any]:
    """Describe the trained files under ``folder`` in its ``PROVENANCE.json``; returns the document.

    ``training`` holds the settings that decide the weights (epochs, seeds, sizes), compared with a
    service's own before the files are used; ``data`` names what they were trained on. Changes to
    ``folder`` and to the ``unrelated`` paths (other services' weights written by the same command)
    do not make the commit "+ uncommitted changes".
    """
    folder = Path(folder)
    document = {
        "service": service,
        "command": command,
        "training": dict(training),
        "data": data,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
        "commit": commit_description(Path(__file__).resolve().parent, exclude=(folder, *unrelated)),
        "machine": machine_description(),
        "torch": torch.__version__,
        "seconds": round(seconds, 1),
        "files": {
            path.relative_to(folder).as_posix(): {"bytes": path.stat().st_size, "sha256": _digest(path)}
            for path in _listed_files(folder)
        },
    }
    atomic_write(folder / PROVENANCE_FILE, json.dumps(document, indent=1) + "\n")
    return document


def read_provenance(folder: Path) -> dict[str, Any] | None:
    """The provenance document of ``folder``, or None when it has none (or an unreadable one)."""
    try:
        return json.loads((Path(folder) / PROVENANCE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def check_shipped(shipped: Path, training: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """The shipped folder's provenance when its files are whole and trained as ``training`` says, else why not.

    Returns (provenance, a sentence) or (None, the reason the folder cannot be used).
    """
    provenance = read_provenance(shipped)
    if provenance is None:
        return None, f"no shipped weights in {shipped}"
    shipped_training = provenance.get("training")
    if shipped_training != dict(training):
        return None, f"the shipped weights were trained with {shipped_training}, this service asks for {dict(training)}"
    for name, facts in provenance.get("files", {}).items():
        path = shipped / name
        # A checkout without the binary files (a Git LFS pointer, a partial copy) must not pass for weights.
        if not path.is_file() or path.stat().st_size != facts["bytes"] or _digest(path) != facts["sha256"]:
            return None, f"the shipped file {path} is missing or differs from its provenance"
    return provenance, "shipped weights match the training settings"


def install_shipped(shipped: Path, target: Path, training: Mapping[str, Any]) -> Installed:
    """Copy the shipped folder to ``target`` when it was trained with ``training``; say what happened.

    The copy is built beside ``target`` and renamed over it, so a crash leaves either no model,
    the old folder, or the whole shipped one. Nothing is copied when the shipped folder is
    missing, incomplete or trained with other settings.
    """
    shipped, target = Path(shipped), Path(target)
    provenance, reason = check_shipped(shipped, training)
    if provenance is None:
        return Installed(None, reason)
    staging = target.with_name(f"{target.name}.shipped.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(shipped, staging, copy_function=lambda source, copy: atomic_write(copy, Path(source).read_bytes()))
    if target.exists():
        shutil.rmtree(target)
    os.replace(staging, target)
    return Installed(provenance, f"copied the shipped weights of {provenance.get('date')} ({provenance.get('commit')})")


def write_shipped(
    shipped: Path,
    train: Callable[[Path], Path],
    *,
    service: str,
    training: Mapping[str, Any],
    data: str,
    unrelated: Sequence[Path] = (),
) -> dict[str, Any]:
    """Train into a scratch data folder, describe the result, and put it in place of ``shipped``.

    ``train`` gets an empty data folder, trains and saves there exactly as a service's first start
    would, and returns the folder it wrote (``<data folder>/model`` or the like). The old shipped
    folder stays until the new one is complete. Returns the provenance document.
    """
    shipped = Path(shipped)
    shipped.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=shipped.parent, prefix=".training-") as scratch:
        started = time.monotonic()
        trained = Path(train(Path(scratch)))
        provenance = write_provenance(
            trained, service=service, training=training, data=data,
            seconds=time.monotonic() - started, unrelated=(shipped.parent, *unrelated),
        )
        retired = Path(scratch) / "retired"
        if shipped.exists():
            os.replace(shipped, retired)
        os.replace(trained, shipped)
    return provenance
