"""The decoding children of one API worker (api/frames/decoder.py is the child): started
when first needed and kept, so that a frame costs its decoding only (no process start, no
probing of the input, which stays open in the child for the next request).

Each child runs as every child reading untrusted media (videodrop/children.py): an
argument list, hard limits (address space VIDEODROP_CHILD_MEMORY, open files, CPU time,
file size: none written by the frames' children, VIDEODROP_CLIP_MAX_BYTES by the clips'),
its own session, killed with the thread that started it, and at a lower CPU priority
(``nice`` :data:`NICENESS`) so that decoding yields the cores to the worker's lookups and
streams. A request has a deadline: past it the child is killed (its
whole group) and the next request starts a fresh one. A child whose CPU time nears its
limit (:data:`CPU_SECONDS`) is retired after its answer; one that died between two
requests is replaced and the request sent once more.

How many children work at once is the caller's slots (VIDEODROP_FRAME_CONCURRENCY; the
clips' pool: VIDEODROP_CLIP_CONCURRENCY):
this pool keeps at most :data:`IDLE_KEPT` idle ones beyond what is in use.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from api.frames.source import Original, as_original, redacted
from videodrop.kept_child import KeptChild, KeptChildren, Stopped, limited_argv

__all__ = ["CPU_SECONDS", "CopyRequest", "DecodeFailed", "Decoders", "Request"]

#: CPU seconds a child may use in its life (RLIMIT_CPU); retired at half of it.
CPU_SECONDS = 3600
#: The children's niceness: the worker's own threads come first on a busy machine.
NICENESS = 10
#: Idle children kept by one worker.
IDLE_KEPT = 4
_ROOT = Path(__file__).resolve().parents[2]  # where ``python -m api.frames.decoder`` runs


class DecodeFailed(Exception):
    """No picture: ``reason`` is ``timeout``, ``resource_limit`` (the child was stopped
    by a limit) or ``decode_failed``; the sentence says more."""

    def __init__(self, reason: str, sentence: str) -> None:
        super().__init__(sentence)
        self.reason = reason


@dataclass(frozen=True)
class Request:
    """One picture (api/frames/decoder.py's protocol): the original (a local file's
    path, or an :class:`~api.frames.source.Original`), ``start``/``seek``/``time`` as
    :class:`~api.frames.timeline.Chosen` gives them (s; ``time`` None: not known, the
    child never drains its decoder), the widest ``width`` (px), ``raw``, the format
    (``jpeg``, ``png``, ``ppm``), and ``ahead``: a later frame of this GOP is asked
    next (the child keeps its decoder going)."""

    source: Path | Original
    start: float
    seek: float
    width: int
    raw: bool
    format: str
    time: float | None = None
    ahead: bool = False

    @property
    def key(self) -> str:
        """What the children keep the input open by: the file's path, the object's key."""
        return as_original(self.source).key

    def line(self, left: float) -> bytes:
        """The request's line, for a request done within ``left`` seconds."""
        return _line(self.source, left, {"start": self.start, "seek": self.seek,
                                         "time": self.time, "ahead": self.ahead,
                                         "width": self.width, "raw": self.raw,
                                         "format": self.format})


@dataclass(frozen=True)
class CopyRequest:
    """One ``copy`` clip written to the file ``out`` (api/frames/remux.py): the original
    and the input options of its ffmpeg command line (seconds; ``seek`` None: from the
    first byte; ``audio_until`` None: no audio)."""

    source: Path | Original
    out: Path
    seek: float | None
    offset: float
    video_until: float | None
    audio_until: float | None

    @property
    def key(self) -> str:
        return as_original(self.source).key

    def line(self, left: float) -> bytes:
        return _line(self.source, left, {
            "op": "copy", "out": str(self.out), "seek": self.seek, "offset": self.offset,
            "video_until": self.video_until, "audio_until": self.audio_until})


