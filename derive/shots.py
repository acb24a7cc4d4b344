"""Shot boundaries and activity from a stream of small frames (pure computation; the
ffmpeg pass that feeds it is derive/scenes.py).

Frames arrive one by one, each the same number of bytes (any pixel layout). Of each,
every :data:`STEP`-th byte is kept (the sample) and compared to the sample of the frame
before (``d1``: mean absolute difference, 0..255, also the activity) and to the sample
of the frame :attr:`Shots.lag` frames before (``dk``).

* **Cut**: frame ``i`` starts a new shot when ``d1[i]`` is at least :data:`CUT_MIN` and
  jumps: at least :data:`CUT_RATIO` times the mean ``d1`` of the :data:`WINDOW` frames on
  the calmer side of it and :data:`CUT_OVER` times that of the busier side (not motion
  that goes on or starts: a cut from a busy shot to a still one is seen); or its colours
  jump: the share of the per-channel histograms (:data:`HIST_BINS` soft bins: a level
  counts in the two nearest bins, weighted by its distance to their centres, so a
  brightness ramp moves them by its step, never a whole bin at once) that moved is at
  least :data:`HIST_MIN` and :data:`HIST_OVER` times the busier side's mean (a cut
  between two busy textures, whose pixels all change anyway). Either way the change must
  last: the frame :data:`WINDOW` frames on still differs from the frame before the cut
  by :data:`PERSIST` of ``d1[i]`` (a flash or a flicker returns), and a cut comes no
  sooner than :data:`MIN_SCENE` of the lag after the one before (or the first frame).
* **Gradual transition** (dissolve, fade): ``dk`` rises to a plateau while one shot
  blends into the next and falls back ``lag`` frames later, where motion alone keeps it
  level. ``bump[i] = dk[i] - max(dk[i - lag], dk[i + lag])``, judged only where both
  sides exist (a rise with no fall seen, a fade to black at the very end, is no
  transition); a run of frames with a bump of at least :data:`GRADUAL_MIN` is one
  transition, its boundary the run's centroid less
  half the lag (the middle of the dissolve). A transition within ``lag`` frames of a cut
  (or of the first frame) is that cut's own bump and is dropped.
* **Ends**: no scene shorter than :data:`MIN_SCENE` of the lag at either end (a black
  first or last frame, a fade-in from black, is part of the scene beside it).

A boundary is the first frame of a new scene. Each scene keeps one frame (its
thumbnail): the first one from :attr:`Shots.lag` frames in that is :func:`settled`
(neither dark nor still brightening: not the black middle of a fade through black, not
a fade in), looked for up to :data:`THUMB_WAIT` lags into the scene; the middle of a
shorter scene (or the first settled frame after it).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

STEP = 13  # bytes: one of each STEP kept for comparison (13 mixes the channels of RGB)
WINDOW = 2  # frames each side a cut is compared to
CUT_MIN = 8.0  # mean absolute difference (0..255)
CUT_RATIO = 3.0  # times the calmer side's mean
CUT_OVER = 1.5  # times the busier side's mean
PERSIST = 0.5  # a cut's change still there WINDOW frames on, as a share of its d1
MIN_SCENE = 2 / 3  # of the lag: no cut this soon after another
HIST_STEP = 12  # bytes: every 4th pixel of RGB24, per channel, for the histograms
HIST_BINS = 16
HIST_MIN = 0.3  # share of the histograms that moved
HIST_OVER = 2.0  # times the busier side's mean
HIST_WIDTH = 256 / HIST_BINS  # levels
GRADUAL_MIN = 20.0  # bump (0..255)
LAG_SECONDS = 0.6  # gradual transitions up to about this long are seen whole
MIN_LAG = 8  # frames
DARK_MEAN = 32  # 0..255: a frame of a lower mean level is dark (no thumbnail)
BRIGHTENING = 1.08  # a frame this much brighter half a lag on: a fade in goes on
THUMB_WAIT = 5  # lags into a scene a thumbnail waits for a settled frame


Sample = npt.NDArray[np.int16]
Histogram = npt.NDArray[np.float64]


def _sampled(frame: bytes) -> Sample:
    """Every :data:`STEP`-th byte of ``frame``, signed so that differences don't wrap."""
    return np.frombuffer(frame, np.uint8)[::STEP].astype(np.int16)


