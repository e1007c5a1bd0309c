"""The demo end to end: wall time of `lbcloud demo`, and the local backend's per-attempt overhead.

Per-attempt overhead is "slot free → next simulator ready": for each attempt that reused a slot, the
time from the previous attempt's end (as the dispatcher recorded it) to the new attempt's simulator
listening on its port (the attempt's ``started_at``). It includes the dispatcher noticing the free
slot, claiming the task, starting the supervisor and the simulator (unless a standby had them ready).

Slot time not driving is 1 - (sum of the routes' own wall time, their records' ``duration_system``) /
(slots x the time from the first attempt's start to the last one's end).

Run:  python benchmarks/bench_demo.py [--slots 2] [--track sumo-test]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lbcloud.adapters.store.sql import open_state_store


def record_driving_seconds(record_json: str | None) -> float:
    """The wall time the route itself took (its record's ``duration_system``), 0 without a record."""
    try:
        records = json.loads(record_json or "")["_checkpoint"]["records"]
    except (ValueError, KeyError, TypeError):
        return 0.0
    return float(records[-1]["meta"]["duration_system"]) if records else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--track", default="sumo-test")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "demo"
        started = time.monotonic()
        command = [sys.executable, "-m", "lbcloud", "demo", "--data-dir", str(data)]
        command += ["--slots", str(args.slots), "--track", args.track]
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.monotonic() - started
        if result.returncode != 0:
            print(result.stdout[-3000:], result.stderr[-3000:])
            raise SystemExit(f"demo failed with exit code {result.returncode}")
        # the attempt folders are removed once collected: the figures come from the state store
        store = open_state_store(f"sqlite:///{(data / 'lbcloud.db').resolve()}", upgrade=False)
        rows = [a for a in store.attempts() if a.ended_at is not None]
        store.close()
    attempts = sorted(
        (a.created_at.timestamp(), a.started_at.timestamp() if a.started_at else None, a.ended_at.timestamp())
        for a in rows
        if a.ended_at is not None
    )
    driving = sum(record_driving_seconds(a.record_json) for a in rows)
    ends = sorted(a[2] for a in attempts)
    overheads = []
    used = 0
    for i, (start, ready, _) in enumerate(attempts):
        if i < args.slots or ready is None:
            continue  # the first attempts took free slots
        # the slot this attempt reused: the earliest end not yet reused, which came before it started
        if used < len(ends) and ends[used] <= start:
            overheads.append(ready - ends[used])
            used += 1
    startup = [r - s for s, r, _ in attempts if r is not None]
    print(f"demo on {args.track} with {args.slots} slot(s): {wall:.1f} s wall, {len(attempts)} attempts")
    first, last = attempts[0][0], max(a[2] for a in attempts)
    slot_time = args.slots * (last - first)
    print(
        f"  slot time not driving: {(1 - driving / slot_time) * 100:.0f} % of {slot_time:.0f} slot-seconds "
        f"(driving {driving:.0f} s: the routes' own wall time); goal <= 35 %"
    )
    print(f"  attempt claimed → simulator ready: median {statistics.median(startup):.2f} s, max {max(startup):.2f} s")
    if overheads:
        print(
            f"  slot free → next simulator ready: median {statistics.median(overheads):.2f} s, "
            f"p90 {sorted(overheads)[int(len(overheads) * 0.9) - 1]:.2f} s over {len(overheads)} slot reuses"
        )


if __name__ == "__main__":
    main()
