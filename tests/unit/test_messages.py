import base64
import json
import os

import pytest

from videodrop.messages import BadMessage, InboxFile, ProbeVideo, decode, encode


def test_round_trip():
    for msg in (InboxFile("cam1/a.mp4", 1, 2, 3, 4, 5), ProbeVideo(7), ProbeVideo(8, force=True)):
        assert decode(encode(msg)) == msg


def test_a_name_that_is_not_utf8_travels_losslessly():
    raw = b"cam\xe91/Caf\xe9.mp4"  # Latin-1 bytes in a folder and a file name
    msg = InboxFile(os.fsdecode(raw), 1, 2, 3, 4, 5)
    body = encode(msg)
    data = json.loads(body)  # strict UTF-8 JSON, readable by anyone
    assert data["path"] == "camé1/Café.mp4"
    assert base64.b64decode(data["path_b64"]) == raw
    back = decode(body)
    assert back == msg and os.fsencode(back.path) == raw


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
    b'{"v": 1, "kind": "inbox", "path": "a.mp4", "path_b64": "Li4vYQ==", "dev": 1, "ino": 1,'
    b' "size": 1, "mtime_ns": 1, "ctime_ns": 1}',  # ../a
    b'{"v": 1, "kind": "inbox", "path": "a.mp4", "path_b64": "YQBi", "dev": 1, "ino": 1,'
    b' "size": 1, "mtime_ns": 1, "ctime_ns": 1}',  # a NUL
    b'{"v": 1, "kind": "inbox", "path": "a.mp4", "path_b64": "not base64!", "dev": 1,'
    b' "ino": 1, "size": 1, "mtime_ns": 1, "ctime_ns": 1}',
])
def test_bad_messages_are_refused(body):
    with pytest.raises(BadMessage):
        decode(body)


def test_the_inbox_stamp_travels_and_is_not_part_of_the_key():
    from videodrop.messages import InboxFile, decode, encode

    key = InboxFile("cam/a.mp4", 41, 7, 100, 5, 6)
    sent = key.from_inbox("ab" * 16, 41)
    back = decode(encode(sent))
    assert (back.inbox, back.inbox_dev) == ("ab" * 16, 41)
    assert back == key and hash(back) == hash(key)  # the same claim key
    assert "local_dev" not in encode(sent.seen_from(52)).decode()
    assert "inbox_dev" not in encode(key).decode()  # unstamped: the earlier wire format
    assert sent.seen_from(52).stat_dev == 52 and sent.seen_from(41).stat_dev == 41
    assert replace_dev(sent, 40).seen_from(52).stat_dev == 40  # a mount inside the inbox
    assert sent.foreign_to("cd" * 16) and sent.foreign_to("") and not key.foreign_to("")


def replace_dev(msg, dev):
    from dataclasses import replace

    return replace(msg, dev=dev)


def test_the_inbox_identity_is_never_a_file_to_take(tmp_path):
    """Whatever VIDEODROP_IGNORE_PATTERNS says (here: nothing), the identity file and
    its temporary names are passed over like the ingest's lock."""
    from videodrop import inboxid
    from videodrop.inboxpolicy import InboxPolicy

    inboxid.ensure(tmp_path)
    policy = InboxPolicy((), frozenset({"mp4"}), None)
    assert [p.name for p in tmp_path.iterdir()] == [inboxid.ID_FILE]
    assert policy.ignored(inboxid.ID_FILE) and policy.ignored(f"{inboxid.ID_FILE}.ab12.tmp")
    assert not policy.ignored("cam.mp4")
