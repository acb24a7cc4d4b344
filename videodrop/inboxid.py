"""Which inbox a watch-folder message comes from, and how this host sees it.

A watch-folder message (videodrop/messages.py ``InboxFile``) names a path inside the inbox
of the ingest that published it. Two facts make it usable on another host:

* the inbox's **identity**: a random name the ingest writes once into the inbox
  (:data:`ID_FILE`, a hidden name the ingest passes over) before its first message. Hosts
  that mount one shared inbox read the same identity; hosts with inboxes of their own have
  different ones, so a prober can tell a message it cannot serve (another host's inbox
  behind the same ``VIDEODROP_AMQP_PREFIX``: a configuration error, docs/several-hosts.md)
  from a stale one;
* the inbox folder's **device number** as the ingest saw it (``st_dev``): a device number
  is the host's own (every NFS or SMB client numbers its mounts itself), so a prober on
  another host compares the file's device with its own view of the inbox instead.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from videodrop.inboxpolicy import INBOX_ID

#: The identity's file in the inbox root: 32 lower-case hex digits and a newline (its
#: temporary names start with it too: the inbox policy passes over both).
ID_FILE = INBOX_ID
_ID_LENGTH = 32


class InboxIdError(OSError):
    """The identity file cannot be read or written (with the reason)."""


@dataclass(frozen=True)
class InboxIdentity:
    """``id``: the inbox's identity (:data:`ID_FILE`; empty when it has none yet);
    ``dev``: the inbox folder's device number on this host."""

    id: str
    dev: int


def _read(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InboxIdError(exc.errno, f"cannot read {path}: {exc.strerror}") from exc
    if len(text) != _ID_LENGTH or any(c not in "0123456789abcdef" for c in text):
        raise InboxIdError(errno.EINVAL, f"{path} does not hold an inbox identity "
                           f"({_ID_LENGTH} hex digits): remove it and restart the ingest")
    return text


def ensure(inbox: Path) -> InboxIdentity:
    """The identity of ``inbox``, written first when it has none (the ingest, at start).
    Two ingests starting at once on one shared inbox agree: the file appears whole under
    its name (``link`` of a written temporary file) and the loser reads the winner's.
    :class:`InboxIdError` when the inbox cannot hold it."""
    path = inbox / ID_FILE
    found = _read(path)
    if found is None:
        tmp = inbox / f"{ID_FILE}.{secrets.token_hex(4)}.tmp"
        try:
            tmp.write_text(secrets.token_hex(_ID_LENGTH // 2) + "\n", encoding="ascii")
            with contextlib.suppress(FileExistsError):  # another ingest's, read below
                os.link(tmp, path)
        except OSError as exc:
            raise InboxIdError(exc.errno, f"cannot write {path}: {exc.strerror}") from exc
        finally:
            tmp.unlink(missing_ok=True)
        found = _read(path)
        if found is None:
            raise InboxIdError(errno.ENOENT, f"{path} vanished as it was written")
    return InboxIdentity(found, os.stat(inbox).st_dev)


def read(inbox: Path) -> InboxIdentity:
    """The identity of ``inbox`` as it is (the prober: it never writes one); ``id`` empty
    when no ingest wrote one there. :class:`InboxIdError` when it cannot be read."""
    try:
        dev = os.stat(inbox).st_dev
    except OSError as exc:
        raise InboxIdError(exc.errno, f"cannot look at the inbox {inbox}: {exc.strerror}"
                           ) from exc
    return InboxIdentity(_read(inbox / ID_FILE) or "", dev)