def _mad(a: Sample, b: Sample) -> float:
    """Mean absolute difference of two samples, 0..255."""
    return float(np.abs(a - b).sum()) / (len(a) or 1)


def _soft_bin(level: int) -> tuple[int, float]:
    """The lower of the two bins a level counts in and its weight in the upper one: 0 at
    the lower bin's centre, 1 at the upper's (clamped beyond the first and last centre)."""
    at = min(max((level + 0.5) / HIST_WIDTH - 0.5, 0.0), HIST_BINS - 1.0)
    low = min(int(at), HIST_BINS - 2)
    return low, at - low


def _soft_weights() -> Histogram:
    """(256, :data:`HIST_BINS`): the share of a level counted in each bin."""
    weights = np.zeros((256, HIST_BINS))
    for level in range(256):
        low, upper = _soft_bin(level)
        weights[level, low] += 1.0 - upper
        weights[level, low + 1] += upper
    return weights


_SOFT = _soft_weights()


def _histogram(frame: bytes) -> Histogram:
    """Soft counts in :data:`HIST_BINS` bins per channel of an RGB24 frame's pixel sample
    (module docstring), shape (3 * HIST_BINS,): a level moving by ``d`` moves at most
    ``d / HIST_WIDTH`` of its count."""
    pixels = np.frombuffer(frame, np.uint8)
    return np.concatenate([np.bincount(pixels[channel::HIST_STEP], minlength=256) @ _SOFT
                           for channel in range(3)])


def _moved(a: Histogram, b: Histogram) -> float:
    """The share of two histograms that differs, 0..1."""
    return float(np.abs(a - b).sum()) / (2 * (float(a.sum()) or 1))


def lag_for(rate: float) -> int:
    """Frames between the two frames ``dk`` compares, for ``rate`` frames per second."""
    return max(MIN_LAG, round(LAG_SECONDS * rate))


