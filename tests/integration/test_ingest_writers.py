"""Ingest: every way cameras, NVRs and uploaders write files, each with the real tool.

The source is bbb_chapters.mp4, whose moov atom is at the end: no prefix of it can be
probed, so a file published half-written would end `failed` (or with a short duration)."""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import System, free_port, own_system, wait_for

SOURCE = "bbb_chapters.mp4"


def ffprobe_duration(path: Path) -> float:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration",
                          "-of", "csv=p=0", str(path)], capture_output=True, text=True,
                         check=True).stdout
    return float(out.strip())


@pytest.fixture(scope="module")
def ingest_system(tmp_path_factory, database_url, amqp_url, amqp_prefix) -> Iterator[System]:
    with own_system(tmp_path_factory.mktemp("writers"), database_url, amqp_url,
                    f"{amqp_prefix}_writers", VIDEODROP_SETTLE_SECONDS="2") as system:
        yield system


@pytest.fixture(scope="module")
def source(samples) -> Path:
    return samples / SOURCE


@pytest.fixture(scope="module")
def full_duration(source) -> float:
    return ffprobe_duration(source)


def assert_whole(system: System, name: str, source: Path, duration: float,
                 origin: str = "inbox") -> dict:
    record = system.wait_record(name)
    assert record["status"] == "ready", record
    assert record["file_info"]["size"] == source.stat().st_size
    assert record["file_info"]["duration"] == pytest.approx(duration, abs=0.05)
    assert record["origin"] == origin
    assert len(system.records_named(name)) == 1
    stored = system.media_root / record["file_info"]["filename"]
    assert stored.read_bytes() == source.read_bytes()
    wait_for(lambda: not (system.inbox / name).exists() or None, what=f"{name} to leave the inbox")
    return record


def test_cp(ingest_system, source, full_duration):
    subprocess.run(["cp", str(source), str(ingest_system.inbox / "cp.mp4")], check=True)
    assert_whole(ingest_system, "cp.mp4", source, full_duration)


