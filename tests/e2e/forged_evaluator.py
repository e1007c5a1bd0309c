"""A subverted evaluator for the record-validation tests: it writes a forged checkpoint and exits 0.

It stands for any evaluator whose output the participant can influence (a CARLA evaluator runs the
agent in its own process). ``--mode ds5000`` writes an out-of-range driving score, ``--mode
wrong-route`` a well-formed record for another route, ``--mode inflated`` a Perfect status and
penalty 1.0 next to a collision.
"""

from __future__ import annotations

import argparse
import json

parser = argparse.ArgumentParser()
parser.add_argument("--checkpoint", required=True)
parser.add_argument("--route", required=True)
parser.add_argument("--mode", required=True, choices=["ds5000", "wrong-route", "inflated"])
args = parser.parse_args()

route_id = f"RouteScenario_{args.route}_rep0"
infractions: dict[str, list[str]] = {
    key: []
    for key in (
        "collisions_layout", "collisions_pedestrian", "collisions_vehicle", "outside_route_lanes",
        "red_light", "route_dev", "route_timeout", "stop_infraction", "vehicle_blocked",
        "yield_emergency_vehicle_infractions", "scenario_timeouts", "min_speed_infractions",
    )
}  # fmt: skip
scores = {"score_route": 100, "score_penalty": 1.0, "score_composed": 100.0}
status = "Perfect"
if args.mode == "ds5000":
    scores = {"score_route": 100, "score_penalty": 1.0, "score_composed": 5000.0}
elif args.mode == "wrong-route":
    route_id = "RouteScenario_7_rep0"
else:
    infractions["collisions_vehicle"] = [
        "Agent collided against object with type=vehicle.sumo.car and id=3 at (x=1.0, y=2.0, z=0.0)"
    ]
record = {
    "index": 0, "route_id": route_id, "status": status, "infractions": infractions, "scores": scores,
    "meta": {"route_length": 250.0, "duration_game": 30.0, "duration_system": 2.0},
    "num_infractions": sum(len(v) for v in infractions.values()),
}  # fmt: skip
document = {
    "_checkpoint": {"global_record": {}, "progress": [1, 1], "records": [record]},
    "entry_status": "Started", "eligible": False, "sensors": ["carla_speedometer"], "values": [], "labels": [],
}  # fmt: skip
with open(args.checkpoint, "w", encoding="utf-8") as fh:
    json.dump(document, fh)
print(f"wrote a forged record ({args.mode}) for {route_id}")
