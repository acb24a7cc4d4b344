"""``GET /api/inbox`` (admin): what is in the watch folder right now — files still being
written or settling, waiting for the prober, or refused — so an operator (and the library
page) can see an NVR recording in progress.

Watch-folder files get their catalog row only once they are finished (DESIGN.md: they
start at `processing`); a row for a half-written file would need a second identity that
changes with every write, and a stale one whenever a writer gives up. Listing the folder
itself shows the same thing with nothing to reconcile."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path
from typing import Any

import falcon

from api.auth import require_admin
from videodrop import media
from videodrop.settings import Settings

MAX_ENTRIES = 1000


def list_inbox(inbox: Path, ignore: tuple[str, ...], settle_seconds: float,
               now: float | None = None, limit: int = MAX_ENTRIES) -> dict[str, Any]:
    now = time.time() if now is None else now
    files: list[dict[str, Any]] = []
    total = 0
    stack = [inbox]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError:
            continue
        for entry in entries:
            rel = Path(entry.path).relative_to(inbox).as_posix()
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                if not media.is_ignored(entry.name, ignore):
                    stack.append(Path(entry.path))
                continue
            total += 1
            if len(files) >= limit:
                continue
            quiet = now - st.st_mtime
            if not stat.S_ISREG(st.st_mode):
                state = "refused"
            elif media.is_ignored(entry.name, ignore):
                state = "temporary"  # a .part / .filepart / rsync temporary: renamed when done
            elif quiet < settle_seconds:
                state = "arriving"
            else:
                state = "queued"
            files.append({"path": rel, "size": st.st_size, "state": state,
                          "modified_seconds_ago": round(max(0.0, quiet), 1)})
    files.sort(key=lambda f: f["modified_seconds_ago"])
    return {"files": files, "total": total}


class Inbox:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_admin(req, self.settings.admin_token)
        resp.media = list_inbox(self.settings.inbox, self.settings.ignore_patterns,
                                self.settings.settle_seconds)
