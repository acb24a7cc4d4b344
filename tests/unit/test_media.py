import pytest

from videodrop import formats, media
from videodrop.settings import DEFAULT_IGNORE


@pytest.mark.parametrize(("name", "ok"), [
    ("a.mp4", True), ("A.MKV", True), ("x.webm", True), ("x.avi", True), ("x.wmv", True),
    ("x.flv", True), ("x.m4v", True), ("x.mov", True), ("x.ts", True), ("x.MTS", True),
    ("x.m2ts", True), ("x.3gp", True), ("x.mp3", False), ("x", False), ("x.mp4.txt", False),
    ("x.xml", False), ("x.h264", False),
])
def test_accepted_by_extension(name, ok):
    assert (formats.by_extension(name) is not None) is ok


@pytest.mark.parametrize(("name", "ignored"), [
    (".hidden.mp4", True), (".clip.mp4.Ab12Cd", True), ("clip.mp4.part", True),
    ("clip.mp4.filepart", True), ("clip.tmp", True), ("clip.mp4.crdownload", True),
    ("clip.mp4~", True), ("clip.mp4", False), ("cam 1 clip.mkv", False),
])
def test_ignored(name, ignored):
    assert media.is_ignored(name, DEFAULT_IGNORE) is ignored


@pytest.mark.parametrize(("raw", "safe"), [
    ("../../etc/passwd", "passwd"), ("a/b\\c.mp4", "c.mp4"), ("", "video"), ("..", "video"),
    ("clip\x00\n.mp4", "clip.mp4"), ("vidéo été.mp4", "vidéo été.mp4"),
    ("a;rm -rf $(x).mp4", "a_rm -rf _(x).mp4"),
])
def test_safe_filename(raw, safe):
    assert media.safe_filename(raw) == safe


def test_long_names_keep_their_extension():
    name = media.safe_filename("x" * 400 + ".mp4")
    assert name.endswith(".mp4") and len(name.encode()) <= 200


def test_stored_path_and_content_type():
    assert media.stored_path("file_001", "security.mp4") == "videos/file_001/security.mp4"
    assert formats.content_type("mkv", "x.mp4") == "video/x-matroska"
    assert formats.content_type(None, "x.webm") == "video/webm"
    assert formats.content_type(None, "x.bin") == "application/octet-stream"
    assert formats.content_type("mpegts", "x.bin") == "video/mp2t"  # a demuxer of one
    assert formats.content_type(None, "x.m2ts") == "video/mp2t"
    assert formats.content_type(None, "x.3gp") == "video/3gpp"
    assert media.name_from_filename("front_door-2024.mp4") == "front door 2024"
