import json

import pytest

from videodrop.messages import BadMessage, InboxFile, ProbeVideo, decode, encode


def test_round_trip():
    for msg in (InboxFile("cam1/a.mp4", 1, 2, 3, 4, 5), ProbeVideo(7), ProbeVideo(8, force=True)):
        assert decode(encode(msg)) == msg


def test_encoding_is_versioned_json():
    data = json.loads(encode(InboxFile("a.mp4", 1, 2, 3, 4, 5)))
    assert data == {"v": 1, "kind": "inbox", "path": "a.mp4", "dev": 1, "ino": 2, "size": 3,
                    "mtime_ns": 4, "ctime_ns": 5}


@pytest.mark.parametrize("body", [
    b"", b"not json", b"[]", b'{"v": 2, "kind": "video", "video_id": 1}',
    b'{"v": 1, "kind": "other"}', b'{"v": 1, "kind": "video"}',
    b'{"v": 1, "kind": "inbox", "path": "../etc/passwd", "dev": 1, "ino": 1, "size": 1,'
    b' "mtime_ns": 1}',
    b'{"v": 1, "kind": "inbox", "path": "/abs.mp4", "dev": 1, "ino": 1, "size": 1,'
    b' "mtime_ns": 1}',
    b'{"v": 1, "kind": "video", "video_id": "x"}',
])
def test_bad_messages_are_refused(body):
    with pytest.raises(BadMessage):
        decode(body)
