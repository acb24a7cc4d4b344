"""End to end: `videodrop run` (every role in one foreground process group), samples copied
into the inbox, followed to ready over HTTP, the seed's downstream snippet, a clean stop."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import requests

from tests.harness import REPO, System, wait_for

SAMPLES_READY = ["bbb_chapters.mp4", "bbb_input.webm", "grampa-laughing.flv", "xbox.wmv",
                 "rotate-buck-bunny.mp4"]


def children_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                         text=True, check=False).stdout
    return [int(x) for x in out.split()]


def test_videodrop_run_end_to_end(make_system, samples, tmp_path):
    system: System = make_system()
    log = (tmp_path / "run.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "videodrop", "run"], env=system.env,
                            cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    try:
        wait_for(lambda: system.http.get(f"{system.base_url}/healthz", timeout=2).ok,
                 timeout=60, what="the API")
        for name in SAMPLES_READY:
            shutil.copy(samples / name, system.inbox / name)
        (system.inbox / "broken.flv").write_bytes((samples / "tiny-broken.flv").read_bytes())
        items = system.wait_done(len(SAMPLES_READY) + 1, timeout=120)
        by_name = {v["original_filename"]: v for v in items}
        for name in SAMPLES_READY:
            assert by_name[name]["status"] == "ready", by_name[name]
        assert by_name["broken.flv"]["status"] == "failed"
        assert by_name["rotate-buck-bunny.mp4"]["file_info"]["resolution"] == "1080x1920"

        # The seed's downstream snippet, unchanged but for the token and host.
        token = by_name["bbb_chapters.mp4"]["api_links"]["access_token"]
        base = system.base_url
        response = requests.get(f"{base}/api/video/{token}/")
        video_data = response.json()
        metadata_response = requests.get(f"{base}/api/video/{token}/metadata/")
        metadata = metadata_response.json()
        download_response = requests.get(f"{base}/api/video/{token}/download/")
        with open(tmp_path / "video.mp4", "wb") as f:
            f.write(download_response.content)
        assert video_data["status"] == "ready" and metadata["duration"] > 0
        assert (tmp_path / "video.mp4").read_bytes() == (samples / "bbb_chapters.mp4").read_bytes()
        assert system.inbox_entries() == []

        kids = children_of(proc.pid)
        assert len(kids) == 4  # ingest, prober, derive, api
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        log.close()
    assert code == 0, (tmp_path / "run.log").read_text()
    for pid in kids:
        assert not os.path.exists(f"/proc/{pid}") or _zombie(pid), f"role {pid} still running"


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1].startswith("Z")
    except FileNotFoundError:
        return True


def test_videodrop_run_exits_78_when_a_role_has_a_configuration_error(make_system):
    """A weak admin token: the API exits 78, and so does `videodrop run` (a service manager
    and `make run` must not take it for a clean stop)."""
    system: System = make_system(VIDEODROP_ADMIN_TOKEN="password" * 4)
    done = subprocess.run([sys.executable, "-m", "videodrop", "run", "--roles", "api"],
                          env=system.env, cwd=REPO, capture_output=True, timeout=120)
    assert done.returncode == 78, done.stdout[-2000:]


def test_videodrop_run_runs_retention_passes_when_there_are_rules(make_system, tmp_path):
    """With VIDEODROP_RETENTION_FILE, `videodrop run` (and so `make run`) runs the retention
    role as the unit does (`--every 300`): its first pass expires what the rules say."""
    rules = tmp_path / "retention.toml"
    rules.write_text('[global]\nmax_age = "1d"\n')
    system: System = make_system(VIDEODROP_RETENTION_FILE=str(rules))
    log = (tmp_path / "run.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "videodrop", "run", "--roles",
                             "ingest,retention"], env=system.env, cwd=REPO, stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_for(lambda: b'"retention pass"' in (tmp_path / "run.log").read_bytes(),
                 timeout=60, what="a retention pass")
        commands = [Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                    for pid in children_of(proc.pid)]
        assert [b"retention", b"--every", b"300"] in [c[3:6] for c in commands], commands
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        log.close()
    assert code == 0, (tmp_path / "run.log").read_text()
