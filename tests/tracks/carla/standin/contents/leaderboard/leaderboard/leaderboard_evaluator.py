"""A stand-in for the official ``leaderboard/leaderboard_evaluator.py`` (CARLA needs a GPU).

It parses its command line with the official parser (``official_parsers.py``) and reproduces the
official evaluator's observable behaviour, as in carla-simulator/leaderboard's
leaderboard/leaderboard_evaluator.py at a87a3419 (lines cited per branch below):

- connecting to the server and importing the agent module happen before any route, uncaught:
  a failure there is a traceback and exit 1 (lines 79, 87-89, 421-478);
- the agent's set-up failing writes "Failed - Agent couldn't be set up" and goes on: exit 0 (324-332);
- sensors for the wrong track are rejected: "Failed - Agent's sensors were invalid", entry status
  Rejected, and the run stops as crashed: exit 255 (314-322, 472-473);
- an agent error while driving writes "Failed - Agent crashed": exit 0 (344-349);
- any other error while driving is a simulation crash: "Failed - Simulation crashed", exit 255
  (351-355, 375); when the server is gone every call blocks for the client timeout first and
  stopping the scenario fails, so no record is written (357-372);
- the checkpoint keeps only finished routes (utils/statistics_manager.py lines 132-139).

The stand-in agent is a module with ``TRACK``, ``setup(config)`` and ``run_step(step)``.
"""

import importlib
import json
import os
import socket
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from official_parsers import parser_10, parser_20

STEPS = 6


class AgentError(Exception):
    pass


class Server:
    def __init__(self, host, port, timeout):
        self.timeout = timeout
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.create_connection((host, int(port)), timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"time-out of {timeout}s while waiting for the simulator") from None
                time.sleep(0.2)
        self.io = self.sock.makefile("rw")

    def call(self, line):
        try:
            self.io.write(line + "\n")
            self.io.flush()
            answer = self.io.readline()
        except OSError:
            answer = ""
        if not answer:
            time.sleep(self.timeout)  # an RPC to a dead server blocks for the client timeout
            raise RuntimeError(f"time-out of {self.timeout}s while waiting for the simulator")
        if answer.startswith("error"):
            raise RuntimeError(answer.strip())
        return answer.strip()


def write_checkpoint(path, records, entry_status, sensors, done):
    document = {
        "_checkpoint": {
            "global_record": {"status": "Completed"} if done else {},
            "progress": [1, 1],
            "records": records,
        },
        "entry_status": entry_status,
        "eligible": entry_status == "Finished",
        "sensors": sensors,
        "values": [],
        "labels": [],
    }
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(document, fh, indent=2)


def route_record(route_id, status, route_completion):
    return {
        "index": 0,
        "route_id": route_id,
        "status": status,
        "num_infractions": 0,
        "infractions": {
            "collisions_layout": [], "collisions_pedestrian": [], "collisions_vehicle": [],
            "red_light": [], "stop_infraction": [], "outside_route_lanes": [], "min_speed_infractions": [],
            "yield_emergency_vehicle_infractions": [], "scenario_timeouts": [], "route_dev": [],
            "vehicle_blocked": [], "route_timeout": [],
        },
        "scores": {"score_route": route_completion, "score_penalty": 1.0, "score_composed": route_completion},
        "meta": {"route_length": 120.0, "duration_game": 30.0, "duration_system": 10.0},
    }


def main():
    version = os.environ.get("FAKE_LEADERBOARD_VERSION", "2.0")
    args = (parser_10() if version == "1.0" else parser_20()).parse_args()
    import carla  # the trusted package must come first on the path

    if not getattr(carla, "TRUSTED", False):
        raise ImportError(f"an untrusted carla package was imported: {carla.__file__}")
    print(f"> leaderboard stand-in {version}: track {args.track}, routes {args.routes}, subset {args.routes_subset}")
    print(f"> CHALLENGE_TRACK_CODENAME={os.environ.get('CHALLENGE_TRACK_CODENAME')}"
          f" DEBUG_CHALLENGE={os.environ.get('DEBUG_CHALLENGE')} resume={args.resume}", flush=True)
    server = Server(args.host, args.port, float(args.timeout))
    module_name = os.path.basename(args.agent).split(".")[0]
    sys.path.insert(0, os.path.dirname(args.agent))
    agent = importlib.import_module(module_name)

    route_id = f"RouteScenario_{args.routes_subset}_rep0"
    server.call(f"route {args.routes_subset} {module_name}")
    try:
        agent.setup(args.agent_config)
    except Exception:
        print("\nCould not set up the required agent:")
        print(traceback.format_exc(), flush=True)
        record = route_record(route_id, "Failed - Agent couldn't be set up", 0.0)
        write_checkpoint(args.checkpoint, [record], "Finished", [], True)
        return 0
    if args.track != agent.TRACK:
        print(f"\nThe sensor's configuration used is invalid:\nYou are submitting to the wrong track [{args.track}]!")
        record = route_record(route_id, "Failed - Agent's sensors were invalid", 0.0)
        write_checkpoint(args.checkpoint, [record], "Rejected", ["carla_camera"], False)
        return -1
    if args.record:
        server.call(f"record {args.record}/{route_id}.log")
    status, completion = "Completed", 100.0
    try:
        for step in range(STEPS):
            server.call("tick")
            try:
                agent.run_step(step)
            except Exception as err:
                raise AgentError(err) from err
            print(f"step {step}", flush=True)
    except AgentError:
        print("\nStopping the route, the agent has crashed:")
        print(traceback.format_exc(), flush=True)
        status, completion = "Failed - Agent crashed", 30.0
    except Exception:
        print("\nError during the simulation:")
        print(traceback.format_exc(), flush=True)
        status, completion = "Failed - Simulation crashed", 30.0
    try:
        server.call("bye")  # stopping the scenario needs the server
    except Exception:
        print("\nFailed to stop the scenario, the statistics might be empty:")
        print(traceback.format_exc(), flush=True)
        write_checkpoint(args.checkpoint, [], "Started", ["carla_camera"], False)
        return -1
    crashed = status == "Failed - Simulation crashed"
    entry = "Crashed" if crashed else "Finished"
    record = route_record(route_id, status, completion)
    write_checkpoint(args.checkpoint, [record], entry, ["carla_camera"], not crashed)
    return -1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
