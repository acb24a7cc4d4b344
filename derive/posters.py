"""The poster children of one derive process (derive/poster_child.py is the child):
started when first needed and kept between jobs, so that a poster costs its decoding
only, not the start of an ffmpeg per pass (each start is tens of milliseconds of CPU).

Each child runs as every child reading untrusted media (videodrop/children.py): an
argument list, hard limits (address space VIDEODROP_CHILD_MEMORY, open files, no file
written, CPU time :data:`CPU_SECONDS` over its life, retired at half of it), its own
session, killed with the thread that started it. A request has a deadline (the derive
role's :class:`~derive.ffmpeg.Deadline` for a pass that may decode every frame of
``poster.FULL_SECONDS`` s): past it the child is killed (its whole group) and the next
request starts a fresh one. One that died between two requests is replaced and the
request sent once more. At most :data:`IDLE_KEPT` idle children are kept.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from derive.ffmpeg import Deadline, Failed, FFmpeg, FullDecode, Skipped
from derive.source import Source, as_source
from videodrop.derivatives import Reason
from videodrop.kept_child import KeptChild, KeptChildren, Stopped, limited_argv

__all__ = ["CPU_SECONDS", "IDLE_KEPT", "Posters"]

#: CPU seconds a child may use in its life (RLIMIT_CPU); retired at half of it.
CPU_SECONDS = 3600
#: Idle children kept by one derive process (one per job running at once is enough).
IDLE_KEPT = 2
_ROOT = Path(__file__).resolve().parents[1]  # where ``python -m derive.poster_child`` runs
_SKIPS = {Reason.NO_VIDEO_FRAMES, Reason.NO_PICTURE}


class Posters:
    """The poster children of this process, each ``memory`` bytes of address space at
    most, each request within ``deadline`` (:meth:`Deadline.of` a pass decoding
    ``seconds`` of media). Thread-safe: each call has a child to itself. ``cpu``: the CPU
    seconds the last request took in its child (for ``make bench``)."""

    def __init__(self, memory: int, deadline: Deadline) -> None:
        self.memory = memory
        self.deadline = deadline
        self.cpu = 0.0
        self._children: KeptChildren[KeptChild] | None = None

    @property
    def children(self) -> KeptChildren[KeptChild]:
        if self._children is None:  # prlimit looked for at the first poster
            argv = limited_argv(self.memory, CPU_SECONDS, "derive.poster_child")
            self._children = KeptChildren(
                lambda: KeptChild(argv, _ROOT, {"PYTHONPATH": str(_ROOT)}), IDLE_KEPT,
                CPU_SECONDS)
        return self._children

    @classmethod
    def like(cls, ffmpeg: FFmpeg) -> Posters:
        """Children with the limits and deadlines of ``ffmpeg``'s."""
        return cls(ffmpeg.runner.memory, ffmpeg.deadline)

    def pick(self, path: Path | Source, duration: float | None, *, seen: float | None = None,
             seconds: float | None = None) -> tuple[dict[str, Any], bytes]:
        """(the poster's facts, its JPEG) of ``path`` (derive/poster_child.py's protocol;
        ``seen``: a keyframe's time, s, to draw if it decodes). ``seconds``: media seconds
        the request may decode every frame of (its deadline grows with them).
        :class:`~derive.ffmpeg.Skipped` or :class:`~derive.ffmpeg.Failed` with a reason."""
        source = as_source(path)
        timeout = self.timeout(path, seconds)
        line = json.dumps({"url": source.url(), "protocols": source.protocols,
                           "duration": duration, "seen": seen}).encode() + b"\n"

        def send(child: KeptChild) -> tuple[dict[str, Any], bytes, float]:
            before = child.cpu
            head, data = child.exchange(line, time.monotonic() + timeout)
            return head, data, child.cpu - before

        try:
            head, data, self.cpu = self.children.ask(send)
        except TimeoutError:
            raise Failed(Reason.TIMEOUT,
                         f"the poster's child timed out after {timeout:g} s") from None
        except Stopped as exc:
            if exc.by_limit:
                raise Failed(Reason.RESOURCE_LIMIT, "the poster's child was stopped by a"
                             " resource limit (VIDEODROP_CHILD_MEMORY or CPU time)") from None
            raise Failed(Reason.FFMPEG_FAILED,
                         f"the poster's child exited with {exc.status}") from None
        if not head.get("ok"):
            reason = Reason(str(head.get("reason", Reason.FFMPEG_FAILED)))
            kind = Skipped if reason in _SKIPS else Failed
            raise kind(reason, str(head.get("sentence", "no poster")))
        return head, data

    def timeout(self, path: Path | Source, seconds: float | None) -> float:
        """A request's deadline (s): a pass decoding every frame of ``seconds`` of
        ``path``'s media (:meth:`Deadline.of`)."""
        return self.deadline.of(FullDecode(path, seconds))

    def pids(self) -> list[int]:
        """The idle children's process ids (tests, operators)."""
        return self._children.pids() if self._children is not None else []

    def close(self) -> None:
        """Kill the idle children."""
        if self._children is not None:
            self._children.close()
