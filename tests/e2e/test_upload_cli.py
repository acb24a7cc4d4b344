"""`videodrop upload` against the real system: streamed uploads, links printed, --wait."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import requests

from tests.harness import REPO, System


def upload(system: System, *args: str, token: str | None = None,
           url: str | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in system.env.items() if k != "VIDEODROP_ADMIN_TOKEN"}
    env["VIDEODROP_ADMIN_TOKEN"] = system.admin_token if token is None else token
    if url is not None:
        env["VIDEODROP_BASE_URL"] = url
    return subprocess.run([sys.executable, "-m", "videodrop", "upload", *args], env=env,
                          cwd=cwd, capture_output=True, text=True, timeout=180)


def test_upload_wait_prints_links_and_fails_on_a_broken_file(system: System, samples: Path,
                                                             tmp_path: Path) -> None:
    broken = tmp_path / "broken.flv"
    broken.write_bytes((samples / "tiny-broken.flv").read_bytes())
    done = upload(system, "--wait", "--json", "--name", "Bunny", "--name", "Broken",
                  str(samples / "bbb_input.webm"), str(broken))
    assert done.returncode == 1, done.stderr  # one of them failed
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["original_filename"] for r in records] == ["bbb_input.webm", "broken.flv"]
    good, bad = records
    assert good["status"] == "ready" and good["name"] == "Bunny"
    assert bad["status"] == "failed" and bad["processing_error"] and bad["error_code"]
    assert "uploading bbb_input.webm" in done.stderr and "sent: bbb_input.webm" in done.stderr
    assert "broken.flv: failed" in done.stderr
    body = requests.get(good["api_links"]["download_url"], timeout=10).content
    assert body == (samples / "bbb_input.webm").read_bytes()


def test_upload_all_ready_exits_zero_and_prints_every_link(system: System,
                                                           samples: Path) -> None:
    files = [samples / "bbb_chapters.mp4", samples / "sar_2x1.mp4"]
    done = upload(system, "--wait", "--description", "from the shell",
                  *map(str, files), url=system.base_url)
    assert done.returncode == 0, done.stderr
    items = {v["original_filename"]: v for v in system.videos()}
    assert set(items) == {"bbb_chapters.mp4", "sar_2x1.mp4"}
    for path in files:
        rec = items[path.name]
        assert rec["status"] == "ready" and rec["description"] == "from the shell"
        assert f"{path.name}: id {rec['id']}, ready" in done.stdout
        assert f"page     {system.base_url}/videos/{rec['id']}" in done.stdout
        for key in ("api_endpoint", "stream_url", "metadata_url", "download_url"):
            assert rec["api_links"][key] in done.stdout


def test_upload_refusals(system: System, samples: Path, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a video")
    wrong = upload(system, str(samples / "sar_2x1.mp4"), token="wrong")
    assert wrong.returncode == 1 and "401" in wrong.stderr
    mixed = upload(system, str(notes), str(tmp_path / "missing.mp4"),
                   str(samples / "tiny_av1.mp4"))
    assert mixed.returncode == 1
    assert "not a supported format" in mixed.stderr and "no such file" in mixed.stderr
    assert "tiny_av1.mp4: id" in mixed.stdout  # the good one still went
    dup = upload(system, "--source-id", "cam-1", str(samples / "tiny_av1.mp4"))
    again = upload(system, "--source-id", "cam-1", str(samples / "tiny_av1.mp4"))
    assert dup.returncode == 0 and again.returncode == 1 and "409" in again.stderr
    usage = upload(system, "--name", "one", str(samples / "a.mp4"), str(samples / "b.mp4"))
    assert usage.returncode == 2 and "once per FILE" in usage.stderr
    # no token anywhere (run from a folder without var/admin-token): says where it looked
    nobody = upload(system, str(samples / "tiny_av1.mp4"), token="", cwd=tmp_path)
    assert nobody.returncode == 2 and "no admin token" in nobody.stderr
    assert str(tmp_path / "var" / "admin-token") in nobody.stderr


def test_upload_finds_the_make_run_token_and_shows_a_failure_without_links(
        system: System, samples: Path, tmp_path: Path) -> None:
    """A second shell in a `make run` checkout: the token comes from var/admin-token; a
    file that failed shows its reason, not stream and download links that answer 409."""
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "admin-token").write_text(system.admin_token + "\n")
    broken = tmp_path / "broken.flv"
    broken.write_bytes((samples / "tiny-broken.flv").read_bytes())
    done = upload(system, "--wait", str(broken), token="", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    [rec] = system.videos()
    assert rec["status"] == "failed" and rec["error_code"]
    assert f"broken.flv: id {rec['id']}, failed" in done.stdout
    assert f"error    {rec['error_code']}: {rec['processing_error']}" in done.stdout
    assert "stream" not in done.stdout and "download" not in done.stdout


def test_upload_over_the_limit_is_refused_early(make_system, tmp_path: Path) -> None:
    system: System = make_system(VIDEODROP_MAX_FILE_SIZE="1MB").start("api")
    big = tmp_path / "big.mp4"
    with big.open("wb") as fh:  # sparse: 50 MB that take no disk
        fh.truncate(50_000_000)
    done = upload(system, str(big))
    assert done.returncode == 1
    assert "413" in done.stderr and "too large" in done.stderr.lower()
    assert system.videos() == []


def test_upload_waits_out_a_busy_server(make_system,  # type: ignore[no-untyped-def]
                                        samples: Path) -> None:
    """The API answers 503 with Retry-After while this client holds its share of the
    worker's threads (api/worker.py): the upload says so, waits what Retry-After asks and
    tries again; once the threads are free it goes through and is followed to ready."""
    import threading

    from testbed.hostile import threads_held
    from tests.harness import wait_for

    system: System = make_system(VIDEODROP_API_WORKERS="1", VIDEODROP_API_THREADS="4")
    system.start()
    env = {**system.env, "VIDEODROP_ADMIN_TOKEN": system.admin_token}
    lines: list[str] = []
    with threads_held(system.base_url, system.admin_token, 2):  # 4 threads but 2
        proc = subprocess.Popen(
            [sys.executable, "-m", "videodrop", "upload", "--wait", "--json",
             str(samples / "tiny_av1.mp4")], env=env, cwd=REPO, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stderr is not None
        reader = threading.Thread(target=lambda: lines.extend(proc.stderr or ()), daemon=True)
        reader.start()
        retrying = wait_for(lambda: [ln for ln in lines if "trying again" in ln], timeout=60,
                            what="the upload to say it tries again")
    out, _ = proc.communicate(timeout=180)
    reader.join(10)
    assert retrying[0].strip() == (
        "videodrop upload: tiny_av1.mp4: 503 Too many requests at once — Finish the others"
        " first; trying again in 1 s (attempt 2 of 5)"), retrying
    assert proc.returncode == 0, "".join(lines)
    [record] = [json.loads(line) for line in out.splitlines()]
    assert record["status"] == "ready" and record["original_filename"] == "tiny_av1.mp4"
