"""A stand-in for the CARLA server (no GPU here): listens on ``-carla-rpc-port=N`` like CarlaUE4.sh.

Line protocol with the stand-in evaluator: ``route R AGENT`` (which route and agent), ``tick``, ``record PATH``
(the server writes recorder files, as CARLA's ``client.start_recorder`` does), ``bye``.

``$FAKE_CARLA_PLAN`` names a JSON file ``{agent or route: plan}``; a plan is ``crash`` (the server dies from
SIGSEGV at the third tick, every attempt), ``crash_once`` (only on the first attempt of the route),
``error_once`` (the first attempt's third tick answers an error: the evaluator records a simulation
crash while the server lives on). Each start appends its argv to ``<plan>.argv`` (the tests read
the GPU adapter from it).
"""

import json
import os
import signal
import socket
import sys
from pathlib import Path


def main() -> None:
    port = 2000
    for arg in sys.argv[1:]:
        if arg.startswith("-carla-rpc-port="):
            port = int(arg.split("=", 1)[1])
    plan_file = os.environ.get("FAKE_CARLA_PLAN", "")
    plans = json.loads(Path(plan_file).read_text()) if plan_file else {}
    if plan_file:
        with open(plan_file + ".argv", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(sys.argv[1:]) + "\n")
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen(1)
    print(f"fake CARLA listening on {port}", flush=True)
    while True:
        conn, _ = server.accept()
        try:
            serve(conn, plans, plan_file)
        except OSError as err:  # a client that went away never takes the server down
            print(f"fake CARLA: client gone ({err})", flush=True)


def count_attempt(plan_file: str, key: str) -> int:
    """This start's attempt number for ``key``; the counter is replaced whole, so a server of another
    pod reading it meanwhile never sees it half written."""
    counter = Path(f"{plan_file}.{key}.attempts")
    attempt = int(counter.read_text()) + 1 if counter.exists() else 1
    scratch = counter.with_name(f"{counter.name}.{os.getpid()}")
    scratch.write_text(str(attempt))
    os.replace(scratch, counter)
    return attempt


def serve(conn: socket.socket, plans: dict, plan_file: str) -> None:
    plan, attempt, ticks = "", 0, 0
    with conn, conn.makefile("rw") as io:
        for line in io:
            words = line.split()
            if not words:
                continue
            if words[0] == "route":
                key = words[2] if len(words) > 2 and words[2] in plans else words[1]
                plan = plans.get(key, "")
                attempt = count_attempt(plan_file, key) if plan else 1
                io.write("ok\n")
            elif words[0] == "tick":
                ticks += 1
                first = attempt == 1
                if ticks == 3 and (plan == "crash" or (plan == "crash_once" and first)):
                    print("fake CARLA: Signal 11 caught.", flush=True)
                    os.kill(os.getpid(), signal.SIGSEGV)
                if ticks == 3 and plan == "error_once" and first:
                    io.write("error the simulation failed\n")
                else:
                    io.write("ok\n")
            elif words[0] == "record":
                Path(words[1]).parent.mkdir(parents=True, exist_ok=True)
                Path(words[1]).write_bytes(b"CARLA_RECORDER" + b"\0" * 64)
                io.write("ok\n")
            elif words[0] == "bye":
                io.write("ok\n")
                io.flush()
                return
            io.flush()


if __name__ == "__main__":
    main()
