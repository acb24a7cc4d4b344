"""Hostile files (issue 15) through the real pipeline (inbox -> RabbitMQ -> prober ->
PostgreSQL -> HTTP), and the limits of the ffprobe child measured directly.

A self-referencing HLS playlist named .mp4 (a memory bomb without limits), a playlist and
a concat list naming another stored video (a metadata leak), a PNG under an image
sequence's name, a GIF and SubRip subtitles named .mp4: each ends ``failed`` with a code
and a sentence naming what it is, no other file is opened (an inotify watch on the stored
video they name, and strace of the child), and a good file dropped after them is ready.

The pipeline's case runs once per media store (``store_env``): on the file store the files
are dropped and the stored video they name is watched (inotify); on s3 they are uploaded,
so that the prober probes each where it lies, ffprobe reading it through a presigned URL
beside the stored video's object (a dropped file is probed in the inbox's spool, a local
file as on the file store, and an object cannot be watched: nothing in the record may show
what the named video holds). The limits of the child are the same on both.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from watchdog.events import FileOpenedEvent, FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from prober.ffprobe import run_probe
from prober.probe import MAX_ITEMS, MAX_TEXT, probe_file
from tests.harness import System
from tests.integration.test_api_uploads import upload_raw, wait_status
from videodrop.children import ChildRunner, Completed

#: the probe's limits, with the child's own peak memory measured
MEASURED = ChildRunner(measure_peak=True)
BOMB = b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nself_a.mp4\n"
REFUSED = {"unsupported_container", "not_media", "still_image"}


def ffmpeg() -> str:
    found = shutil.which("ffmpeg")
    if not found:
        pytest.fail("ffmpeg is missing: apt-get install ffmpeg")
    return found


def hostile_files(folder: Path, other: str) -> dict[str, bytes]:
    """Name -> content; ``other`` is a stored video's path relative to the prober's file."""
    gif, png = folder / "anim.gif", folder / "still.png"
    subprocess.run([ffmpeg(), "-v", "error", "-f", "lavfi", "-i", "testsrc=size=32x32:rate=5",
                    "-frames:v", "5", str(gif)], check=True, timeout=60)
    subprocess.run([ffmpeg(), "-v", "error", "-f", "lavfi", "-i", "testsrc=size=32x32",
                    "-frames:v", "1", str(png)], check=True, timeout=60)
    return {
        "self_a.mp4": BOMB,
        "leak.mp4": (f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{other}\n"
                     "#EXT-X-ENDLIST\n").encode(),
        "concat.mp4": f"ffconcat version 1.0\nfile '{other}'\n".encode(),
        "img%03d.mp4": png.read_bytes(),
        "anim.mp4": gif.read_bytes(),
        "subs.mp4": b"1\n00:00:01,000 --> 00:00:02,000\nhello\n\n2\n00:00:03,000 --> "
                    b"00:00:04,000\nworld\n",
    }


class Opened(FileSystemEventHandler):
    """Every open(2) of one file, seen through inotify (IN_OPEN)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.events: list[FileSystemEvent] = []
        self.lock = threading.Lock()

    def on_opened(self, event: FileSystemEvent) -> None:
        if isinstance(event, FileOpenedEvent) and event.src_path == self.path:
            with self.lock:
                self.events.append(event)


