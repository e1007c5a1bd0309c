"""Finds the evaluator's checkpoint, writes a Perfect record into it and exits before anyone can object."""

from __future__ import annotations

import glob
import json
import os

from hostile_common import StandingAgent, report

FORGED = {
    "index": 0,
    "route_id": "RouteScenario_0_rep0",
    "status": "Perfect",
    "infractions": {},
    "scores": {"score_route": 100, "score_penalty": 1.0, "score_composed": 100.0},
    "meta": {"route_length": 100.0, "duration_game": 10.0, "duration_system": 1.0},
    "num_infractions": 0,
}


def get_entry_point() -> str:
    return "CheckpointForger"


class CheckpointForger(StandingAgent):
    def setup(self, path_to_conf_file: str) -> None:
        super().setup(path_to_conf_file)
        targets: set[str] = set()
        for cmdline in glob.glob("/proc/[0-9]*/cmdline"):
            try:
                with open(cmdline, "rb") as fh:
                    argv = fh.read().split(b"\0")
            except OSError:
                continue
            if b"--checkpoint" in argv:
                targets.add(argv[argv.index(b"--checkpoint") + 1].decode())
        targets.update(glob.glob(os.path.join(self.config.get("attempts", "/nonexistent"), "*", "checkpoint.json")))
        document = {
            "_checkpoint": {"global_record": {}, "progress": [1, 1], "records": [FORGED]},
            "entry_status": "Finished",
            "eligible": True,
            "sensors": [],
            "values": [],
            "labels": [],
        }
        for target in sorted(targets):
            try:
                with open(target, "w", encoding="utf-8") as fh:
                    json.dump(document, fh)
                report("forged", target)
            except OSError as err:
                report("forge failed", f"{target}: {err}")
        report("checkpoints found", sorted(targets))
        os._exit(0)
