"""How the evaluator starts an agent host with least privilege on this machine.

With bubblewrap (``bwrap``) the host runs in its own mount, PID, network, IPC and UTS namespaces:
the system and the Python installation read-only, the agent's own folder read-only, a size-limited
private ``/tmp`` and home as the only writable places, a private ``/proc``, no network at all (the
evaluator's unix socket is bound in), and when the evaluator runs as root a user id of its own
(so nothing else on the machine is its to read or signal, and its process limit is its own).
Without bubblewrap it is a plain process with the same allowlisted environment and resource
limits: what that does not protect is listed in ``docs/security.md``.

Either way: an environment that holds nothing but ``PATH``, ``HOME``, ``LANG`` and two Python
switches (no ``LBCLOUD_*`` settings, no tokens, no cloud credentials), and ``setrlimit`` limits on
address space, processes, CPU seconds, file size and core dumps.
"""

from __future__ import annotations

import contextlib
import functools
import os
import resource
import shutil
import signal
import site
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

SOCKET_DIR_IN_SANDBOX = "/run/lbcloud-agent"
HOME_IN_SANDBOX = "/home/agent"
SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
AGENT_UID_BASE = 200000


class SandboxMode(StrEnum):
    """``auto``: bubblewrap when it works here, else none. ``bwrap``: required. ``none``: never."""

    AUTO = "auto"
    BWRAP = "bwrap"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class AgentLimits:
    """Per-attempt limits of the agent's processes (the evaluator's options; settings on the backend)."""

    memory_mb: int = 4096
    """Address space of each agent process (RLIMIT_AS)."""
    pids: int = 128
    """Processes and threads of the agent (RLIMIT_NPROC of its own user id)."""
    cpu_s: int = 3600
    """CPU seconds of each agent process (RLIMIT_CPU)."""
    disk_mb: int = 512
    """Size of the writable ``/tmp`` and home in the sandbox, and the largest file it may write."""
    log_bytes: int = 8 * 1024 * 1024
    """Agent output kept per evaluator run; the rest is dropped after a marker line."""


@dataclass(frozen=True, slots=True)
class SandboxStatus:
    """Whether agent hosts run sandboxed here, and a sentence saying why (for startup logs and doctor)."""

    sandboxed: bool
    detail: str


