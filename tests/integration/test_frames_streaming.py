"""``/frames/`` answers to clients that read slowly, over a real socket: a ``tar`` read more
slowly than VIDEODROP_FRAME_TIMEOUT is still whole (the deadline bounds decoding, not the
client's reading); a token revoked while a ``tar`` is sent cuts it off before the next
frame; an ``npy`` waiting to be read is not held in the worker's memory."""

from __future__ import annotations

import io
import socket
import subprocess
import tarfile
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.harness import System, own_system, wait_for

FRAME_TIMEOUT = 6  # seconds (VIDEODROP_FRAME_TIMEOUT)
NOISE_FRAMES = 12  # 1080p noise: a JPEG member is megabytes; all, more than sockets buffer


@pytest.fixture(scope="module")
def served(tmp_path_factory, database_url, amqp_url, amqp_prefix
           ) -> Iterator[tuple[System, dict[str, dict]]]:
    folder = tmp_path_factory.mktemp("frames-streaming")
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                    f"color=c=gray:s=1920x1080:r=25:d={NOISE_FRAMES / 25},"
                    "noise=alls=100:allf=t", "-c:v", "libx264", "-preset", "ultrafast",
                    "-crf", "10", "-g", "1", str(folder / "noise.mp4")], check=True, timeout=60)
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",  # cheap to decode
                    "color=c=gray:s=1920x1080:r=25:d=1", "-c:v", "libx264", "-preset",
                    "ultrafast", str(folder / "gray.mp4")], check=True, timeout=60)
    with own_system(tmp_path_factory.mktemp("streaming"), database_url, amqp_url,
                    f"{amqp_prefix}_streaming", "api", "prober", "ingest",
                    VIDEODROP_DERIVE="", VIDEODROP_FRAME_TIMEOUT=str(FRAME_TIMEOUT),
                    VIDEODROP_FRAMES_MAX="64") as system:
        for path in folder.iterdir():
            (system.inbox / path.name).write_bytes(path.read_bytes())
        items = system.wait_done(2, timeout=120)
        assert all(v["status"] == "ready" for v in items), items
        yield system, {v["original_filename"]: v for v in items}


def slow_request(system: System, token: str, params: dict[str, str]
                 ) -> tuple[socket.socket, bytes]:
    """A GET of ``/frames/`` from a client which has read the response's first bytes
    only: (the socket, those bytes)."""
    sock = socket.create_connection(("127.0.0.1", system.port), timeout=60)
    query = urllib.parse.urlencode(params)
    sock.sendall(f"GET /api/video/{token}/frames/?{query} HTTP/1.1\r\nHost: x\r\n"
                 "Connection: close\r\n\r\n".encode())
    first = sock.recv(4096)
    assert first.startswith(b"HTTP/1.1 200 "), first
    return sock, first


def rest(sock: socket.socket, first: bytes) -> bytes:
    """The response's body: ``first``, then what the socket still gives until closed."""
    data = first
    while chunk := sock.recv(1 << 20):
        data += chunk
    sock.close()
    return data[data.index(b"\r\n\r\n") + 4:]


def tar_members(body: bytes) -> list[str] | None:
    """The members of the archive in a chunked ``body``, or None when it is cut off (no
    last chunk, or no end of archive)."""
    if not body.endswith(b"0\r\n\r\n"):
        return None
    out, rest_ = b"", body
    while rest_:
        line, rest_ = rest_.split(b"\r\n", 1)
        size = int(line, 16)
        if size == 0:
            break
        out, rest_ = out + rest_[:size], rest_[size + 2:]
    if not out.endswith(b"\0" * 1024):
        return None
    return tarfile.open(fileobj=io.BytesIO(out)).getnames()


def times(count: int) -> str:
    return ",".join(f"{n * 0.04:.2f}" for n in range(count))


def test_a_tar_read_slower_than_the_deadline_is_whole(served):
    system, records = served
    token = records["noise.mp4"]["api_links"]["access_token"]
    started = time.monotonic()
    sock, first = slow_request(system, token, {"t": times(NOISE_FRAMES), "format": "tar"})
    # the client's pace is the point of the test: it reads nothing more until the
    # request's deadline has passed
    wait_for(lambda: time.monotonic() > started + FRAME_TIMEOUT + 1, timeout=FRAME_TIMEOUT + 5,
             what="the request's deadline to pass")
    names = tar_members(rest(sock, first))
    assert names is not None, system.log_text("api")[-3000:]
    assert names == [f"{n:06d}.{ext}" for n in range(NOISE_FRAMES) for ext in ("jpg", "json")]


def test_a_token_revoked_while_a_tar_is_sent_cuts_it_off(served):
    system, records = served
    record = records["noise.mp4"]
    sock, first = slow_request(system, record["api_links"]["access_token"],
                               {"t": times(NOISE_FRAMES), "format": "tar"})
    resp = system.http.delete(f"{system.base_url}/api/videos/{record['id']}/token",
                              headers=system.admin, timeout=10)
    assert resp.status_code == 200
    raw = rest(sock, first)
    assert tar_members(raw) is None  # cut off, never a whole archive
    assert raw.count(b"ustar") < 2 * NOISE_FRAMES  # the frames after the revocation: none


def rss(pid: int) -> int:
    """The resident memory of ``pid``, bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def api_worker(system: System) -> int:
    """The pid of the (one) gunicorn worker of the system's API."""
    master = system.procs["api"].pid
    found = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True,
                           check=True).stdout.split()
    assert len(found) == 1, found
    return int(found[0])


def test_an_npy_waiting_to_be_read_is_not_held_in_memory(served):
    system, records = served
    token = records["gray.mp4"]["api_links"]["access_token"]
    worker = api_worker(system)
    count = 40  # 40 x 1920x1080x3: 249 MB of RGB
    size = count * 1080 * 1920 * 3
    before = rss(worker)
    sock, first = slow_request(system, token, {"t": ",".join(["0.5"] * count)})
    # the answer is made (its head came with the first bytes); it waits to be read
    held = rss(worker) - before
    array = np.load(io.BytesIO(rest(sock, first)))
    assert held < size / 4, held
    assert array.shape == (count, 1080, 1920, 3)
