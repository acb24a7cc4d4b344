"""Walking the inbox: which entries are candidate files, which are refused and why."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from videodrop.inboxpolicy import InboxPolicy, Refusal
from videodrop.messages import InboxFile


@dataclass(frozen=True)
class FileState:
    """An inbox file as one ``lstat`` saw it: ``file`` is the message the ingest publishes
    for it once it settles (the claim key: path, inode, size, mtime, ctime), ``nlink``
    (names of the inode) and ``blocks`` (512-byte blocks allocated) what the ingest looks at
    beyond it. Equal states have equal ``file``s; ``nlink`` and ``blocks`` are not compared."""

    file: InboxFile
    nlink: int = field(default=1, compare=False)
    blocks: int = field(default=0, compare=False)

    @classmethod
    def of(cls, path: str, st: os.stat_result) -> FileState:
        """The state of the file at the inbox-relative ``path`` whose ``lstat`` is ``st``."""
        return cls(InboxFile.of(path, st), st.st_nlink, st.st_blocks)

    def unchanged(self, later: FileState) -> bool:
        """``later`` is this file with nothing written to it: same inode, size and mtime,
        and the same ctime unless the link count changed (``ln``, ``cp -al``, a name of
        it removed: that moves the ctime of every name without touching the data). A
        ctime change without a link-count change (a rewrite whose mtime was put back,
        chmod) is a change."""
        before, after = self.file, later.file
        return ((before.dev, before.ino, before.size, before.mtime_ns)
                == (after.dev, after.ino, after.size, after.mtime_ns)
                and (before.ctime_ns == after.ctime_ns or self.nlink != later.nlink))


@dataclass(frozen=True)
class Verdict:
    """``state`` when the entry is a candidate; else ``refusal`` (None: silently passed
    over: gone, a folder, a hidden or temporary name, outside the inbox)."""

    state: FileState | None
    refusal: Refusal | None = None


def relative(inbox: Path, path: Path) -> str | None:
    """Inbox-relative '/'-path, or None when the path is outside the inbox."""
    try:
        rel = path.relative_to(inbox)
    except ValueError:
        return None
    text = rel.as_posix()
    return None if text in {"", "."} or text.startswith("../") else text


def examine(inbox: Path, path: Path, policy: InboxPolicy) -> Verdict:
    """Decide about one entry without opening it (a FIFO must never block us)."""
    rel = relative(inbox, path)
    if rel is None:
        return Verdict(None)
    if any(policy.ignored(part) for part in rel.split("/")):
        return Verdict(None)  # temporary or hidden: the writer will rename it when done
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return Verdict(None)
    except OSError as exc:
        return Verdict(None, Refusal("unreadable", f"cannot stat: {exc.strerror}"))
    if stat.S_ISLNK(st.st_mode):
        target = os.path.realpath(path)
        outside = relative(inbox.resolve(), Path(target)) is None
        return Verdict(None, Refusal("symlink", "symlink pointing outside the inbox"
                                     if outside else "symlink"))
    if stat.S_ISDIR(st.st_mode):
        return Verdict(None)
    if not stat.S_ISREG(st.st_mode):
        kind = "FIFO" if stat.S_ISFIFO(st.st_mode) else (
            "socket" if stat.S_ISSOCK(st.st_mode) else "special file")
        return Verdict(None, Refusal("special_file", f"not a regular file ({kind})"))
    refusal = policy.by_name(path.name)
    return Verdict(None, refusal) if refusal else Verdict(FileState.of(rel, st))


def walk(inbox: Path, *, denied: Callable[[Path], None] | None = None,
         empty: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """Every entry below the inbox that is not a directory, without following links.
    ``denied(folder)`` for each folder that cannot be listed (permissions), ``empty(folder)``
    for each folder listed empty."""
    stack = [inbox]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except PermissionError:
            if denied is not None:
                denied(folder)
            continue
        if not entries and empty is not None:
            empty(folder)
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                    continue
            except OSError:
                continue
            yield Path(entry.path)


def count_dirs(inbox: Path) -> int:
    """Folders in the inbox, the inbox included (each needs an inotify watch)."""
    n = 1
    for _root, dirs, _files in os.walk(inbox):
        n += len(dirs)
    return n