def test_hostile_files_fail_clearly_and_read_nothing_else(make_system, samples: Path,
                                                          tmp_path: Path,
                                                          store_env: dict[str, str]) -> None:
    system: System = make_system(**store_env).start()
    shutil.copy(samples / "bbb_chapters.mp4", system.inbox / "decoy.mp4")
    decoy = system.wait_record("decoy.mp4")
    assert decoy["status"] == "ready"
    stored = system.media_root / decoy["file_info"]["filename"]
    other = f"../{decoy['source_id']}/{stored.name}"  # as seen from a sibling's folder
    files = hostile_files(tmp_path, other)
    if store_env:  # uploaded: probed in the bucket, beside the decoy's object
        uploads = {name: tmp_path / f"upload-{n}" for n, name in enumerate(files)}
        for name, path in uploads.items():
            path.write_bytes(files[name])
        tokens = {name: upload_raw(system, path, filename=name).json()["api_links"][
            "access_token"] for name, path in uploads.items()}
        records = {name: wait_status(system, token) for name, token in tokens.items()}
        watch = None
    else:
        watch = Opened(stored)
        observer = Observer()
        observer.schedule(watch, str(stored.parent))
        observer.start()
        try:
            for name, content in files.items():
                (system.inbox / name).write_bytes(content)
            records = {name: system.wait_record(name, timeout=60) for name in files}
        finally:
            observer.stop()
            observer.join(timeout=10)
    shutil.copy(samples / "tiny_av1.mp4", system.inbox / "good-after.mp4")
    assert system.wait_record("good-after.mp4")["status"] == "ready"  # still serving
    if watch is not None:
        assert watch.events == [], "a hostile file made the prober open another stored video"
    for name, record in records.items():
        assert record["status"] == "failed", (name, record)
        assert record["error_code"] in REFUSED, (name, record)
        assert record["file_info"]["duration"] is None
    said = {name: records[name]["processing_error"] for name in records}
    assert "HLS playlist" in said["self_a.mp4"] and "HLS playlist" in said["leak.mp4"]
    assert "concat list" in said["concat.mp4"]
    assert "GIF" in said["anim.mp4"] and "SubRip" in said["subs.mp4"]
    assert said["img%03d.mp4"].startswith("still image (PNG)")
    assert records["leak.mp4"]["file_info"]["resolution"] is None  # nothing leaked


def strace() -> str:
    found = shutil.which("strace")
    if not found:
        pytest.fail("strace is missing: apt-get install strace")
    return found


