"""Does the main video stream decode: its first packets (every file with video packets) and,
in a file the demuxer says is cut, its tail.

The head decode needs the listing's answers (which stream is the main video, where its
first keyframe is), so it would follow the listing, one ffprobe run after another. Instead
a guess of it (:class:`HeadGuess`: the first :data:`GUESSED_PACKETS` packets of the first
video stream that is not cover art, the decode most files need) runs alongside the listing,
under the same deadline and child limits. Its answer is used only when it is the decode the
listing then asks for: the same stream and the same packets fed to the decoder, so the
verdict is the one the sequential decode gives. Otherwise (another stream is the main one,
the first keyframe comes later or none is flagged, the guess failed) that decode runs after
the listing, as it always did.
"""

from __future__ import annotations

import threading

from prober.context import Context
from prober.evidence import said_cut
from prober.ffprobe import Decoded, FFprobeFailed, ProbeOutput, count_decoded, undecoded_tail
from prober.metadata import real_video_streams
from prober.packets import time_bases

__all__ = ["GUESSED_PACKETS", "GUESSED_STREAM", "HeadGuess", "decode_checks"]

#: Packets decoded past the first keyframe to show the video decodes; packets tried when
#: none is flagged as a keyframe.
HEAD_AFTER_KEY, HEAD_WITHOUT_KEY = 2, 250
#: The guessed head decode: ffprobe's stream specifier for the first video stream that is
#: not an attached picture (cover art), and its packets when its first packet is a keyframe.
GUESSED_STREAM, GUESSED_PACKETS = "V:0", HEAD_AFTER_KEY


class HeadGuess:
    """The guessed head decode of ``ctx``'s file, started at once in a thread of its own
    (its child under ``ctx``'s deadline and runner). :meth:`answer` tells whether it is the
    decode the listing asks for; :meth:`join` waits for it (every probe does before it
    returns: no child outlives its probe)."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._decoded: Decoded | None = None
        self._failure: Exception | None = None
        self._thread = threading.Thread(target=self._run, name="ffprobe-head-guess",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        ctx = self._ctx
        try:
            with ctx.stages.timed("head_guess"):
                self._decoded = count_decoded(
                    ctx.source, GUESSED_STREAM, packets=GUESSED_PACKETS, ffprobe=ctx.ffprobe,
                    timeout=ctx.deadline.left(), runner=ctx.runner)
        except Exception as exc:  # (any failure: the decode that is needed runs again)
            self._failure = exc

    def join(self) -> None:
        self._thread.join()

    def answer(self, index: int, packets: int, *, whole: bool) -> Decoded | None:
        """The guess's result when it is the decode of the first ``packets`` packets of
        stream ``index`` (``whole``: those are every packet of the stream, so a guess that
        asked for as many or more fed the decoder the same ones); else None. Waits for the
        guess to end; notes the outcome in ``head_guess``."""
        with self._ctx.stages.timed("head_wait"):
            self.join()
        got = self._decoded
        if got is None:
            outcome = f"failed ({type(self._failure).__name__})"
        elif got.index != index:
            outcome = "another stream"
        elif packets != GUESSED_PACKETS and not (whole and packets <= GUESSED_PACKETS):
            outcome = "other packets"
        else:
            self._ctx.stages.note("head_guess", "used")
            return got
        self._ctx.stages.note("head_guess", outcome)
        return None


def decode_checks(ctx: Context, output: ProbeOutput, guess: HeadGuess) -> Decoded | None:
    """Whether the main video stream decodes at all: its first packets, up to one past its
    first keyframe (at most :data:`HEAD_WITHOUT_KEY` when none is flagged), must give a
    frame (None: no video packets, or ffprobe failed on the decode); ``guess``'s result
    when it is that decode. In a file the demuxer says is cut, the packets from the last
    keyframe to the end are decoded too, and the last ones that give no frame are dropped
    from ``output.packets`` (its frame count and span then end with the last frame that
    decodes)."""
    videos = real_video_streams(output.data) if output.packets.full else []
    index = int(videos[0].get("index", -1)) if videos else -1
    found = output.packets.streams.get(index)
    if found is None or found.count == 0:
        return None
    first_key = HEAD_WITHOUT_KEY if found.first_key is None else found.first_key
    head = min(found.count, first_key + HEAD_AFTER_KEY) + found.discarded
    try:
        decoded = guess.answer(index, head, whole=head == found.count + found.discarded)
        if decoded is None:
            with ctx.stages.timed("head"):
                decoded = count_decoded(ctx.source, index, packets=head, ffprobe=ctx.ffprobe,
                                        timeout=ctx.deadline.left(), runner=ctx.runner)
        if not said_cut(output.log) or not decoded.frames:
            return decoded
        with ctx.stages.timed("tail"):
            tail = undecoded_tail(ctx.source, index, ffprobe=ctx.ffprobe,
                                  timeout=ctx.deadline.left(), runner=ctx.runner)
            base = time_bases(output.data).get(index)
            if tail is None and found.last_key is not None and base is not None:
                # the seek past the end found no keyframe to land on (a fragmented MP4
                # without an index): start at the last keyframe the listing saw
                tail = undecoded_tail(ctx.source, index, ffprobe=ctx.ffprobe,
                                      timeout=ctx.deadline.left(), runner=ctx.runner,
                                      start=float(found.last_key * base))
    except FFprobeFailed:  # (it opened the file a moment ago): nothing more to learn
        return None
    if tail is None or not tail.cut:
        return decoded
    # what plays ends with the last frame that decodes: the frame count, the stream's span
    # and so the file's duration leave the cut packets out
    found.drop_tail(tail.cut, tail.last_frame)
    return decoded
