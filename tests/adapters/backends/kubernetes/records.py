"""Route record documents as the evaluator's checkpoint holds them (for reporter and backend tests)."""

from __future__ import annotations

import json


def checkpoint_document(route_id: str = "RouteScenario_2_rep0", status: str = "Completed") -> str:
    record = {
        "index": 0,
        "route_id": route_id,
        "status": status,
        "num_infractions": 0,
        "infractions": {},
        "scores": {"score_route": 100.0, "score_penalty": 1.0, "score_composed": 100.0},
        "meta": {"route_length": 812.0, "duration_game": 60.0, "duration_system": 20.0},
    }
    document = {"_checkpoint": {"records": [record], "progress": [1, 1]}, "entry_status": "Started", "sensors": []}
    return json.dumps(document, indent=2)