class Traced:
    """A runner that runs each child under ``strace -f -e trace=open,openat`` (limits as the
    default runner's, but strace may write its log) and keeps the files each one opened.
    Each child has a log of its own (``log`` with its number as suffix): a probe runs two
    at once."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.logs: list[Path] = []
        self.runner = ChildRunner(file_size=None)
        self._lock = threading.Lock()

    def __call__(self, args: Sequence[str], timeout: float, *,
                 on_stdout: Callable[[bytes], None] | None = None) -> Completed:
        with self._lock:
            log = self.log.with_suffix(f".{len(self.logs)}")
            self.logs.append(log)
        return self.runner([strace(), "-f", "-qq", "-e", "trace=open,openat,openat2", "-o",
                            str(log), *args], timeout, on_stdout=on_stdout)

    def opened(self) -> list[str]:
        found = []
        for log in self.logs:
            for line in log.read_text().splitlines():
                if "ENOENT" not in line and '"' in line:
                    found.append(line.split('"')[1])
        return found


def test_the_child_opens_only_the_file_it_probes(tmp_path: Path, samples: Path) -> None:
    videos = tmp_path / "videos"
    (videos / "a").mkdir(parents=True)
    (videos / "b").mkdir()
    decoy = videos / "a" / "decoy.mp4"
    shutil.copy(samples / "tiny_av1.mp4", decoy)
    for name, content in hostile_files(tmp_path, "../a/decoy.mp4").items():
        hostile = videos / "b" / name
        hostile.write_bytes(content)
        traced = Traced(tmp_path / f"{name}.strace")
        result = probe_file(hostile, runner=traced, version="test")
        assert not result.ok and result.code is not None, name
        files = [f for f in traced.opened() if not f.startswith(("/usr/", "/lib", "/etc/",
                                                                 "/proc/", "/sys/", "/dev/"))]
        assert str(decoy) not in files and files, (name, files)
        assert {Path(f).name for f in files} <= {hostile.name}, (name, files)
    # the same strace sees the decoy when a file does name it and the limits are dropped:
    # the probe above would have noticed a read
    traced = Traced(tmp_path / "unguarded.strace")
    traced.logs.append(traced.log)
    traced.runner([strace(), "-f", "-qq", "-e", "trace=open,openat", "-o", str(traced.log),
                   "ffprobe", "-v", "error", f"file:{videos / 'b' / 'leak.mp4'}"], 30)
    assert str(videos / "b" / "../a/decoy.mp4") in traced.opened()


def test_the_memory_cap_holds_even_without_the_demuxer_whitelist(tmp_path: Path) -> None:
    """The HLS bomb read with the hls demuxer allowed: ffprobe grows until its address
    space is spent and fails (ENOMEM), far below the cap, instead of eating the machine."""
    bomb = tmp_path / "self_a.mp4"
    bomb.write_bytes(BOMB)
    cap = 512 << 20
    runner = ChildRunner(cap, measure_peak=True)
    done = runner(["ffprobe", "-v", "error", "-protocol_whitelist", "file", f"file:{bomb}"], 60)
    assert done.returncode != 0 and b"Cannot allocate memory" in done.stderr, done.stderr
    assert 0 < done.max_rss < cap


def test_a_guarded_probe_of_the_bomb_stays_small(tmp_path: Path) -> None:
    bomb = tmp_path / "self_a.mp4"
    bomb.write_bytes(BOMB)
    peaks: list[int] = []

    def measuring(args: Sequence[str], timeout: float, *,
                  on_stdout: Callable[[bytes], None] | None = None) -> Completed:
        done = MEASURED(args, timeout, on_stdout=on_stdout)
        peaks.append(done.max_rss)
        return done

    result = probe_file(bomb, runner=measuring, version="test")
    assert result.code == "unsupported_container"
    idle = MEASURED(["ffprobe", "-hide_banner", "-version"], 10).max_rss
    # refused before the demuxer opened (the listing, the guessed decode beside it, the
    # run that names the format): no more than ffprobe's own libraries take
    assert len(peaks) == 3 and 0 < max(peaks) < idle * 1.5, (peaks, idle)
    with pytest.raises(Exception, match="Invalid argument"):
        run_probe(bomb)


def test_the_prober_refuses_to_start_without_prlimit(make_system, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    system = make_system()
    env = {**system.env, "PATH": str(bin_dir)}  # no prlimit (and no ffprobe) on the PATH
    env["VIDEODROP_FFPROBE"] = shutil.which("ffprobe") or "ffprobe"
    proc = subprocess.run([sys.executable, "-m", "videodrop", "prober"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 78
    assert "prlimit" in proc.stderr and "util-linux" in proc.stderr


def test_what_a_writer_puts_in_the_metadata_is_bounded(tmp_path: Path) -> None:
    """A 100,000-character title tag and 2,000 chapters (ffmpeg writes what it is given):
    the record keeps a bounded text and list of each, and says so."""
    meta = tmp_path / "meta.txt"
    chapters = "".join(f"[CHAPTER]\nTIMEBASE=1/1000\nSTART={i}\nEND={i + 1}\ntitle=c{i}\n"
                       for i in range(2000))
    meta.write_text(f";FFMETADATA1\ntitle={'x' * 100_000}\n{chapters}")
    clip = tmp_path / "tagged.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc2=size=96x64:rate=25:duration=2", "-i", str(meta),
                    "-map_metadata", "1", "-map_chapters", "1", "-c:v", "libx264", "-preset",
                    "ultrafast", str(clip)], check=True, capture_output=True, timeout=120)
    result = probe_file(clip, version="test")
    assert result.ok, result.error
    got = result.metadata
    assert len(got["title"]) == MAX_TEXT and got["title"].endswith("…")
    assert len(got["chapters"]) == MAX_ITEMS
    assert any(w.startswith("metadata cut") and "chapters (2000 entries)" in w
               for w in got["warnings"]), got["warnings"]
    assert result.raw is not None and len(result.raw["chapters"]) == MAX_ITEMS
    assert len(json.dumps(got)) < 200_000 and len(json.dumps(result.raw)) < 400_000
