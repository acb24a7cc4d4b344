"""What plays, not what the header or the packet listing alone suggests: the duration of a
variable-rate file with a gap, files whose video does not decode, single frames, cut files'
frame counts, things that are not media at all, and a ready video whose file vanished.

References are independent of the prober: ffprobe's own packet listing, ``ffprobe
-count_frames`` (what decodes), ``ffmpeg -f null``, and the generator's parameters.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from fractions import Fraction
from pathlib import Path

import pika
import pytest

from prober.probe import probe_file
from tests.harness import rows, wait_for
from videodrop.errorcodes import ErrorCode
from videodrop.messages import ProbeVideo, encode

X264 = ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "ultrafast"]


def ffmpeg(*args: str) -> None:
    found = shutil.which("ffmpeg")
    if not found:
        pytest.fail("ffmpeg is missing: apt-get install ffmpeg")
    subprocess.run([found, "-v", "error", "-y", *args], check=True, timeout=120)


def ffprobe(path: Path, *args: str) -> str:
    return subprocess.run(["ffprobe", "-v", "error", *args, f"file:{path}"],
                          capture_output=True, text=True, timeout=120).stdout


def decodable(path: Path) -> int:
    """Frames of the first video stream that ``ffprobe -count_frames`` decodes (0: none)."""
    out = ffprobe(path, "-count_frames", "-select_streams", "v:0", "-show_entries",
                  "stream=nb_read_frames", "-of", "csv=p=0").split()
    return int(out[0].split(",")[0]) if out and out[0].split(",")[0].isdigit() else 0


def stream_span(path: Path) -> float:
    """ffprobe's own listing: last pts + that packet's duration - first pts, seconds."""
    base = Fraction(ffprobe(path, "-select_streams", "v:0", "-show_entries",
                            "stream=time_base", "-of", "csv=p=0").strip())
    packets = [line.split(",") for line in ffprobe(
        path, "-select_streams", "v:0", "-show_entries", "packet=pts,duration", "-of",
        "csv=p=0").split()]
    stamps = [(int(pts), int(dur)) for pts, dur in packets]
    last = max(stamps)
    return float((last[0] + last[1] - min(p for p, _ in stamps)) * base)


def container_duration(path: Path) -> float:
    return float(ffprobe(path, "-show_entries", "format=duration", "-of", "csv=p=0"))


# --- 1. a variable-rate file with a gap -----------------------------------------------------


def test_a_gap_in_variable_rate_video_is_part_of_its_duration(tmp_path: Path) -> None:
    gap = tmp_path / "gap.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=10:duration=61", "-vf",
           r"select='lt(n\,3)+eq(n\,600)'", "-fps_mode", "vfr", "-c:v", "libx264",
           "-pix_fmt", "yuv420p", str(gap))  # (B-frames: no packet's duration spans the gap)
    result = probe_file(gap, timeout=60)
    assert result.ok, result.error
    span = stream_span(gap)
    assert span == pytest.approx(60.1, abs=0.01)  # frames at 0, .1, .2 and 60 s, 0.1 s each
    assert result.metadata["duration"] == pytest.approx(span, abs=0.01)
    assert result.metadata["nb_frames"] == decodable(gap) == 4


# --- 2. video that does not decode ----------------------------------------------------------


def test_video_that_does_not_decode_is_not_ready(tmp_path: Path) -> None:
    # one keyframe (with the only SPS/PPS) at the start: the second half of the TS has none
    ts = tmp_path / "whole.ts"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=25:duration=6", *X264,
           "-g", "1000", str(ts))
    piece = tmp_path / "piece.ts"
    data = ts.read_bytes()
    start = (len(data) // 2) // 188 * 188
    piece.write_bytes(data[start:])
    # an MP4 whose sample table claims 10 million 1000-byte samples: garbage packets
    mp4 = tmp_path / "whole.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=25:duration=4", *X264,
           "-movflags", "faststart", str(mp4))
    patched = bytearray(mp4.read_bytes())
    stsz = patched.index(b"stsz")
    struct.pack_into(">II", patched, stsz + 8, 1000, 10_000_000)
    lying = tmp_path / "lying-index.mp4"
    lying.write_bytes(bytes(patched))
    # (the lying index also points past the end of the file: the demuxer says it is cut)
    for path, codes in ((piece, {ErrorCode.NO_VIDEO_FRAMES}),
                        (lying, {ErrorCode.NO_VIDEO_FRAMES, ErrorCode.TRUNCATED})):
        assert decodable(path) == 0, path  # the reference: nothing decodes
        result = probe_file(path, timeout=60)
        assert not result.ok and result.code in codes, result
        assert result.error is not None and "decodes" in result.error
    assert probe_file(ts, timeout=60).ok and probe_file(mp4, timeout=60).ok


def test_a_faststart_mp4_cut_to_a_few_percent_is_truncated(tmp_path: Path) -> None:
    whole = tmp_path / "whole.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=10", "-c:v",
           "libx264", "-pix_fmt", "yuv420p", "-movflags", "faststart", str(whole))
    data = whole.read_bytes()
    cut = tmp_path / "three-percent.mp4"
    cut.write_bytes(data[: len(data) * 3 // 100])
    assert decodable(cut) < 2  # at most one picture of a ten-second recording
    result = probe_file(cut, timeout=60)
    assert (result.ok, result.code) == (False, ErrorCode.TRUNCATED), result
    assert result.error is not None and result.error.startswith("truncated: header claims 10 s")


# --- 3. single frames, and the rate of a cut ASF --------------------------------------------


@pytest.mark.parametrize(("name", "codec"), [("one.flv", "flv1"), ("one.wmv", "wmv2")])
def test_a_single_frame_is_ready_with_its_duration(tmp_path: Path, name: str,
                                                   codec: str) -> None:
    path = tmp_path / name
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=25", "-frames:v", "1",
           "-c:v", codec, str(path))
    result = probe_file(path, timeout=60)
    assert result.ok, result.error
    meta = result.metadata
    assert meta["nb_frames"] == decodable(path) == 1
    assert meta["duration"] == pytest.approx(container_duration(path))  # 0.04 s
    assert meta["fps"] == pytest.approx(1 / container_duration(path))


def test_a_cut_wmv_reports_its_frame_rate_not_its_time_base(tmp_path: Path) -> None:
    whole = tmp_path / "whole.wmv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=10",
           "-c:v", "wmv2", str(whole))
    data = whole.read_bytes()
    for share in (2, 5, 30):
        cut = tmp_path / f"cut{share}.wmv"
        cut.write_bytes(data[: len(data) * share // 100])
        result = probe_file(cut, timeout=60)
        assert result.ok, (share, result.error)
        meta = result.metadata
        frames = decodable(cut)
        assert meta["nb_frames"] == frames, share
        if frames == 1:  # one frame and no duration anywhere: no rate either, said so
            assert meta["fps"] is None and meta["duration"] is None
            assert any("duration unknown" in w for w in meta["warnings"])
        else:
            assert meta["fps"] == pytest.approx(25, rel=0.01), share
            assert meta["duration"] == pytest.approx(frames / 25, abs=0.001), share


# --- 4. the cut last frame of a truncated MP4 -----------------------------------------------


def test_the_cut_last_frame_of_a_truncated_mp4_is_not_counted(tmp_path: Path) -> None:
    whole = tmp_path / "whole.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=25:duration=10", *X264,
           "-movflags", "faststart", str(whole))
    data = whole.read_bytes()
    for share in (30, 50, 70):
        cut = tmp_path / f"cut{share}.mp4"
        cut.write_bytes(data[: len(data) * share // 100])
        packets = int(ffprobe(cut, "-count_packets", "-select_streams", "v:0",
                              "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0"))
        frames = decodable(cut)
        assert frames == packets - 1  # the reference: the last packet is cut and fails
        result = probe_file(cut, timeout=60)
        assert result.ok, result.error
        assert result.metadata["nb_frames"] == frames, share


def test_a_fragmented_mp4_cut_inside_its_first_fragment_is_truncated(tmp_path: Path) -> None:
    frag = tmp_path / "frag.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=25:duration=4", *X264,
           "-movflags", "frag_keyframe+empty_moov", str(frag))
    data = frag.read_bytes()
    mdat = data.index(b"mdat") - 4  # the first fragment's media data
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: mdat + 8 + 100])  # 100 bytes of its first frame
    assert decodable(cut) == 0
    result = probe_file(cut, timeout=60)
    assert (result.ok, result.code) == (False, ErrorCode.TRUNCATED), result


# --- 5. no media at all ---------------------------------------------------------------------


def test_text_under_a_media_name_is_not_media(tmp_path: Path) -> None:
    for name in ("notes.jpg", "notes.png", "subs.idx"):
        path = tmp_path / name
        path.write_text("hello, this is plain text and nothing else\n" * 20)
        result = probe_file(path, timeout=60)
        assert (result.ok, result.code) == (False, ErrorCode.NOT_MEDIA), (name, result)
    image = tmp_path / "real.jpg"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=32x32", "-frames:v", "1", str(image))
    result = probe_file(image, timeout=60)
    assert (result.ok, result.code) == (False, ErrorCode.STILL_IMAGE), result


# --- 6. a ready video whose stored file vanished --------------------------------------------


@pytest.mark.parametrize("force", [False, True])
def test_a_ready_video_whose_file_vanished_becomes_failed(system, samples: Path,
                                                         force: bool) -> None:
    shutil.copy(samples / "tiny_av1.mp4", system.inbox / "gone.mp4")
    record = system.wait_record("gone.mp4")
    assert record["status"] == "ready"
    (system.media_root / record["file_info"]["filename"]).unlink()
    [(video_id,)] = rows(system.database_url, "SELECT id FROM videos WHERE source_id = %s",
                         record["source_id"])
    conn = pika.BlockingConnection(pika.URLParameters(system.amqp_url))
    try:
        channel = conn.channel()
        channel.confirm_delivery()
        channel.basic_publish(system.prefix, "probe",
                              encode(ProbeVideo(video_id=video_id, force=force)),
                              pika.BasicProperties(delivery_mode=2))
    finally:
        conn.close()

    def state() -> tuple[str, str | None]:
        [(status, code)] = rows(system.database_url,
                                "SELECT status, error_code FROM videos WHERE id = %s",
                                video_id)
        return status, code

    wait_for(lambda: state()[0] == "failed", timeout=60, what="the row to become failed")
    assert state() == ("failed", ErrorCode.MISSING_FILE.value)


@pytest.mark.parametrize("share", [35, 50, 80])
def test_a_cut_fragmented_mp4_with_b_frames_counts_and_spans_only_what_decodes(
        tmp_path: Path, share: int) -> None:
    """A fragmented recording with B-frames cut mid-fragment: the packets after the cut
    have timestamps later than the last frame that decodes. Frames and duration are what
    decodes (the frames ffprobe decodes, and the span of their timestamps)."""
    whole = tmp_path / "frag.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc2=size=160x120:rate=25:duration=6", "-c:v", "libx264", "-g", "25",
                    "-movflags", "frag_keyframe+empty_moov", str(whole)],
                   check=True, capture_output=True, timeout=120)
    data = whole.read_bytes()
    cut = tmp_path / f"cut{share}.mp4"
    cut.write_bytes(data[: len(data) * share // 100])
    shown = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                            "frame=pts_time", "-of", "csv=p=0", str(cut)],
                           capture_output=True, text=True, timeout=120).stdout.split()
    times = sorted(float(t.strip(",")) for t in shown if t.strip(","))
    result = probe_file(cut, version="test")
    assert result.ok, result.error
    meta = result.metadata
    assert meta["nb_frames"] == len(times)
    assert meta["duration"] == pytest.approx(times[-1] + 1 / 25 - times[0], abs=1e-3)
