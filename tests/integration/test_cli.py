"""The command line on real parts: refusals that name what is wrong and leave nothing
half-done, several files to probe, a closed pipe, a taken port."""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import sys
from pathlib import Path

import pika
import pytest

from tests.harness import REPO, System, rows, videodrop
from videodrop.settings import Settings


def queued(system: System) -> int:
    """Messages waiting in the system's probe queue."""
    settings = Settings.from_env(system.env)
    conn = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    try:
        frame = conn.channel().queue_declare(settings.probe_queue, passive=True)
        return int(frame.method.message_count)
    finally:
        conn.close()


def test_requeue_names_unknown_ids_and_requeues_nothing(make_system) -> None:
    system: System = make_system()
    assert videodrop(system, "migrate").returncode == 0
    source_id = secrets.token_hex(6)
    [(known,)] = rows(
        system.database_url, "INSERT INTO videos (source_id, name, status, access_token,"
        " original_filename, origin, stored_path, size, format) VALUES (%s, 'x', 'ready',"
        " %s, 'x.mp4', 'upload', %s, 1, 'mp4') RETURNING id", source_id,
        secrets.token_urlsafe(32), f"videos/{source_id}/x.mp4")
    assert videodrop(system, "requeue", str(known)).returncode == 0  # declares the queue
    before = queued(system)
    assert before == 1
    done = videodrop(system, "requeue", str(known), str(known + 1000), str(known + 2000))
    assert done.returncode == 1
    assert f"no video with id {known + 1000}, {known + 2000}" in done.stderr
    assert "nothing requeued" in done.stderr and "requeued" not in done.stdout
    assert queued(system) == before  # nothing half-done


def test_probe_takes_several_files_as_json_lines(make_system, samples: Path,
                                                 tmp_path: Path) -> None:
    system: System = make_system()
    notes = tmp_path / "notes.mp4"
    notes.write_text("not a video")
    files = [samples / "tiny_av1.mp4", notes, tmp_path / "missing.mp4", samples / "sar_2x1.mp4"]
    done = videodrop(system, "probe", *map(str, files))
    assert done.returncode == 2  # one missing (worse than one failed)
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(Path(x["file"]).name, x["status"]) for x in lines] == [
        ("tiny_av1.mp4", "ready"), ("notes.mp4", "failed"), ("sar_2x1.mp4", "ready")]
    assert lines[1]["error_code"] and "missing.mp4: no such file" in done.stderr
    one = videodrop(system, "probe", str(samples / "tiny_av1.mp4"))
    assert one.returncode == 0 and json.loads(one.stdout)["status"] == "ready"  # one object


def test_probe_into_a_closed_pipe_ends_quietly(make_system, samples: Path) -> None:
    system: System = make_system()
    many = [str(samples / "tiny_av1.mp4")] * 40
    proc = subprocess.Popen([sys.executable, "-m", "videodrop", "probe", *many],
                            env=system.env, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline()  # the first line, then the reader goes away (`| head -1`)
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(120) == 141
    assert b"Traceback" not in err and b"BrokenPipe" not in err, err


def test_api_on_a_taken_address_exits_78_naming_it(make_system) -> None:
    system: System = make_system()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", system.port))
        taken.listen()
        done = videodrop(system, "api")
    assert done.returncode == 78, done.stderr
    assert f"127.0.0.1:{system.port}" in done.stderr and "in use" in done.stderr


@pytest.mark.parametrize("args", [["--help"], ["upload", "--help"], ["probe", "--help"]])
def test_any_command_into_a_closed_pipe_ends_quietly(make_system, args: list[str]) -> None:
    system: System = make_system()
    proc = subprocess.Popen([sys.executable, "-m", "videodrop", *args], env=system.env,
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the first line is written
    err = proc.stderr.read()
    # 141 where our code met the closed pipe; argparse's own help exits 0 before it does
    assert proc.wait(60) in ({141} if args == ["--help"] else {0, 141})
    assert b"Traceback" not in err and b"BrokenPipe" not in err, err


def test_retention_on_s3_refuses_a_free_space_floor(make_system, s3_server, s3_bucket,
                                                     tmp_path: Path) -> None:
    """keep_free has no meaning on an object store: retention on s3 refuses a rules file
    that sets it (exit 78, the file, the key and why named) rather than silently ignoring
    it; without it, the same store and rules run a pass (exit 0)."""
    system: System = make_system()
    assert videodrop(system, "migrate").returncode == 0
    rules = tmp_path / "rules.toml"
    env = {**system.env, **s3_server.env(), "VIDEODROP_RETENTION_FILE": str(rules),
           "VIDEODROP_STORAGE_URL": f"s3://{s3_bucket}/cli"}

    def retention() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "videodrop", "retention"], env=env,
                              cwd=REPO, capture_output=True, text=True, timeout=120)

    rules.write_text('[global]\nquota = "1GiB"\nkeep_free = "5%"\n')
    done = retention()
    assert done.returncode == 78, done.stderr
    assert str(rules) in done.stderr and "[global] keep_free" in done.stderr
    assert "object store" in done.stderr and f"s3://{s3_bucket}/cli/" in done.stderr
    rules.write_text('[global]\nquota = "1GiB"\n')
    done = retention()
    assert done.returncode == 0, done.stderr


def test_the_prober_refuses_an_s3_store_without_its_bucket(make_system, s3_server) -> None:
    """A bucket that is not there (or credentials it refuses) stops the prober at start
    (exit 78, the store named): an operator has to act."""
    system: System = make_system()
    done = subprocess.run([sys.executable, "-m", "videodrop", "prober"],
                          env={**system.env, **s3_server.env(),
                               "VIDEODROP_STORAGE_URL": "s3://vdtest-no-such-bucket/media"},
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 78, done.stderr
    assert "s3://vdtest-no-such-bucket/media/" in done.stderr and "no bucket" in done.stderr