@functools.cache
def _bwrap_works(bwrap: str) -> str | None:
    """None when a trial sandbox runs, else the reason it does not."""
    probe = [bwrap, "--ro-bind", "/", "/", "--unshare-all", "--proc", "/proc", "--dev", "/dev", "--", "true"]
    if os.geteuid() != 0:
        probe.insert(1, "--unshare-user")
    try:
        done = subprocess.run(probe, capture_output=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"{bwrap} could not be run: {err}"
    if done.returncode != 0:
        return f"{bwrap} cannot create namespaces here: {done.stderr.decode(errors='replace').strip()[:200]}"
    return None


def sandbox_status(mode: SandboxMode) -> SandboxStatus:
    """What :func:`host_command` will do in ``mode`` on this machine."""
    if mode is SandboxMode.NONE:
        return SandboxStatus(False, "agent sandbox disabled by configuration (agents run as plain processes)")
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return SandboxStatus(False, "bubblewrap (bwrap) is not installed: agents run as plain processes")
    problem = _bwrap_works(bwrap)
    if problem is not None:
        return SandboxStatus(False, problem)
    who = "an agent user id of their own" if os.geteuid() == 0 else "a user namespace"
    return SandboxStatus(True, f"agents run in a bubblewrap sandbox ({bwrap}) with {who}")


def agent_uid() -> int:
    """A user id no other live evaluator's agent has: this evaluator's pid above a base (live pids are
    unique and below 2**22, so no two evaluators' agents share one, and the end-of-attempt kill of
    every process of that uid never reaches another team's agent)."""
    return AGENT_UID_BASE + os.getpid()


def agent_environment(home: str) -> dict[str, str]:
    """The whole environment of an agent host: nothing inherited."""
    return {
        "PATH": SAFE_PATH,
        "HOME": home,
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def _ancestors(path: str) -> list[str]:
    parts = Path(path).parts[1:-1]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def _readable_roots() -> list[str]:
    """Folders the host must read: the interpreter, its libraries and lbcloud's agent API.

    Not ``sys.path``: its first entry is the evaluator's working folder, which may hold anything."""
    import lbcloud

    package_parent = str(Path(lbcloud.__file__).resolve().parent.parent)
    candidates = [
        sys.prefix, sys.base_prefix, sys.exec_prefix, str(Path(sys.executable).resolve().parent.parent),
        package_parent, *site.getsitepackages(),
    ]  # fmt: skip
    roots: list[str] = []
    for candidate in sorted({os.path.realpath(c) for c in candidates}, key=len):
        if candidate.startswith("/usr/") or candidate == "/usr" or not os.path.isdir(candidate):
            continue
        if any(candidate == root or candidate.startswith(root + "/") for root in roots):
            continue
        roots.append(candidate)
    return roots


def _others_can_read(path: Path) -> bool:
    """Whether a user with no relation to ``path``'s owner can read it (and reach it)."""
    try:
        if any(not parent.stat().st_mode & 0o001 for parent in path.parents):
            return False
        mode = path.stat().st_mode
    except OSError:
        return False
    return bool(mode & 0o004) and (not path.is_dir() or bool(mode & 0o001))


def _staged(source: Path, stage: Path) -> Path:
    """A copy of ``source`` under ``stage`` that the agent's own user id can read."""
    stage.mkdir(mode=0o755, exist_ok=True)
    target = stage / f"{len(list(stage.iterdir()))}-{source.name}"
    if source.is_dir():
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"), symlinks=True)
        for folder, _dirs, files in os.walk(target):
            os.chmod(folder, 0o755)
            for name in files:
                with contextlib.suppress(OSError):
                    os.chmod(os.path.join(folder, name), 0o644)
    else:
        shutil.copyfile(source, target)
        os.chmod(target, 0o644)
    return target


def _bwrap_argv(bwrap: str, socket_dir: str, binds: Sequence[tuple[str, str]], limits: AgentLimits) -> list[str]:
    """bubblewrap's options; ``binds`` are (source, path in the sandbox) pairs mounted read-only."""
    roots = _readable_roots()
    size = str(limits.disk_mb * 1024 * 1024)
    argv = [bwrap, "--perms", "1777", "--size", size, "--tmpfs", "/tmp"]
    argv += ["--perms", "1777", "--size", size, "--tmpfs", HOME_IN_SANDBOX]
    made: set[str] = {"/tmp", HOME_IN_SANDBOX}
    # bwrap would create missing parents owner-only; the agent's user must traverse them
    folders = [*roots, *(target for source, target in binds if os.path.isdir(source)), SOCKET_DIR_IN_SANDBOX]
    files = [target for source, target in binds if not os.path.isdir(source)]
    for parent in [p for folder in folders for p in _ancestors(folder + "/x")] + [
        p for file in files for p in _ancestors(file)
    ]:
        if parent not in made and parent != "/usr" and not parent.startswith("/usr/"):
            made.add(parent)
            argv += ["--perms", "0755", "--dir", parent]
    argv += ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "lib", "lib32", "lib64", "sbin"):
        path = f"/{name}"
        if os.path.islink(path):
            argv += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            argv += ["--ro-bind", path, path]
    for name in ("ld.so.cache", "ld.so.conf", "localtime", "alternatives"):
        argv += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    for root in roots:
        argv += ["--ro-bind", root, root]
    for source, target in binds:
        argv += ["--ro-bind", source, target]
    argv += ["--bind", socket_dir, SOCKET_DIR_IN_SANDBOX]
    argv += ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    if os.geteuid() != 0:
        argv += ["--unshare-user"]
    argv += ["--proc", "/proc", "--dev", "/dev", "--die-with-parent", "--new-session", "--clearenv"]
    for key, value in agent_environment(HOME_IN_SANDBOX).items():
        argv += ["--setenv", key, value]
    argv += ["--chdir", HOME_IN_SANDBOX, "--"]
    if os.geteuid() == 0:
        uid = str(agent_uid())
        argv += [shutil.which("setpriv") or "/usr/bin/setpriv", "--reuid", uid, "--regid", uid, "--clear-groups"]
        argv += ["--bounding-set", "-all", "--inh-caps", "-all"]
    return argv


@dataclass(frozen=True, slots=True)
class HostCommand:
    """How to start one agent host: argv, environment, working folder, and the limits to apply."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    address: str
    sandboxed: bool
    limits: AgentLimits

    def preexec(self) -> Callable[[], None]:
        """The child-side setup (resource limits) for ``subprocess.Popen(preexec_fn=...)``."""
        limits = self.limits
        own_processes = 0 if os.geteuid() == 0 and self.sandboxed else _processes_of(os.getuid())

        def apply() -> None:
            memory = limits.memory_mb * 1024 * 1024
            for which, value in (
                (resource.RLIMIT_AS, memory),
                (resource.RLIMIT_CPU, limits.cpu_s),
                (resource.RLIMIT_FSIZE, limits.disk_mb * 1024 * 1024),
                (resource.RLIMIT_CORE, 0),
                (resource.RLIMIT_NPROC, own_processes + limits.pids),
            ):
                with contextlib.suppress(ValueError, OSError):
                    resource.setrlimit(which, (value, value))

        return apply


def _processes_of(uid: int) -> int:
    """How many processes (threads count too for RLIMIT_NPROC) ``uid`` has now."""
    count = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid == uid:
                with open(f"/proc/{entry.name}/status", encoding="ascii") as fh:
                    count += next((int(line.split()[1]) for line in fh if line.startswith("Threads:")), 1)
        except (OSError, ValueError):
            continue
    return count


def _absolute_agent(agent: str) -> tuple[str, list[str]]:
    """``agent`` with a file path made absolute (the host runs elsewhere), and the folder it needs."""
    path, sep, name = agent.rpartition(":") if ":" in agent and not agent.endswith(".py") else (agent, "", "")
    if not path.endswith(".py"):
        return agent, []
    absolute = Path(path).resolve()
    return f"{absolute}{sep}{name}", [str(absolute.parent)]


def host_command(
    agent: str,
    socket_path: Path,
    workdir: Path,
    *,
    mode: SandboxMode,
    limits: AgentLimits,
    files: Sequence[str] = (),
    python: str = "",
) -> HostCommand:
    """The command that starts an agent host for ``agent`` connecting to ``socket_path``.

    ``workdir`` is the host's working folder when it runs unsandboxed; ``files`` are other files the
    agent may read (its configuration), visible at the same path. Raises RuntimeError when ``mode``
    is ``bwrap`` and bubblewrap does not work here.
    """
    python = python or sys.executable
    status = sandbox_status(mode)
    if mode is SandboxMode.BWRAP and not status.sandboxed:
        raise RuntimeError(f"--agent-sandbox bwrap: {status.detail}")
    agent, agent_dirs = _absolute_agent(agent)
    module = [python, "-m", "lbcloud.tracks.sumo.agent_host", "--agent", agent, "--connect-timeout", "10"]
    if not status.sandboxed:
        address = f"unix:{socket_path}"
        env = agent_environment(str(workdir))
        if os.environ.get("PYTHONPATH"):  # a container image's own import path (no secret); the sandbox has none
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        return HostCommand([*module, "--connect", address], env, str(workdir), address, False, limits)
    binds: list[tuple[str, str]] = []
    own_user = os.geteuid() == 0  # the agent gets a user id of its own: it may need readable copies
    for wanted in [*agent_dirs, *(str(Path(f).resolve()) for f in files if f and Path(f).exists())]:
        source = Path(wanted)
        if own_user and not _others_can_read(source):
            source = _staged(source, socket_path.parent / "stage")
        binds.append((str(source), wanted))
    address = f"unix:{SOCKET_DIR_IN_SANDBOX}/{socket_path.name}"
    argv = _bwrap_argv(shutil.which("bwrap") or "bwrap", str(socket_path.parent), binds, limits)
    return HostCommand([*argv, *module, "--connect", address], {}, "/", address, True, limits)


def end_agent_processes(process: subprocess.Popen[bytes], sandboxed: bool) -> None:
    """Kill the host's process group and, where it has a user id of its own, every process of that id."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)
    if sandboxed and os.geteuid() == 0:
        _kill_user(agent_uid())


def _kill_user(uid: int) -> None:
    """SIGKILL every process of ``uid`` (a daemon that left the sandbox's process group, if any)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            os.kill(-1, signal.SIGKILL)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
