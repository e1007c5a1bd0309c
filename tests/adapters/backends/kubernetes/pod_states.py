"""Pod statuses a kubelet would write, for the fake kubelet of the unit and real-server tests."""

from __future__ import annotations

from typing import Any

Status = dict[str, Any]


def _terminated(name: str, code: int, reason: str | None = None) -> Status:
    state: Status = {"exitCode": code, "reason": reason or ("Completed" if code == 0 else "Error")}
    return {"name": name, "ready": False, "restartCount": 0, "image": f"{name}:img", "imageID": "",
            "state": {"terminated": state}}  # fmt: skip


def _running(name: str) -> Status:
    return {"name": name, "ready": True, "restartCount": 0, "image": f"{name}:img", "imageID": "", "started": True,
            "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}  # fmt: skip


def unschedulable(message: str = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.") -> Status:
    return {
        "phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}],
    }


def running() -> Status:
    return {
        "phase": "Running",
        "conditions": [{"type": "PodScheduled", "status": "True"}],
        "containerStatuses": [_running("agent"), _running("simulator"), _running("reporter")],
    }


def agent_exited(code: int, reason: str | None = None) -> Status:
    return {
        "phase": "Succeeded" if code == 0 else "Failed",
        "conditions": [{"type": "PodScheduled", "status": "True"}],
        "containerStatuses": [_terminated("agent", code, reason), _terminated("simulator", 0),
                              _terminated("reporter", 0)],
    }  # fmt: skip


def simulator_died(agent_code: int) -> Status:
    """The simulator crashed (exit 139) a minute before the agent container ended."""
    agent, simulator = _terminated("agent", agent_code), _terminated("simulator", 139)
    agent["state"]["terminated"]["finishedAt"] = "2026-01-01T00:05:00Z"
    simulator["state"]["terminated"]["finishedAt"] = "2026-01-01T00:04:00Z"
    return {
        "phase": "Failed",
        "conditions": [{"type": "PodScheduled", "status": "True"}],
        "containerStatuses": [agent, simulator, _terminated("reporter", 0)],
    }


def evicted(message: str = "The node was low on resource: memory.") -> Status:
    return {"phase": "Failed", "reason": "Evicted", "message": message}


def preempted() -> Status:
    return {
        "phase": "Failed",
        "conditions": [{"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
                        "message": "Preempted in order to admit critical pod"}],
        "containerStatuses": [_terminated("agent", 137)],
    }  # fmt: skip


def image_pull_backoff(container: str, image: str, message: str) -> Status:
    return {
        "phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "True"}],
        "containerStatuses": [
            {"name": container, "ready": False, "restartCount": 0, "image": image, "imageID": "",
             "state": {"waiting": {"reason": "ImagePullBackOff", "message": message}}},
        ],
    }  # fmt: skip


def deadline_exceeded(agent_started: bool = True) -> Status:
    statuses = [_terminated("agent", 137)] if agent_started else []
    return {"phase": "Failed", "reason": "DeadlineExceeded", "message": "Pod was active on the node longer than the "
            "specified deadline", "containerStatuses": statuses}  # fmt: skip
