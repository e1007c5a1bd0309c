"""Simulator ports owned, not guessed: host-wide reservations and "is our simulator the listener".

A port is reserved by taking an exclusive ``flock`` on ``<lock_dir>/port-<n>.lock``. The lock
directory is host-wide (the same for every lbcloud install and dispatcher on the machine), so two
attempts, two dispatchers or two installs never hand out the same port. The lock's file descriptor
is passed to the attempt's supervisor, which holds it for the attempt's whole life; the kernel drops
it when the supervisor exits, however it exits, so no reservation outlives its attempt and none
needs cleaning up after a crash. A port some other program listens on is skipped as well.

Readiness is then judged on who listens: :func:`listener_owned_by` answers whether the socket
listening on the port belongs to a process of the simulator's process group, read from the
kernel's socket table and ``/proc/<pid>/fd`` (Linux), so a foreign listener is never mistaken for
our simulator.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lbcloud.domain.errors import LbcloudError

_LISTEN = "0A"


def default_lock_dir() -> Path:
    """The host-wide reservation folder (``$TMPDIR/lbcloud-ports``)."""
    return Path(tempfile.gettempdir()) / "lbcloud-ports"


@dataclass(frozen=True, slots=True)
class PortReservation:
    """A reserved port and the open, locked file descriptor that holds the reservation."""

    port: int
    fd: int

    def release(self) -> None:
        """Give the port back (the holder of an inherited copy keeps it until it exits)."""
        with contextlib.suppress(OSError):
            os.close(self.fd)


def _bindable(port: int) -> bool:
    # a loopback bind also fails when something holds the port on the wildcard address
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def reserve_port(lo: int, hi: int, lock_dir: Path | None = None) -> PortReservation:
    """Reserve a TCP port in [lo, hi] host-wide. Raises :class:`LbcloudError` when none is free."""
    folder = lock_dir or default_lock_dir()
    try:
        folder.mkdir(mode=0o1777, parents=True, exist_ok=True)
    except OSError as err:
        raise LbcloudError(f"cannot create the port reservation folder {folder}: {err}") from None
    for port in range(lo, hi + 1):
        try:
            fd = os.open(folder / f"port-{port}.lock", os.O_RDWR | os.O_CREAT, 0o666)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue  # another attempt, dispatcher or install holds it
        if not _bindable(port):
            os.close(fd)
            continue  # something that does not take reservations listens there
        return PortReservation(port, fd)
    raise LbcloudError(f"no free TCP port in {lo}-{hi} for a simulator (all reserved or in use on this host)")


def listening_inodes(port: int) -> set[str]:
    """Inodes of the sockets listening on TCP ``port`` (IPv4 and IPv6) per the kernel's tables."""
    suffix = f":{port:04X}"
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as fh:
                next(fh, None)
                for line in fh:
                    parts = line.split()
                    if len(parts) > 9 and parts[1].endswith(suffix) and parts[3] == _LISTEN:
                        found.add(parts[9])
        except OSError:
            continue
    return found


def _group_of(pid: str) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[2])
    except (OSError, ValueError, IndexError):
        return None


def listener_owned_by(port: int, group: int) -> bool | None:
    """Whether a process of process group ``group`` holds the socket listening on ``port``.

    ``None``: nothing listens on the port yet. ``False``: something else listens there."""
    inodes = listening_inodes(port)
    if not inodes:
        return None
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or _group_of(pid) != group:
            continue
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/fd/{fd}") in wanted:
                    return True
    return False
