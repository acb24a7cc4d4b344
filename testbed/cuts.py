"""A corpus of videos with known shot boundaries, and the score of a detector on it.

Each clip concatenates distinct lavfi sources (test patterns, fractals, cellular automata,
gradients, noisy colour...) with hard cuts and ``xfade`` dissolves, at one size and frame
rate. The truth is the frame numbers the clip was put together at (never a detector's
output): a hard cut's new shot starts at frame ``first``; a dissolve's frames ``first`` to
``last - 1`` blend the two shots and ``last`` is the first frame of the new shot alone.

A detected boundary (the first frame of a new scene) matches a transition when it lies
within ``tolerance`` frames of the transition's :attr:`Transition.boundary`: a hard cut's
first new frame, a dissolve's middle (its first frame that is at least half the new
shot), not anywhere in its span; each transition and each boundary matches at most once.
Recall is matched transitions over transitions; precision is matched boundaries over
boundaries.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

#: lavfi sources, each distinct from the next; ``{size}`` and ``{rate}`` filled per clip.
#: Costly generators render small and are scaled up.
SOURCES = (
    "testsrc2=size={size}:rate={rate}",
    "smptehdbars=size={size}:rate={rate}",
    "mandelbrot=size=320x180:rate={rate}:maxiter=100:end_scale=0.05,scale={size}",
    "cellauto=size=320x180:rate={rate}:rule=110:scroll=1:seed=11,scale={size}:flags=neighbor",
    "gradients=size={size}:rate={rate}:speed=0.02:seed=7",
    "color=c=0x3060a0:size={size}:rate={rate},noise=alls=24:allf=t:all_seed=3",
    "life=size=320x180:rate={rate}:mold=10:ratio=0.2:seed=5:life_color=0xffc040"
    ":death_color=0x202060,scale={size}:flags=neighbor",
    "rgbtestsrc=size={size}:rate={rate}",
    "sierpinski=size={size}:rate={rate}:type=carpet",
    "yuvtestsrc=size={size}:rate={rate}",
    "colorchart=rate={rate}:patch_size=64x64,scale={size}",
    "testsrc=size={size}:rate={rate}",
)


@dataclass(frozen=True)
class Transition:
    first: int  # frame: a hard cut's first new frame; a dissolve's first blended frame
    last: int  # frame: the first frame of the new shot alone (== first for a hard cut)

    @property
    def boundary(self) -> int:
        """The frame a detector should report: ``first`` for a cut, the dissolve's middle
        (``xfade`` blends frame ``first + m`` at ``m / (last - first)`` of the new shot)."""
        return (self.first + self.last + 1) // 2

    @property
    def kind(self) -> str:
        return "cut" if self.last == self.first else "dissolve"


@dataclass(frozen=True)
class Clip:
    name: str
    size: str  # WxH
    rate: int  # frames per second
    shots: tuple[int, ...]  # frames each source plays (before dissolves overlap them)
    dissolves: tuple[int, ...]  # per joint: 0 for a hard cut, else the dissolve's frames
    start: int = 0  # index of the first source in SOURCES

    def transitions(self) -> list[Transition]:
        found, at = [], 0
        for shot, fade in zip(self.shots, self.dissolves, strict=False):
            at += shot - fade
            found.append(Transition(at, at + fade))
        return found

    @property
    def frames(self) -> int:
        return sum(self.shots) - sum(self.dissolves)


#: The corpus: 480p to 1080p, 25 and 30 fps, hard cuts and dissolves of 8 to 15 frames.
CORPUS = (
    Clip("cuts-480p25", "854x480", 25, (40, 30, 45, 35, 50, 30, 40), (0,) * 6, 0),
    Clip("mixed-720p30", "1280x720", 30, (45, 40, 50, 36, 45, 40), (0, 12, 0, 15, 0), 3),
    Clip("dissolves-1080p25", "1920x1080", 25, (40, 45, 40, 50, 40), (10, 8, 12, 10), 6),
    Clip("cuts-1080p30", "1920x1080", 30, (36, 45, 30, 40, 50, 36), (0, 0, 0, 0, 0), 8),
)


def filter_graph(clip: Clip) -> str:
    """The ``-filter_complex`` that plays each source for its frames and joins them."""
    parts = []
    for i, frames in enumerate(clip.shots):
        source = SOURCES[(clip.start + i) % len(SOURCES)].format(size=clip.size,
                                                                  rate=clip.rate)
        parts.append(f"{source},format=yuv420p,setsar=1,trim=end_frame={frames},"
                     f"setpts=PTS-STARTPTS,settb=1/{clip.rate}[s{i}]")
    joined, length = "s0", clip.shots[0]
    for i, fade in enumerate(clip.dissolves, start=1):
        out = f"j{i}"
        if fade:
            offset = (length - fade) / clip.rate
            parts.append(f"[{joined}][s{i}]xfade=transition=fade:duration="
                         f"{fade / clip.rate:.6f}:offset={offset:.6f}[{out}]")
        else:
            parts.append(f"[{joined}][s{i}]concat=n=2:v=1:a=0,settb=1/{clip.rate}[{out}]")
        joined, length = out, length + clip.shots[i] - fade
    return ";".join(parts) + f";[{joined}]null[out]"


def make(clip: Clip, folder: Path, *, gop: int | None = None) -> Path:
    """Encode ``clip`` (H.264, yuv420p) into ``folder``; its path."""
    out = folder / f"{clip.name}.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-filter_complex", filter_graph(clip),
                    "-map", "[out]", "-c:v", "libx264", "-preset", "ultrafast",
                    "-crf", "23", "-g", str(gop or 2 * clip.rate), "-pix_fmt", "yuv420p",
                    "-frames:v", str(clip.frames), str(out)], check=True, timeout=300)
    return out


@dataclass(frozen=True)
class Score:
    transitions: int
    boundaries: int
    matched: int  # transitions matched by a boundary
    missed: tuple[Transition, ...]
    extra: tuple[int, ...]  # boundaries that match no transition

    @property
    def recall(self) -> float:
        return self.matched / self.transitions if self.transitions else 1.0

    @property
    def precision(self) -> float:
        return (self.boundaries - len(self.extra)) / self.boundaries if self.boundaries \
            else 1.0

    def __add__(self, other: Score) -> Score:
        return Score(self.transitions + other.transitions, self.boundaries + other.boundaries,
                     self.matched + other.matched, self.missed + other.missed,
                     self.extra + other.extra)


def score(truth: Sequence[Transition], boundaries: Iterable[int], tolerance: int = 1
          ) -> Score:
    """Match ``boundaries`` (first frames of new scenes, frame 0 left out) to ``truth``."""
    found = sorted(set(boundaries) - {0})
    free = list(found)
    missed = []
    for t in truth:
        near = [b for b in free if abs(b - t.boundary) <= tolerance]
        if near:
            free.remove(min(near, key=lambda b: abs(b - t.boundary)))
        else:
            missed.append(t)
    return Score(len(truth), len(found), len(truth) - len(missed), tuple(missed),
                 tuple(free))