def _line(source: Path | Original, left: float, fields: dict[str, Any]) -> bytes:
    """A request's line with ``fields``, for a request done within ``left`` seconds: a
    local file by its path; an object by its key, its stamp, a presigned URL made now and
    when that URL expires and when the request ends (``time.time()``): a child keeps the
    input open while its URL outlives the request, else opens it afresh."""
    original = as_original(source)
    where: dict[str, Any]
    if original.path is not None:
        where = {"path": str(original.path)}
    else:
        url, expires = original.remote_input(2 * left)
        where = {"key": original.key, "stamp": list(original.stamp or ()), "url": url,
                 "expires": expires, "until": time.time() + left}
    return json.dumps({**where, **fields}).encode() + b"\n"


class _Child(KeptChild):
    """One decoding child, and the inputs it last read (it keeps them open), by key."""

    def __init__(self, argv: list[str]) -> None:
        super().__init__(argv, _ROOT, {"PYTHONPATH": str(_ROOT)}, nice=NICENESS)
        self.recent: list[str] = []

    def ask(self, request: Request | CopyRequest, deadline: float
            ) -> tuple[dict[str, Any], bytes]:
        """(the answer's head, its bytes); EOFError when the child is gone,
        TimeoutError at ``deadline`` (``time.monotonic``)."""
        head, data = self.exchange(request.line(max(0.0, deadline - time.monotonic())),
                                   deadline)
        self.recent = [request.key, *(k for k in self.recent if k != request.key)][:4]
        return head, data


class Decoders:
    """The decoding children of this worker, each child ``memory`` bytes of address
    space at most. Thread-safe: each call has a child to itself."""

    def __init__(self, memory: int, file_size: int = 0) -> None:
        self.memory = memory
        self.file_size = file_size
        self._children: KeptChildren[_Child] | None = None
        self._argv: list[str] | None = None

    def argv(self) -> list[str]:
        """A child's command (made once)."""
        if self._argv is None:
            self._argv = limited_argv(self.memory, CPU_SECONDS, "api.frames.decoder",
                                      NICENESS, file_size=self.file_size)
        return self._argv

    @property
    def children(self) -> KeptChildren[_Child]:
        if self._children is None:  # prlimit looked for at the first picture
            argv = self.argv()
            self._children = KeptChildren(lambda: _Child(argv), IDLE_KEPT, CPU_SECONDS)
        return self._children

    def picture(self, request: Request, deadline: float) -> tuple[float, bytes]:
        """(the time of the frame decoded, s; its picture's bytes), by ``deadline``
        (``time.monotonic``); :class:`DecodeFailed`."""
        head, data = self.ask(request, deadline)
        return float(head["time"]), data

    def copy(self, request: CopyRequest, deadline: float) -> None:
        """Write a ``copy`` clip by ``deadline``; :class:`DecodeFailed` (``too_large`` at
        this pool's ``file_size``)."""
        self.ask(request, deadline)

    def ask(self, request: Request | CopyRequest, deadline: float
            ) -> tuple[dict[str, Any], bytes]:
        """A child's answer to ``request``: (its head, its bytes); :class:`DecodeFailed`."""
        try:
            head, data = self.children.ask(lambda child: child.ask(request, deadline),
                                           lambda child: request.key in child.recent)
        except TimeoutError:
            raise DecodeFailed("timeout", "the decoder did not finish in time") from None
        except Stopped as exc:
            if exc.by_limit:
                raise DecodeFailed("resource_limit",
                                   "the decoder was stopped by a resource limit") from None
            raise DecodeFailed("decode_failed",
                               f"the decoder exited with {exc.status}") from None
        if not head.get("ok"):
            raise DecodeFailed(str(head.get("reason", "decode_failed")),
                               redacted(str(head.get("sentence", "no frame"))))
        return head, data

    def pids(self) -> list[int]:
        """The idle children's process ids (tests, operators)."""
        return self.children.pids() if self._children is not None else []

    def close(self) -> None:
        """Kill the idle children."""
        if self._children is not None:
            self._children.close()
