"""The CLI's remote mode: a server URL and a token saved by ``lbcloud login``, and the HTTP client
that reads and controls submissions through the server's API.

The login is stored in ``<config dir>/lbcloud/login.json`` (``$LBCLOUD_CONFIG_DIR``, else
``$XDG_CONFIG_HOME``, else ``~/.config``), readable only by its owner (0600). ``LBCLOUD_URL`` and
``LBCLOUD_TOKEN`` in the environment take precedence over the file (for CI jobs).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from lbcloud.domain.errors import ConfigError, Conflict, InputError, LbcloudError, NotFound, Unavailable

LOGIN_FILE = "login.json"
TIMEOUT_S = 30.0


class NotAllowed(LbcloudError):
    """The server refused the token (401) or the action for this token (403)."""

    exit_code = 10


@dataclass(frozen=True, slots=True)
class RemoteLogin:
    url: str
    token: str | None


def config_dir() -> Path:
    """Where the CLI keeps its login (see the module docstring)."""
    explicit = os.environ.get("LBCLOUD_CONFIG_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "lbcloud"


def normalise_url(url: str) -> str:
    """``http(s)://host[:port][/prefix]`` without a trailing slash; anything else is an input error."""
    url = url.strip().rstrip("/")
    parsed = httpx.URL(url) if url.startswith(("http://", "https://")) else None
    if parsed is None or not parsed.host:
        raise InputError(f"the server URL must start with http:// or https:// and name a host, not {url!r}")
    return url


def load_login(env: Mapping[str, str] | None = None) -> RemoteLogin | None:
    """The configured server, or None (then the CLI works on the local settings)."""
    env = os.environ if env is None else env
    if env.get("LBCLOUD_URL"):
        return RemoteLogin(normalise_url(env["LBCLOUD_URL"]), env.get("LBCLOUD_TOKEN") or None)
    path = config_dir() / LOGIN_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return RemoteLogin(normalise_url(str(data["url"])), data.get("token") or None)
    except (OSError, ValueError, KeyError, TypeError, InputError) as err:
        raise ConfigError(f"{path}: unreadable login ({err}); run `lbcloud logout` and log in again") from None


def save_login(login: RemoteLogin) -> Path:
    """Write the login file with owner-only permissions (the directory 0700, the file 0600)."""
    folder = config_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / LOGIN_FILE
    temporary = folder / f".{LOGIN_FILE}.{os.getpid()}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump({"url": login.url, "token": login.token}, out)
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)
    return path


def forget_login() -> bool:
    path = config_dir() / LOGIN_FILE
    if path.exists():
        path.unlink()
        return True
    return False


def _error(response: httpx.Response, what: str) -> LbcloudError:
    try:
        message = str(response.json().get("error") or response.text)
    except ValueError:
        message = response.text.strip() or response.reason_phrase
    status = response.status_code
    if status in (400, 422):
        return InputError(message)
    if status in (401, 403):
        hint = " (log in again with `lbcloud login URL`)" if status == 401 else ""
        return NotAllowed(f"{message}{hint}")
    if status == 404:
        return NotFound(message)
    if status == 409:
        return Conflict(message)
    if status >= 500:
        return Unavailable(f"{what}: the server answered {status}: {message}")
    return LbcloudError(f"{what}: {status} {message}")


class RemoteClient:
    """The server's JSON API (``/api/v1``) with the saved token."""

    def __init__(self, login: RemoteLogin, transport: httpx.BaseTransport | None = None) -> None:
        self.login = login
        headers = {"Authorization": f"Bearer {login.token}"} if login.token else {}
        self._http = httpx.Client(
            base_url=f"{login.url}/api/v1", headers=headers, timeout=TIMEOUT_S, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, body: Any = None) -> Any:
        what = f"{method} {self.login.url}/api/v1{path}"
        try:
            response = self._http.request(method, path, params=params, json=body)
        except httpx.TimeoutException:
            raise Unavailable(f"{what}: no answer within {TIMEOUT_S:.0f} s") from None
        except httpx.HTTPError as err:
            raise Unavailable(f"{what}: cannot reach the server ({err})") from None
        if response.status_code >= 400:
            raise _error(response, what)
        return response.json()

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, body=body if body is not None else {})

    def base_url(self) -> str:
        return self.login.url
