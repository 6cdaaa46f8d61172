"""MovieLens-100K (Harper and Konstan, ACM TiiS 2015) from the copy shipped inside the recbole wheel.

The file ``recbole/dataset_example/ml-100k/ml-100k.inter`` is a tab-separated atomic file
with a typed header (``user_id:token  item_id:token  rating:float  timestamp:float``). Only
that member is taken out of the wheel (a zip archive); recbole itself is never imported.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import pandas as pd

from tryon.shared.files import atomic_write

ML100K_MEMBER = "recbole/dataset_example/ml-100k/ml-100k.inter"
ML100K_FILE = "ml-100k.inter"
DEFAULT_DATA_PATH = Path("var/data/ml-100k.inter")


def extract_ml100k(wheel_or_dir: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Copy ``ml-100k.inter`` out of a recbole wheel (or a folder holding wheels) to ``dest``.

    ``dest`` is the target file path, or a folder to write ``ml-100k.inter`` into. The write
    is atomic. Returns the written path.
    """
    source = Path(wheel_or_dir)
    if source.is_dir():
        wheels = sorted(source.glob("recbole-*.whl"))
        if not wheels:
            raise FileNotFoundError(f"no recbole-*.whl in {source}; run: pip download --no-deps recbole==1.2.1")
        source = wheels[-1]
    if not source.is_file():
        raise FileNotFoundError(f"no recbole wheel at {source}")
    target = Path(dest)
    if target.is_dir() or not target.suffix:
        target = target / ML100K_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(source) as wheel:
        if ML100K_MEMBER not in wheel.namelist():
            raise FileNotFoundError(f"{source} has no {ML100K_MEMBER}")
        def copy_member(temporary: Path) -> None:
            with open(temporary, "wb") as out, wheel.open(ML100K_MEMBER) as member:
                shutil.copyfileobj(member, out)

        atomic_write(target, copy_member)
    return target


def load_ml100k(path: str | os.PathLike = DEFAULT_DATA_PATH) -> pd.DataFrame:
    """Read ``ml-100k.inter`` into columns user_id, item_id (int64), rating, timestamp (float64)."""
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(
            f"no MovieLens-100K file at {source}; extract it with "
            "python -m tryon.services.recommendation.movielens WHEEL DEST"
        )
    frame = pd.read_csv(source, sep="\t", header=0)
    frame.columns = [column.split(":", 1)[0] for column in frame.columns]
    expected = ["user_id", "item_id", "rating", "timestamp"]
    if list(frame.columns) != expected:
        raise ValueError(f"{source} has columns {list(frame.columns)}, expected {expected}")
    return frame.astype({"user_id": "int64", "item_id": "int64", "rating": "float64", "timestamp": "float64"})


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m tryon.services.recommendation.movielens WHEEL_OR_DIR [DEST]``."""
    import argparse

    parser = argparse.ArgumentParser(description="Extract MovieLens-100K from a recbole wheel.")
    parser.add_argument("wheel_or_dir", help="recbole-1.2.1-py3-none-any.whl or a folder holding it")
    parser.add_argument("dest", nargs="?", default=str(DEFAULT_DATA_PATH), help="target file or folder")
    args = parser.parse_args(argv)
    written = extract_ml100k(args.wheel_or_dir, args.dest)
    frame = load_ml100k(written)
    print(f"wrote {written}: {len(frame)} ratings, {frame.user_id.nunique()} users, {frame.item_id.nunique()} items")


if __name__ == "__main__":
    main()
