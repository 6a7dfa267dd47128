"""Cold-start import time of the built layer: shipped hash-based bytecode against none (what Lambda gets
from timestamp-based .pyc files once a zip has normalised modification times, since /opt is read-only).

    sam build && python -m benchmarks.layer_bytecode [.aws-sam/build] [--runs 5]

Each run is a fresh CPython 3.12 (`-I -S -B`: only the standard library and the layer on sys.path, no
bytecode written) importing what a worker and the API import. Prints the median of both and the ratio.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.deploy.conftest import python312

IMPORTS = (
    "pixcrawler.db, pixcrawler.models, pixcrawler.schemas, pixcrawler.queues, pixcrawler.links, "
    "aws_lambda_powertools.event_handler, aws_lambda_powertools.utilities.batch, pg8000, PIL.Image"
)


def import_seconds(python: str, layer: Path) -> float:
    code = f"import sys; sys.path[:0] = [{str(layer)!r}]; import {IMPORTS}"
    started = time.perf_counter()
    subprocess.run([python, "-I", "-S", "-B", "-c", code], check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("build", nargs="?", default=".aws-sam/build", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    layer = args.build / "CommonLayer" / "python"
    if not layer.is_dir():
        sys.exit(f"{layer} not found: run sam build first")
    python = str(python312())
    with tempfile.TemporaryDirectory() as scratch:
        bare = Path(scratch) / "python"
        shutil.copytree(layer, bare, ignore=shutil.ignore_patterns("__pycache__"))
        import_seconds(python, layer)  # warm the page cache for both trees
        import_seconds(python, bare)
        shipped = statistics.median(import_seconds(python, layer) for _ in range(args.runs))
        none = statistics.median(import_seconds(python, bare) for _ in range(args.runs))
    print(f"layer import, shipped unchecked-hash bytecode: {shipped * 1000:7.0f} ms (median of {args.runs})")
    print(f"layer import, no usable bytecode:              {none * 1000:7.0f} ms (median of {args.runs})")
    print(f"speed-up: {none / shipped:.1f}x")


if __name__ == "__main__":
    main()
