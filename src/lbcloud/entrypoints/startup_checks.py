"""Startup checks that turn an unusable environment into one clear line (ConfigError, exit 5)."""

from __future__ import annotations

import socket
from pathlib import Path

from lbcloud.domain.errors import ConfigError


def ensure_data_dir(path: Path) -> None:
    """Create the data folder, or raise :class:`ConfigError` saying why it cannot be."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"data_dir {path}: cannot create it ({err.strerror or err})") from None
    if not path.is_dir():
        raise ConfigError(f"data_dir {path}: exists and is not a folder")


def check_listen_address(host: str, port: int) -> None:
    """Raise :class:`ConfigError` unless the web server can listen on ``host:port`` now."""
    if not 1 <= port <= 65535:
        raise ConfigError(f"web port {port} is out of range (1-65535)")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as err:
        raise ConfigError(f"web host {host!r}: cannot resolve it ({err})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server itself binds
        try:
            sock.bind(address)
        except OSError as err:
            raise ConfigError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
