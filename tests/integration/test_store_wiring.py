"""Every role keeps media in the store VIDEODROP_STORAGE_URL names (videodrop/storage/),
not in VIDEODROP_MEDIA_ROOT: a file:// store in another folder gets the original (by a
rename: the inbox file's own inode, no copy), the derivatives, serves the download and
the poster, and loses them at delete."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

from tests.harness import System, wait_for


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_a_file_store_in_another_folder_is_used_by_every_role(make_system: Any,
                                                              samples: Path, tmp_path: Path):
    elsewhere = tmp_path / "store"
    system: System = make_system(VIDEODROP_STORAGE_URL=elsewhere.as_uri(),
                                 VIDEODROP_DERIVE="poster,packets")
    system.start()
    system.start_role("derive")
    shutil.copy(samples / "bbb_chapters.mp4", system.inbox / "bbb.mp4")
    dropped = os.stat(system.inbox / "bbb.mp4")
    expected = hashlib.sha256((samples / "bbb_chapters.mp4").read_bytes()).hexdigest()
    record = system.wait_record("bbb.mp4")
    assert record["status"] == "ready"

    [original] = list(elsewhere.glob("videos/*/bbb.mp4"))
    stored = os.stat(original)
    # moved by a rename within the file system, not copied
    assert (stored.st_dev, stored.st_ino) == (dropped.st_dev, dropped.st_ino)
    assert _files(system.media_root) == []  # VIDEODROP_MEDIA_ROOT is not the store

    links = record["api_links"]
    got = system.http.get(links["download_url"], timeout=10)
    assert got.status_code == 200
    assert hashlib.sha256(got.content).hexdigest() == expected
    part = system.http.get(links["stream_url"], headers={"Range": "bytes=100-199"}, timeout=10)
    assert part.status_code == 206
    assert part.content == (samples / "bbb_chapters.mp4").read_bytes()[100:200]

    def both_made() -> dict[str, Any] | None:
        item = system.http.get(links["api_endpoint"], timeout=5).json()
        states = item["derivatives"]
        return item if (states["poster"]["status"], states["packets"]["status"]) == (
            "ready", "ready") else None
    wait_for(both_made, timeout=120, interval=0.3, what="the poster and the packet index")
    poster = system.http.get(links["poster_url"], timeout=10)
    assert poster.status_code == 200
    [made] = list(elsewhere.glob("derivatives/*/poster.jpg"))
    assert made.read_bytes() == poster.content
    # the API reads the packet index the derive role wrote into the same store
    packets = system.http.get(links["packets_url"], timeout=10)
    assert packets.status_code == 200, packets.text
    assert list(elsewhere.glob("derivatives/*/packets.npy"))

    gone = system.http.delete(f"{system.base_url}/api/videos/{record['id']}",
                              headers=system.admin, timeout=10)
    assert gone.status_code == 204
    assert not original.exists()
    assert not made.exists()
    assert _files(system.media_root) == []
