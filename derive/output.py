"""Where a job writes, and how a derivative becomes visible (:func:`for_store` picks one):

- **File store** (:class:`FolderOutput`): a fresh temporary folder beside the video's
  derivative files (``MEDIA_ROOT/derivatives/<source_id>/.tmp-*``, same file system), whose
  files are renamed into place only when the whole derivative is made (over the previous
  version of a remade one, which is served until then). A job that dies leaves its
  temporary folder, removed by the next job of the video.
- **Object store** (:class:`StoreOutput`, s3): the files are made in this process's local
  scratch folder (derive/scratch.py: cleaned at start, each job's folder removed after
  it) and put into the store under the same keys (``derivatives/<source_id>/<name>``,
  videodrop/derivatives.py), each put verified (size and SHA-256) and atomic (the store
  shows an object whole or not at all); then the stale objects of the kind go. A job that
  dies leaves at most an unfinished multipart upload, invisible to readers, aborted by
  the next job of the video (:meth:`StoreOutput.sweep`).

Either way a reader never sees half a file, and a remade derivative is served until its
new version replaces it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from derive.scratch import ScratchRoot
from videodrop import derivatives, media
from videodrop.packets import FILE_NAME as PACKETS_FILE
from videodrop.storage import FileStore, MediaStore

TEMP_PREFIX = ".tmp-"
#: The start of every file name of a kind in the video's folder.
STALE = {"packets": PACKETS_FILE, "poster": "poster", "storyboard": "storyboard-",
         "scenes": "scenes-", "rendition": "rendition.", "hevc": "hevc."}
#: The temporary folders of renditions (file store): swept only under the rendition lock.
RENDITION_TEMP = f"{TEMP_PREFIX}rendition-"


@contextlib.contextmanager
def scratch(media_root: Path, source_id: str, kind: str) -> Iterator[Path]:
    """A new empty temporary folder for one derivative; removed after the block."""
    folder = derivatives.folder_of(media_root, source_id)
    folder.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{kind}-", dir=folder))
    try:
        yield temp
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def publish(media_root: Path, source_id: str, made: dict[Path, str], stale: str) -> list[str]:
    """Rename each file of ``made`` (temporary path → final name) into the video's folder,
    then remove the video's other files whose name starts with ``stale`` (what an earlier
    run made and this one did not). Returns the files' paths relative to ``media_root``."""
    folder = derivatives.folder_of(media_root, source_id)
    names = set(made.values())
    for temp, name in made.items():
        os.replace(temp, folder / name)
    media.fsync_dir(folder)
    withdraw(media_root, source_id, stale, keep=names)
    return [str((folder / n).relative_to(media_root)) for n in sorted(names)]


def withdraw(media_root: Path, source_id: str, stale: str, *,
             keep: frozenset[str] | set[str] = frozenset()) -> None:
    """Remove the video's files whose name starts with ``stale`` but those named in
    ``keep`` (what an earlier run made and this one did not; a kind whose remake failed
    or was skipped, whose record no longer names them)."""
    folder = derivatives.folder_of(media_root, source_id)
    for old in folder.glob(f"{stale}*"):
        if old.name not in keep and old.is_file():
            with contextlib.suppress(FileNotFoundError):
                old.unlink()


def sweep(media_root: Path, source_id: str, *, only: str = TEMP_PREFIX,
          keep: str | None = None) -> None:
    """Temporary folders a dead job left in the video's folder: those whose name starts
    with ``only`` but not with ``keep`` (we hold the lock of the jobs that make them)."""
    folder = derivatives.folder_of(media_root, source_id)
    for temp in folder.glob(f"{only}*"):
        if keep is None or not temp.name.startswith(keep):
            shutil.rmtree(temp, ignore_errors=True)


