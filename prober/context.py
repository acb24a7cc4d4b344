"""What every ffprobe run of one probe shares: the file, the binary and runner, one
deadline, and the wall-clock time of each stage (for the probe's summary line)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from prober.ffprobe import FFprobeTimeout, Runner
from prober.inputs import ProbeInput
from prober.metadata import base_metadata

__all__ = ["Context", "Deadline", "Stages"]


class Deadline:
    """One budget of ``seconds`` for every ffprobe run of a probe, from its creation."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def left(self) -> float:
        """Seconds left; :class:`FFprobeTimeout` when none are."""
        left = self._end - time.monotonic()
        if left <= 0:
            raise FFprobeTimeout(self.seconds)
        return left


class Stages:
    """How a probe's stages went, written from any thread: wall-clock milliseconds by stage
    (``"listing"`` → ``listing_ms``; a stage run twice adds up) and notes (``head_guess``:
    how the guessed decode went)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ms: dict[str, float] = {}
        self._notes: dict[str, str] = {}

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """Time the block as ``stage`` (also when it raises)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            spent = (time.perf_counter() - started) * 1000
            with self._lock:
                self._ms[stage] = self._ms.get(stage, 0.0) + spent

    def note(self, name: str, value: str) -> None:
        with self._lock:
            self._notes[name] = value

    def summary(self) -> dict[str, Any]:
        """``{"listing_ms": 41.2, "head_guess_ms": 39.0, "head_guess": "used", …}``, the
        milliseconds rounded to 0.1."""
        with self._lock:
            return {**{f"{k}_ms": round(v, 1) for k, v in self._ms.items()}, **self._notes}


@dataclass(frozen=True)
class Context:
    """One probe: the input ``source`` (``size`` bytes, its first bytes ``head``), ffprobe's
    ``version`` (None: unknown), the ``ffprobe`` binary and the ``runner`` of its children,
    the ``deadline`` they all share, and the ``stages`` timed so far."""

    source: ProbeInput
    size: int
    head: bytes
    version: str | None
    ffprobe: str
    runner: Runner
    deadline: Deadline
    stages: Stages = field(default_factory=Stages)

    def base(self) -> dict[str, Any]:
        return base_metadata(self.source.name, self.size, self.version)