@dataclass
class Shots:
    """Feed frames with :meth:`add`, then :meth:`finish`; ``keep(scene_start, frame)`` is
    called once per scene with its thumbnail's bytes, in the order they are found (not
    always the scenes' order)."""

    lag: int
    keep: Callable[[int, bytes], None]
    d1: list[float] = field(default_factory=list)  # per frame; d1[0] = 0
    moved: list[float] = field(default_factory=list)  # per frame: histogram change, 0..1
    cuts: list[int] = field(default_factory=list)
    graduals: list[int] = field(default_factory=list)
    _dk: list[float] = field(default_factory=list)  # per frame from ``lag`` on
    _samples: deque[Sample] = field(default_factory=deque)
    _histogram: Histogram | None = None
    _frames: deque[tuple[int, bytes]] = field(default_factory=deque)
    _run: list[tuple[int, float]] = field(default_factory=list)
    _wanted: dict[int, int] = field(default_factory=dict)  # scene start → thumbnail frame
    _since: dict[int, int] = field(default_factory=dict)  # scene start → first candidate
    _means: dict[int, float] = field(default_factory=dict)  # held frame → mean level

    def __post_init__(self) -> None:
        self._wanted[0] = self.lag

    @property
    def count(self) -> int:
        return len(self.d1)

    def add(self, frame: bytes) -> None:
        j = len(self.d1)
        sample = _sampled(frame)
        self.d1.append(_mad(sample, self._samples[-1]) if self._samples else 0.0)
        histogram = _histogram(frame)
        self.moved.append(_moved(histogram, self._histogram)
                          if self._histogram is not None else 0.0)
        self._histogram = histogram
        if len(self._samples) >= self.lag:
            self._dk.append(_mad(sample, self._samples[-self.lag]))
        self._samples.append(sample)
        if len(self._samples) > self.lag:
            self._samples.popleft()
        self._frames.append((j, frame))
        if len(self._frames) > 4 * self.lag + 2 * WINDOW + 4:
            self._means.pop(self._frames.popleft()[0], None)
        for start, want in list(self._wanted.items()):
            if want == j:
                self._take(start, self._since.get(start, j), until=None)
        if j >= 2 * WINDOW:
            self._judge_cut(j - WINDOW)
        if j >= 2 * self.lag:
            self._judge_bump(j - self.lag)

    def finish(self) -> list[int]:
        """The boundaries (first frames of scenes, from 0), in order."""
        n = len(self.d1)
        for i in range(max(1, n - WINDOW), n):
            self._judge_cut(i)
        self._end_run()
        shortest = MIN_SCENE * self.lag
        self.cuts = [c for c in self.cuts if n - c >= shortest]
        self.graduals = [g for g in self.graduals if n - g >= shortest]
        starts = self.starts()
        for k, start in enumerate(starts):
            if start in self._wanted:
                end = starts[k + 1] if k + 1 < len(starts) else n
                self._take(start, min(self._since.get(start, self._wanted[start]),
                                      (start + end - 1) // 2), until=end)
        return starts

    def starts(self) -> list[int]:
        return sorted({0, *self.cuts, *self.graduals})

    # --- cuts ---------------------------------------------------------------------------

    def _sample(self, k: int) -> Sample:
        """The sample of frame ``k``, or of the oldest (newest) one still held."""
        first = len(self.d1) - len(self._samples)
        return self._samples[min(max(k - first, 0), len(self._samples) - 1)]

    def _judge_cut(self, i: int) -> None:
        if i < 1:
            return
        value = self.d1[i]
        if value < CUT_MIN or i - (self.cuts[-1] if self.cuts else 0) < MIN_SCENE * self.lag:
            return
        if _mad(self._sample(i + WINDOW), self._sample(i - 1)) < PERSIST * value:
            return
        means = _side_means(self.d1, i)
        pixels = not means or (value >= CUT_RATIO * min(means)
                               and value >= CUT_OVER * max(means))
        moved = self.moved[i]
        colours = moved >= HIST_MIN and moved >= HIST_OVER * max(_side_means(self.moved, i),
                                                                 default=0.0)
        if pixels or colours:
            self.graduals = [g for g in self.graduals if abs(g - i) > self.lag]
            self._found(i)
            self.cuts.append(i)

    # --- gradual transitions ------------------------------------------------------------

    def _dk_at(self, i: int) -> float | None:
        k = i - self.lag
        return self._dk[k] if 0 <= k < len(self._dk) else None

    def _judge_bump(self, i: int) -> None:
        here, before, after = (self._dk_at(k) for k in (i, i - self.lag, i + self.lag))
        if here is None or before is None or after is None:
            self._end_run()
            return
        if here - max(before, after) >= GRADUAL_MIN:
            self._run.append((i, here - max(before, after)))
        else:
            self._end_run()

    def _end_run(self) -> None:
        if not self._run:
            return
        total = sum(b for _, b in self._run)
        centre = sum(i * b for i, b in self._run) / total
        self._run = []
        boundary = round(centre - self.lag / 2)
        if any(abs(c - boundary) <= self.lag for c in (0, *self.cuts)):
            return
        self._found(boundary)
        self.graduals.append(boundary)

    # --- thumbnails ---------------------------------------------------------------------

    def _found(self, start: int) -> None:
        """A new scene from ``start``: its thumbnail is ``lag`` frames in; the scene
        before it, if still waiting for one, takes it now from what is held before
        ``start`` (from its middle, when that comes before the frame it waits for)."""
        before = max((s for s in self._wanted if s < start), default=None)
        if before is not None:
            middle = max(before, (before + start - 1) // 2)
            self._take(before, min(self._since.get(before, self._wanted[before]), middle),
                       until=start)
        self._wanted[start] = start + self.lag
        if start + self.lag < len(self.d1):
            self._take(start, start + self.lag, until=None)

    def _take(self, start: int, frame: int, until: int | None) -> None:
        """Keep the thumbnail of the scene from ``start``: the first held frame from
        ``frame`` on (before ``until``, the next scene's start, when known) that is
        :func:`settled`. With none, while the scene may go on and fewer than
        :data:`THUMB_WAIT` lags of it were judged, look again at the next frame; else
        the brightest frame judged."""
        if start not in self._wanted:
            return
        held = [(j, f) for j, f in self._frames
                if j >= frame and (until is None or j < until)] or [self._frames[-1]]
        half = max(1, self.lag // 2)
        means = [self._mean(j, f) for j, f in held]
        # while the scene goes on, a frame is judged once every boundary before it is
        # known (two lags on: a gradual transition is found a lag and a half late)
        judged = (sum(j <= held[-1][0] - 2 * self.lag for j, _ in held) if until is None
                  else len(held))
        chosen = next((held[k][1] for k in range(max(0, judged))
                       if settled(means[k], means[min(k + half, len(held) - 1)])), None)
        waited = held[-1][0] - 2 * self.lag - start  # frames judged into the scene
        if chosen is None and until is None and waited < THUMB_WAIT * self.lag:
            self._since.setdefault(start, frame)
            self._wanted[start] = held[-1][0] + 1
            return
        if chosen is None:  # a long fade in, or a dark scene: its brightest frame judged
            brightest = max(range(max(1, judged)), key=means.__getitem__)
            chosen = held[brightest][1]
        del self._wanted[start]
        self._since.pop(start, None)
        self.keep(start, chosen)

    def _mean(self, j: int, frame: bytes) -> float:
        """Frame ``j``'s mean level (0..255) over its sampled bytes, computed once."""
        if j not in self._means:
            self._means[j] = float(np.frombuffer(frame, np.uint8)[::STEP].mean())
        return self._means[j]


def settled(mean: float, later: float) -> bool:
    """Whether a frame of mean level ``mean`` (0..255) makes a thumbnail, ``later`` the
    mean of the frame half a lag after it (or the last one held): not dark (at least
    :data:`DARK_MEAN`) and not still brightening (a fade in: ``later`` more than
    :data:`BRIGHTENING` times ``mean``)."""
    return mean >= DARK_MEAN and later <= BRIGHTENING * mean

def _side_means(values: list[float], i: int) -> list[float]:
    """The means of the :data:`WINDOW` values before ``i`` (from 1) and after it, each
    leaving out exact zeros (a frame repeated to keep the frame rate constant: a video
    of 15 frames/s analysed at 30 shows every change next to a zero) unless all are."""
    means = []
    for side in (values[max(1, i - WINDOW):i], values[i + 1:i + 1 + WINDOW]):
        moving = [v for v in side if v] or side
        if moving:
            means.append(sum(moving) / len(moving))
    return means


def activity(d1: list[float], rate: float, starts: list[int], seconds: int | None = None
             ) -> list[float]:
    """Per second ``s`` (frames ``s * rate`` to before ``(s + 1) * rate``): the mean
    ``d1`` of its frames other than the first frame of a scene (a cut is no motion), in
    levels 0..255; 0 for a second without such frames. ``seconds`` values when given (the
    video's started seconds: frames past them are left out, seconds past the frames are
    0), else as many as the frames reach."""
    skip = set(starts)
    sums: list[float] = [0.0] * (seconds or 0)
    counts: list[int] = [0] * (seconds or 0)
    for j, value in enumerate(d1):
        second = int(j / rate)
        if seconds is not None and second >= seconds:
            break
        while len(sums) <= second:
            sums.append(0.0)
            counts.append(0)
        if j not in skip:
            sums[second] += value
            counts[second] += 1
    return [s / c if c else 0.0 for s, c in zip(sums, counts, strict=True)]