class Output:
    """Where the jobs of one derive process make their files and publish them."""

    def scratch(self, source_id: str, kind: str) -> contextlib.AbstractContextManager[Path]:
        raise NotImplementedError

    def publish(self, source_id: str, made: dict[Path, str], stale: str) -> list[str]:
        """Make each file of ``made`` (local path → name) visible under the video's
        derivative folder, then withdraw what starts with ``stale`` and was not made;
        the keys published, sorted."""
        raise NotImplementedError

    def withdraw(self, source_id: str, stale: str) -> None:
        """Remove the video's derivative files whose name starts with ``stale``."""
        raise NotImplementedError

    def sweep(self, source_id: str, *, rendition: bool) -> None:
        """Remove what dead jobs left for the video: of its rendition (``rendition``, under
        the rendition lock) or of every other kind (under the derive lock)."""
        raise NotImplementedError

    def remove_all(self, source_id: str) -> None:
        """Remove every derivative of the video (it was deleted or expired)."""
        raise NotImplementedError


class FolderOutput(Output):
    """The file store's: temporary folders and renames in the store's own folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def scratch(self, source_id: str, kind: str) -> contextlib.AbstractContextManager[Path]:
        return scratch(self.root, source_id, kind)

    def publish(self, source_id: str, made: dict[Path, str], stale: str) -> list[str]:
        return publish(self.root, source_id, made, stale)

    def withdraw(self, source_id: str, stale: str) -> None:
        withdraw(self.root, source_id, stale)

    def sweep(self, source_id: str, *, rendition: bool) -> None:
        if rendition:
            sweep(self.root, source_id, only=RENDITION_TEMP)
        else:
            sweep(self.root, source_id, keep=RENDITION_TEMP)

    def remove_all(self, source_id: str) -> None:
        derivatives.remove_all(self.root, source_id)


class StoreOutput(Output):
    """An object store's: local scratch folders under ``scratch_root``, verified puts."""

    def __init__(self, store: MediaStore, scratch_root: ScratchRoot) -> None:
        self.store = store
        self.scratch_root = scratch_root

    def scratch(self, source_id: str, kind: str) -> contextlib.AbstractContextManager[Path]:
        return self.scratch_root.job(f"{kind}-{source_id}-")

    def publish(self, source_id: str, made: dict[Path, str], stale: str) -> list[str]:
        prefix = derivatives.key_prefix(source_id)
        for path, name in made.items():
            with path.open("rb") as fh:
                digest = hashlib.file_digest(fh, "sha256").hexdigest()
            self.store.put_file(prefix + name, path, size=path.stat().st_size, sha256=digest)
        self._withdraw(source_id, stale, keep=set(made.values()))
        return sorted(prefix + name for name in set(made.values()))

    def withdraw(self, source_id: str, stale: str) -> None:
        self._withdraw(source_id, stale, keep=set())

    def _withdraw(self, source_id: str, stale: str, keep: set[str]) -> None:
        prefix = derivatives.key_prefix(source_id)
        for info in list(self.store.list_objects(prefix + stale)):
            name = info.key.removeprefix(prefix)
            if name not in keep and "/" not in name:
                self.store.delete(info.key)

    def sweep(self, source_id: str, *, rendition: bool) -> None:
        prefix = derivatives.key_prefix(source_id)
        for kind, stale in STALE.items():  # we hold the lock: an unfinished put is a dead job's
            if (kind == "rendition") == rendition:
                self.store.abort_stale_uploads(0.0, prefix + stale)

    def remove_all(self, source_id: str) -> None:
        self.store.delete_prefix(derivatives.key_prefix(source_id))


def for_store(store: MediaStore, scratch_root: ScratchRoot | None = None) -> Output:
    """The output of ``store``'s derive process: the file store's folder, or local scratch
    folders under ``scratch_root`` (default: a new one for this process) and puts."""
    if isinstance(store, FileStore):
        return FolderOutput(store.root.resolve())
    return StoreOutput(store, scratch_root if scratch_root is not None else ScratchRoot())