def test_writer_pausing_with_the_file_open(ingest_system, source, full_duration):
    data = source.read_bytes()
    target = ingest_system.inbox / "paused.mp4"
    half_written = threading.Event()

    def writer() -> None:
        with open(target, "wb") as fh:
            fh.write(data[: len(data) // 2])
            fh.flush()
            half_written.set()
            threading.Event().wait(4)  # the writer's own pause, longer than the settle window
            fh.write(data[len(data) // 2:])

    t = threading.Thread(target=writer)
    t.start()
    half_written.wait(5)
    t.join()
    assert_whole(ingest_system, "paused.mp4", source, full_duration)


def test_close_then_reopen_to_append(ingest_system, source, full_duration):
    data = source.read_bytes()
    target = ingest_system.inbox / "reopened.mp4"
    with open(target, "wb") as fh:
        fh.write(data[: len(data) // 3])
    threading.Event().wait(0.7)  # the writer's own pause: closes, reopens within a second
    with open(target, "ab") as fh:
        fh.write(data[len(data) // 3:])
    assert_whole(ingest_system, "reopened.mp4", source, full_duration)


def test_mv_within_the_file_system(ingest_system, source, full_duration, tmp_path):
    staged = tmp_path / "staged.mp4"
    shutil.copy(source, staged)
    assert os.stat(staged).st_dev == os.stat(ingest_system.inbox).st_dev
    subprocess.run(["mv", str(staged), str(ingest_system.inbox / "mv.mp4")], check=True)
    assert_whole(ingest_system, "mv.mp4", source, full_duration)


def test_mv_from_another_file_system(ingest_system, source, full_duration):
    shm = Path("/dev/shm") / f"vdtest-{os.getpid()}.mp4"
    shutil.copy(source, shm)
    assert os.stat(shm).st_dev != os.stat(ingest_system.inbox).st_dev
    subprocess.run(["mv", str(shm), str(ingest_system.inbox / "shm.mp4")], check=True)
    assert_whole(ingest_system, "shm.mp4", source, full_duration)


def test_rsync(ingest_system, source, full_duration, tmp_path):
    staged = tmp_path / "rsynced.mp4"
    shutil.copy(source, staged)
    # --bwlimit keeps the temporary .rsynced.mp4.XXXXXX around long enough to matter
    subprocess.run(["rsync", "--bwlimit=400", str(staged), str(ingest_system.inbox) + "/"],
                   check=True)
    assert_whole(ingest_system, "rsynced.mp4", source, full_duration)


def test_subfolder_is_the_origin(ingest_system, source, full_duration):
    (ingest_system.inbox / "cam1" / "2026-11-25").mkdir(parents=True)
    shutil.copy(source, ingest_system.inbox / "cam1" / "2026-11-25" / "front.mp4")
    assert_whole(ingest_system, "front.mp4", source, full_duration, origin="inbox/cam1/2026-11-25")


def test_ffmpeg_recording_in_real_time(ingest_system):
    """The NVR case: ffmpeg writes a 6 s clip into the inbox at real-time speed."""
    target = ingest_system.inbox / "nvr.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-re", "-f", "lavfi", "-i",
                    "testsrc=duration=6:size=320x240:rate=25", "-f", "lavfi", "-i",
                    "sine=duration=6", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
                    "-shortest", str(target)], check=True, timeout=60)
    record = ingest_system.wait_record("nvr.mp4")
    assert record["status"] == "ready", record
    assert record["file_info"]["duration"] == pytest.approx(6.0, abs=0.1)
    assert len(ingest_system.records_named("nvr.mp4")) == 1


# --- SFTP: OpenSSH's sftp client against a local sshd ----------------------------------


@pytest.fixture(scope="module")
def sshd(tmp_path_factory) -> Iterator[dict[str, str]]:
    sshd_bin = shutil.which("sshd") or "/usr/sbin/sshd"
    if not Path(sshd_bin).exists() or not shutil.which("sftp"):
        pytest.fail("sshd and sftp are needed: apt-get install openssh-server openssh-client "
                    "(make test installs them)")
    d = tmp_path_factory.mktemp("sshd")
    for name in ("host", "client"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)],
                       check=True)
    (d / "authorized_keys").write_text((d / "client.pub").read_text())
    port = free_port()
    config = d / "sshd_config"
    config.write_text(f"""Port {port}
ListenAddress 127.0.0.1
HostKey {d / 'host'}
AuthorizedKeysFile {d / 'authorized_keys'}
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
PidFile {d / 'sshd.pid'}
Subsystem sftp internal-sftp
""")
    Path("/run/sshd").mkdir(exist_ok=True)
    proc = subprocess.Popen([sshd_bin, "-D", "-e", "-f", str(config)],
                            stdout=subprocess.DEVNULL, stderr=(d / "sshd.log").open("wb"))

    def listening() -> bool:
        import socket
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0
    wait_for(listening, timeout=15, what="sshd to listen")
    yield {"port": str(port), "key": str(d / "client"), "dir": str(d)}
    proc.terminate()
    proc.wait(timeout=10)


def sftp(sshd: dict[str, str], commands: str) -> None:
    batch = Path(sshd["dir"]) / "batch"
    batch.write_text(commands)
    subprocess.run(["sftp", "-q", "-b", str(batch), "-P", sshd["port"], "-i", sshd["key"],
                    "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                    "-o", "BatchMode=yes", f"{getpass.getuser()}@127.0.0.1"],
                   check=True, timeout=60, capture_output=True)


def test_sftp_straight_to_the_final_name(ingest_system, sshd, source, full_duration):
    sftp(sshd, f"put {source} {ingest_system.inbox}/sftp.mp4\n")
    assert_whole(ingest_system, "sftp.mp4", source, full_duration)


def test_sftp_winscp_style_filepart_then_rename(ingest_system, sshd, source, full_duration):
    inbox = ingest_system.inbox
    sftp(sshd, f"put {source} {inbox}/winscp.mp4.filepart\n"
               f"rename {inbox}/winscp.mp4.filepart {inbox}/winscp.mp4\n")
    assert_whole(ingest_system, "winscp.mp4", source, full_duration)
    assert ingest_system.records_named("winscp.mp4.filepart") == []
