"""Generate the Python code of the tryon.v1 contracts into shared/proto.

grpcio-tools writes absolute imports (``from tryon.v1 import common_pb2``); the
generated modules live in the package ``tryon.shared.proto``, so those imports are
rewritten to relative ones. ``--check`` regenerates into a temporary folder and
exits 1 naming every file that differs from the committed code.

Usage: python protos/codegen.py [--check]
"""

from __future__ import annotations

import argparse
import filecmp
import re
import shutil
import sys
import tempfile
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

PROTO_ROOT = Path(__file__).resolve().parent
PROTO_DIR = PROTO_ROOT / "tryon" / "v1"
OUTPUT_DIR = PROTO_ROOT.parent / "shared" / "proto"
ABSOLUTE_IMPORT = re.compile(r"^from tryon\.v1 import ", re.MULTILINE)
PACKAGE_DOCSTRING = '"""Generated protobuf and gRPC code of the tryon.v1 contracts (protos/codegen.py)."""\n'


def generate(output_dir: Path) -> list[Path]:
    """Run protoc on every .proto of tryon.v1 and write the rewritten modules to output_dir."""
    protos = sorted(PROTO_DIR.glob("*.proto"))
    well_known = Path(grpc_tools.__file__).resolve().parent / "_proto"
    with tempfile.TemporaryDirectory() as raw:
        args = [
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"-I{well_known}",
            f"--python_out={raw}",
            f"--pyi_out={raw}",
            f"--grpc_python_out={raw}",
            *(str(p) for p in protos),
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed; see the messages above")
        output_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for generated in sorted((Path(raw) / "tryon" / "v1").iterdir()):
            text = ABSOLUTE_IMPORT.sub("from . import ", generated.read_text())
            target = output_dir / generated.name
            target.write_text(text)
            written.append(target)
    (output_dir / "__init__.py").write_text(PACKAGE_DOCSTRING)
    return written + [output_dir / "__init__.py"]


def stale_files(committed_dir: Path) -> list[str]:
    """Names of generated files that are missing from, or differ in, committed_dir."""
    with tempfile.TemporaryDirectory() as fresh:
        fresh_dir = Path(fresh)
        generate(fresh_dir)
        fresh_names = {p.name for p in fresh_dir.iterdir() if p.is_file()}
        committed_names = {p.name for p in committed_dir.glob("*.py*") if p.is_file()}
        stale = sorted(fresh_names ^ committed_names)
        stale += sorted(
            name
            for name in fresh_names & committed_names
            if not filecmp.cmp(fresh_dir / name, committed_dir / name, shallow=False)
        )
        return stale


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when shared/proto is stale")
    options = parser.parse_args()
    if options.check:
        stale = stale_files(OUTPUT_DIR)
        if stale:
            sys.stderr.write(
                "generated code is stale: " + ", ".join(stale) + "; run `python protos/codegen.py`\n"
            )
            return 1
        return 0
    shutil.rmtree(OUTPUT_DIR, ignore_errors=True)
    for path in generate(OUTPUT_DIR):
        sys.stdout.write(f"wrote {path.relative_to(PROTO_ROOT.parent)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
