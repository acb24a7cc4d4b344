"""What the frame and clip endpoints owe on an s3 store beyond test_frames.py's and
test_clips.py's oracles (which run on both stores): an original that no longer decodes
answers ``decode_failed`` with no URL in the sentence nor in a log (once per store, file://
and a real S3 server, weed mini; on s3 the originals are read where they lie, nothing of
them under VIDEODROP_MEDIA_ROOT); the decoding child's kept input is opened afresh before
its URL expires; the child's own sentence names no URL."""

from __future__ import annotations

import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from api.frames import decoder
from testbed import frame_corpus
from tests.harness import System, own_system
from tests.integration import test_clips
from videodrop.catalog import Catalog
from videodrop.settings import Settings
from videodrop.storage import from_settings

STORES = ["file", "s3"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, frame_corpus.Oracle]]:
    """The frame corpus (testbed/frame_corpus.py) and ``av.mp4`` (the pattern with a tone,
    AAC): the folder and the oracles by name."""
    folder = tmp_path_factory.mktemp("store-corpus")
    paths = frame_corpus.build(folder)
    paths.append(test_clips.with_audio(folder / "av.mp4"))
    return folder, {p.name: frame_corpus.oracle(p) for p in paths}


@pytest.fixture(scope="module", params=STORES)
def stored(request: pytest.FixtureRequest, tmp_path_factory, database_url, amqp_url,  # noqa: PLR0917 - fixtures
           amqp_prefix, corpus) -> Iterator[tuple[System, dict[str, dict]]]:
    """The system on one store with every file of the corpus ready: name → record."""
    env: dict[str, str] = {}
    if request.param == "s3":
        server = request.getfixturevalue("s3_server")
        bucket = request.getfixturevalue("s3_bucket")
        env = {**server.env(),
               "VIDEODROP_STORAGE_URL": f"s3://{bucket}/frames-{secrets.token_hex(4)}/"}
    folder, _ = corpus
    with own_system(tmp_path_factory.mktemp(f"frames-{request.param}"), database_url,
                    amqp_url, f"{amqp_prefix}_fs_{request.param}", "api", "prober", "ingest",
                    VIDEODROP_DERIVE="", VIDEODROP_FRAME_CONCURRENCY="1",
                    VIDEODROP_FRAMES_MAX="8", VIDEODROP_CLIP_CONCURRENCY="1",
                    VIDEODROP_CLIP_MAX_SECONDS="8",
                    VIDEODROP_CLIP_MAX_BYTES=str(test_clips.MAX_BYTES), **env) as system:
        names = sorted(path.name for path in folder.iterdir())
        for name in names:
            shutil.copy(folder / name, system.inbox / name)
        shutil.copy(folder / "cfr.mp4", system.inbox / "replaced.mp4")
        items = system.wait_done(len(names) + 1, timeout=120)
        assert all(v["status"] == "ready" for v in items), items
        if request.param == "s3":  # the originals are read where they lie
            assert not any(p.is_file() for p in system.media_root.rglob("*"))
        yield system, {v["original_filename"]: v for v in items}


def test_an_unreadable_original_is_a_sentence_without_its_url(stored):
    """The original replaced by bytes no demuxer reads, after it was made ready: 422
    ``decode_failed`` from the frame and the clip endpoints, and no URL (a presigned one
    is a credential) in the answer nor in the API's log."""
    system, records = stored
    record = records["replaced.mp4"]
    garbage = system.root / "garbage.bin"
    garbage.write_bytes(b"\x00not a video any more" * 500)
    with pytest.MonkeyPatch.context() as patch:  # boto3 reads its credentials there
        for name, value in system.env.items():
            if name.startswith("AWS_"):
                patch.setenv(name, value)
        from_settings(Settings.from_env(system.env)).put_file(store_key(system, record),
                                                              garbage)
    access = record["api_links"]["access_token"]
    base = f"{system.base_url}/api/video/{access}"
    for url, params in ((f"{base}/frame/", {"t": "0.5"}),
                        (f"{base}/frames/", {"t": "0.5"}),
                        (f"{base}/clip/", {"start": "0", "end": "1", "mode": "exact"})):
        resp = system.http.get(url, params=params, timeout=60)
        assert resp.status_code == 422, resp.text
        assert resp.json()["error_code"] == "decode_failed", resp.text
        assert "http" not in resp.text and "X-Amz" not in resp.text, resp.text
    logged = "".join(p.read_text(errors="replace") for p in system.logs.rglob("*")
                     if p.is_file())
    assert "X-Amz-Signature" not in logged and "Signature=" not in logged


def store_key(system: System, record: dict) -> str:
    """The original's key in the store (its stored_path)."""
    catalog = Catalog.connect(system.database_url)
    try:
        video = catalog.by_id(int(record["id"]))
    finally:
        catalog.close()
    assert video is not None
    return video.stored_path


def test_a_kept_input_is_opened_afresh_before_its_url_expires(corpus):
    """The decoding child (api/frames/decoder.py) keeps an object's input open by its
    key while the URL it was opened with outlives the request by RENEW_MARGIN; then, or
    when the object changed (its stamp), it opens the request's URL afresh."""
    folder, _ = corpus
    inputs = decoder.Inputs()
    now = time.time()
    wanted = decoder.Wanted("videos/ab/cfr.mp4", f"file:{folder / 'cfr.mp4'}",
                            decoder.OPEN_OPTIONS, expires=now + 900, until=now + 30,
                            stamp=(1, "etag-1"))
    try:
        first = inputs.get(wanted)
        assert inputs.get(replace(wanted, expires=now + 1000)) is first  # kept
        near = replace(wanted, expires=now + 2000, until=now + 900 - decoder.RENEW_MARGIN / 2)
        second = inputs.get(near)
        assert second is not first and second.expires == now + 2000
        assert inputs.get(replace(near, expires=now + 3000)) is second
        changed = inputs.get(replace(near, stamp=(1, "etag-2")))
        assert changed is not second and list(inputs.opened) == [wanted.key]
        frame, shown = decoder.frame_at(inputs, wanted, 0.0, -1e9)
        assert shown == pytest.approx(0.0, abs=1e-6) and frame.width == 320
    finally:
        for key in list(inputs.opened):
            inputs.drop(key)


def test_the_decoding_childs_sentence_names_no_url():
    """A URL the decoding child cannot open (nothing listens there): decode_failed, and
    the sentence (PyAV names the URL it failed on) holds no URL."""
    now = time.time()
    secret = "http://127.0.0.1:9/videos/x.mp4?X-Amz-Signature=0123abcd"
    head, data = decoder.answer(decoder.Inputs(), {
        "key": "videos/x.mp4", "stamp": [1, "etag"], "url": secret, "expires": now + 900,
        "until": now + 30, "start": 0.0, "seek": -1e9, "width": 64, "raw": False,
        "format": "jpeg"})
    assert head["ok"] is False and head["reason"] == "decode_failed" and data == b""
    assert "127.0.0.1" not in head["sentence"] and "Signature" not in head["sentence"], head
    assert "<stored video>" in head["sentence"], head
