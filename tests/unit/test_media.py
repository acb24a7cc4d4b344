import os
import re

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
    assert media.has_extension(name, formats.EXTENSIONS) is ok
    assert media.has_extension(name, frozenset({"*"}))


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
    # a name that is only an extension keeps it: the fallback stands in for the stem
    (".mp4", "video.mp4"), ("..mp4", "video.mp4"), (" .MKV", "video.MKV"),
    ("C:\\x\\.mp4", "video.mp4"), ("x..mp4", "x..mp4"), ("a.mp4.", "a.mp4"),
])
def test_safe_filename(raw, safe):
    assert media.safe_filename(raw) == safe


@pytest.mark.parametrize(("filename", "name"), [
    (".mp4", "video"), ("front_door-2024_05_01.mp4", "front door 2024 05 01"),
    ("README", "README"), ("a.b.mkv", "a b"),
    ("bad\xff\x01ctl.mp4", "bad\xff ctl"), ("two\nlines.mp4", "two lines"),
])
def test_name_from_filename(filename, name):
    assert media.name_from_filename(filename) == name


def test_long_names_keep_their_extension():
    name = media.safe_filename("x" * 400 + ".mp4")
    assert name.endswith(".mp4") and len(name.encode()) <= 200


def test_bounded_cuts_between_characters_and_keeps_the_extension():
    emoji = "\N{FILM FRAMES}" * 1020 + ".mp4"  # 4 bytes each in UTF-8
    cut = media.bounded(emoji)
    assert cut == "\N{FILM FRAMES}" * 62 + ".mp4" and len(cut.encode()) == 252
    assert media.bounded("short.mp4") == "short.mp4"
    assert media.bounded("y" * 300) == "y" * 255  # no extension: just cut
    assert media.bounded("z" * 300 + ".averyveryverylongext").startswith("z" * 200)


@pytest.mark.parametrize(("sent", "name"), [
    ("C:\\Users\\bob\\Videos\\holiday.mp4", "holiday.mp4"),
    ("/home/bob/Videos/holiday.mp4", "holiday.mp4"),
    ("holiday.mp4", "holiday.mp4"), ("..\\..\\holiday.mp4", "holiday.mp4"),
])
def test_client_paths_lose_their_folders(sent, name):
    assert media.client_basename(sent) == name


@pytest.mark.parametrize(("raw", "text"), [
    (b"Caf\xe9.mp4", "Café.mp4"),  # Latin-1 / Windows-1252, as vsftpd and Samba write it
    ("Café.mp4".encode(), "Café.mp4"),  # UTF-8 stays UTF-8
    (b"\x80 \x9f.mp4", "€ Ÿ.mp4"),  # Windows-1252's own letters in 0x80-0x9F
    (b"\x81\x8d\x8f\x90\x9d", "\x81\x8d\x8f\x90\x9d"),  # unassigned: Latin-1 (WHATWG)
    (bytes(range(1, 256)).replace(b"/", b""), None),  # every byte a name can hold
])
def test_every_byte_sequence_decodes(raw, text):
    shown = media.decode_name(raw)
    shown.encode("utf-8")  # valid text, for PostgreSQL and JSON
    if text is not None:
        assert shown == text
    assert media.display(os.fsdecode(raw)) == shown


def test_source_folders_never_collide():
    ids = ["a", "a.", "a..", "a.b", "a-b", "a_b", "A", "cam 1", "cam_1", "ünï", "a%2E", "x" * 128,
           "x" * 128 + ".", "." * 200, "a" + "." * 127, "Cam1", "cam1", "CAM1", "ä", "Ä",
           "%41", "a%2e", "A.", "B" * 128]
    folders = [media.source_folder(i) for i in ids]
    assert len(set(folders)) == len(ids), folders
    # nor on a case-insensitive store (vfat, SMB): no two differ by case alone
    assert len({f.casefold() for f in folders}) == len(ids), folders
    assert media.source_folder("A") == "%41" and media.source_folder("Cam1") == "%43am1"
    assert media.source_folder("a") == "a" and media.source_folder("file_20240501_x") == (
        "file_20240501_x")  # plain ids keep the folder they always had
    assert media.source_folder("a.") == "a%2E" and media.source_folder("a..") == "a%2E%2E"
    for folder in folders:  # one plain ASCII name each
        assert re.fullmatch(r"[A-Za-z0-9_.%~-]{1,200}", folder) and folder not in {".", ".."}


def test_stored_path_and_content_type():
    assert media.stored_path("file_001", "security.mp4") == "videos/file_001/security.mp4"
    assert formats.content_type("mkv", "x.mp4") == "video/x-matroska"
    assert formats.content_type(None, "x.webm") == "video/webm"
    assert formats.content_type(None, "x.bin") == "application/octet-stream"
    assert formats.content_type("mpegts", "x.bin") == "video/mp2t"  # a demuxer of one
    assert formats.content_type(None, "x.m2ts") == "video/mp2t"
    assert formats.content_type(None, "x.3gp") == "video/3gpp"
    assert media.name_from_filename("front_door-2024.mp4") == "front door 2024"
    # dates, times and versions stay readable: a single - or . between digits is kept
    assert media.name_from_filename("Front door 2026-11-30.mp4") == "Front door 2026-11-30"
    assert media.name_from_filename("cam_2026.11.30_12.30.mov") == "cam 2026.11.30 12.30"
    assert media.name_from_filename("front_door-2024_05_01.mp4") == "front door 2024 05 01"
    assert media.name_from_filename("a--1--2.mp4") == "a 1 2"
    assert media.name_from_filename("-2026-.mp4") == "2026"
