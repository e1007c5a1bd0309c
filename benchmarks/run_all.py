"""Run every benchmark in this folder, one after the other, printing their figures.

Run:  python benchmarks/run_all.py [--quick] [NAME ...]     (NAME: results, sumo, scheduler, ...)

``--quick`` shortens the long ones (SSE load 15 s instead of 60 s, 200 queued submissions instead of
1,000) for a fast look; the figures reported in docs/benchmarks.md come from full runs.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

QUICK_ARGS = {
    "control_plane": ["--submissions", "200", "--seconds", "30"],
    "sse": ["--duration", "15"],
    "scheduler": ["--seeds", "50"],
    "results": ["--sizes", "20,1000,20000"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("names", nargs="*")
    args = parser.parse_args()
    scripts = sorted(HERE.glob("bench_*.py"))
    if args.names:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in args.names]
    failed = []
    for script in scripts:
        name = script.stem.removeprefix("bench_")
        extra = QUICK_ARGS.get(name, []) if args.quick else []
        print(f"\n===== {name} {' '.join(extra)}", flush=True)
        started = time.monotonic()
        code = subprocess.call([sys.executable, str(script), *extra])
        print(f"----- {name}: exit {code} in {time.monotonic() - started:.0f} s", flush=True)
        if code != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
