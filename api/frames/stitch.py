"""``exact`` clips that re-encode only the partial GOPs at each end (docs/models.md#clips):
the frames of a :class:`~api.frames.cut.Span` in ``[start, end)`` are cut in three pieces
at two keyframes of the timeline, K1 the first at or after the span's first frame and K2
the last at or before its end (only *clean* ones, :attr:`~api.frames.timeline.Timeline.
clean`: no frame decoded after it is shown before it, none decoded before it shown after):

* the head ``[start, K1)`` and the tail ``[K2, end)`` re-encoded (libx264, no B-frames,
  the source's profile), each as :meth:`~api.frames.cut.Cutter.encode_input` decodes it;
* the middle ``[K1, K2)`` by stream copy, every packet as stored
  (:meth:`~api.frames.cut.Cutter.copy_input`);

each into an MPEG-TS file of its own (Annex B: every piece carries its parameter sets
in-band, the copied ones as the source has them), then joined by ffmpeg's concat demuxer
(each piece placed by its duration on the timeline) into one MP4 whose sample entry is
``avc3`` (parameter sets in the samples, ISO/IEC 14496-15), the audio encoded to AAC from
the span's start for its length. A re-encoded piece's decoding times trail its
presentation times by the lead of the keyframe next to it (K1's for the head, K2's for the
tail): the decoding times stay increasing across the joins, whatever the source's
B-frames.

Only H.264, progressive, 8-bit 4:2:0 (``yuv420p``) of even width and height, Baseline,
Main or High profile (x264 then writes the same kind of stream) is stitched, and only a
span holding a whole GOP between two clean keyframes; the rest is re-encoded whole as
before: :meth:`Stitcher.exact_clip` says which and why (:class:`Method`).
"""

from __future__ import annotations

import bisect
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from api.frames.cut import AAC, MP4_OUTPUT, Cutter, Span, lasting
from api.frames.extract import FrameFailed
from api.frames.source import input_options
from api.frames.timeline import Timeline

__all__ = ["IDR", "PARAMETER_SETS", "PROFILES", "Method", "Pieces", "Stitcher", "nal_types",
           "pieces"]

#: H.264 profiles (ffprobe's names) stitched, and the x264 profile of the ends.
PROFILES = {"Constrained Baseline": "baseline", "Baseline": "baseline", "Main": "main",
            "High": "high"}
#: The ends' encoder: as :data:`api.frames.cut._VIDEO`, without B-frames (the decoding
#: times are the presentation times less one lead), in 1/90000 s (MPEG-TS's clock).
_ENDS = ("-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p",
         "-bf", "0", "-enc_time_base:v", "1:90000")
#: MPEG-TS null packets (PID 0x1FFF, ignored by every demuxer) that end each piece: ffmpeg's
#: MPEG-TS probe asks for 10 packets at least, which a piece of one small frame lacks.
_NULL_PACKETS = (b"\x47\x1f\xff\x10" + b"\xff" * 184) * 10
#: Seconds a keyframe's time may differ from its frame's in the timeline (both are the
#: same pts, converted by two roundings).
_SAME = 1e-7
#: H.264's nal_unit_type of a slice of an IDR picture, and of the parameter sets (SPS, PPS).
IDR = 5
PARAMETER_SETS = frozenset({7, 8})


@dataclass(frozen=True)
class Method:
    """How an ``exact`` clip was made: ``name`` ``stitch`` (``copied``: the timeline's
    seconds ``(K1, K2)`` of the frames copied) or ``encode`` (``reason``: a sentence
    saying why not stitched)."""

    name: str
    reason: str = ""
    copied: tuple[float, float] | None = None


@dataclass(frozen=True)
class Pieces:
    """A span cut at two clean keyframes: ``head`` and ``tail`` (None when empty) to
    re-encode, ``middle`` (``cut``: the decoding time of K2) to copy; ``leads``: how much
    earlier K1 and K2 are decoded than shown (seconds, ``>= 0``)."""

    head: Span | None
    middle: Span
    tail: Span | None
    leads: tuple[float, float]


def _piece(line: Timeline, first: int, stop: int, cut: float | None = None) -> Span | None:
    if stop <= first:
        return None
    end = line.times[stop] if stop < len(line.times) else line.end
    assert end is not None
    return Span(first, stop - first, line.times[first], end, cut)


def pieces(line: Timeline, span: Span) -> Pieces | str:
    """``span`` (from :func:`~api.frames.cut.exact_span` of ``line``) cut at the first
    clean keyframe at or after its start and the last at or before its end, or a sentence
    saying why it cannot be (no whole GOP between two clean keyframes in it)."""
    stop = span.first + span.count
    if len(line.clean) != len(line.keys):
        return "the timeline does not say which keyframes are clean cuts"
    cuts = []
    inside = 0  # keyframes in the span, clean or not
    for time, decoded, clean in zip(line.keys, line.key_decoded, line.clean, strict=True):
        index = bisect.bisect_left(line.times, time - _SAME)
        if span.first <= index <= stop and index < len(line.times) \
                and abs(line.times[index] - time) <= _SAME:
            inside += 1
            if clean:
                cuts.append((index, decoded))
    if len(cuts) < 2:
        if inside < 2:
            return (f"the span holds no whole GOP ({inside or 'no'} keyframe"
                    f"{'' if inside == 1 else 's'} from its first frame to its end), and"
                    " only whole GOPs between two keyframes are copied")
        return (f"the span holds {inside} keyframes but no whole GOP between two that are"
                " clean cuts (an open GOP's keyframes, whose leading frames are shown"
                " before them, are not)")
    (k1, d1), (k2, d2) = cuts[0], cuts[-1]
    middle = _piece(line, k1, k2, d2)
    assert middle is not None
    return Pieces(_piece(line, span.first, k1), middle, _piece(line, k2, stop),
                  (max(0.0, line.times[k1] - d1), max(0.0, line.times[k2] - d2)))


def nal_types(annex_b: bytes) -> set[int]:
    """The ``nal_unit_type`` of every NAL unit of an H.264 Annex B stream."""
    return {annex_b[n + 3] & 0x1F for n in range(len(annex_b) - 3)
            if annex_b[n:n + 3] == b"\x00\x00\x01"}


class Stitcher(Cutter):
    """:class:`~api.frames.cut.Cutter` whose ``exact`` clips stitch when they can."""

    def exact_clip(self, line: Timeline, span: Span, out: Path, audio: str | None) -> Method:
        """Write ``span`` (from :func:`~api.frames.cut.exact_span` of ``line``) to ``out``
        stitched (module docstring), or else re-encoded whole
        (:meth:`~api.frames.cut.Cutter.exact`); how it was made. Errors as
        :meth:`~api.frames.cut.Cutter.exact`."""
        cut = pieces(line, span)
        profile, rotation, what = ("", 0, "") if isinstance(cut, str) else self.stitchable()
        if isinstance(cut, str) or not profile:
            self.exact(span, line.at(span.start), out, audio)
            return Method("encode", cut if isinstance(cut, str) else
                          f"the stream ({what}) is not one stitched: H.264 Baseline, Main"
                          " or High, progressive, yuv420p, of even width and height")
        with tempfile.TemporaryDirectory(prefix="videodrop-stitch-") as scratch:
            folder = Path(scratch)
            why = self.copied(cut.middle, folder / "middle.ts")
            if why:
                self.exact(span, line.at(span.start), out, audio)
                return Method("encode", why)
            listed = ["ffconcat version 1.0"]
            for name, piece in (("head", cut.head), ("middle", cut.middle),
                                ("tail", cut.tail)):
                if piece is None:
                    continue
                if name != "middle":
                    lead = cut.leads[0 if name == "head" else 1]
                    self.encoded(line, piece, profile, lead, folder / f"{name}.ts")
                with (folder / f"{name}.ts").open("ab") as piece_file:
                    piece_file.write(_NULL_PACKETS)
                listed += [f"file {name}.ts", f"duration {piece.end - piece.start:.6f}"]
            (folder / "pieces.ffconcat").write_text("\n".join(listed) + "\n")
            self.joined(folder / "pieces.ffconcat", span, out, audio, rotation)
        return Method("stitch", copied=(cut.middle.start, cut.middle.end))

    def stitchable(self) -> tuple[str, int, str]:
        """(the x264 profile of the ends or "" when the video stream is not one to stitch
        (module docstring), its rotation in degrees clockwise, what it is in words)."""
        done = self._run([self.ffprobe, "-v", "error", *input_options(self.source.protocols),
                          "-select_streams", "v:0",
                          "-show_entries", "stream=codec_name,profile,pix_fmt,width,height,"
                          "field_order:stream_side_data=rotation", "-of", "json",
                          self.input_url()], "ffprobe")
        try:
            [stream] = json.loads(done.stdout)["streams"]
        except (ValueError, KeyError) as exc:
            raise FrameFailed("decode_failed", "ffprobe listed no video stream") from exc
        what = (f"{stream.get('codec_name')} {stream.get('profile')}"
                f" {stream.get('pix_fmt')} {stream.get('width')}x{stream.get('height')}"
                f" {stream.get('field_order', 'unknown')}")
        fits = (stream.get("codec_name") == "h264" and stream.get("pix_fmt") == "yuv420p"
                and stream.get("profile") in PROFILES
                and stream.get("field_order", "progressive") in ("progressive", "unknown")
                and int(stream.get("width", 1)) % 2 == 0 and int(stream.get("height", 1)) % 2 == 0)
        turns = [int(d["rotation"]) for d in stream.get("side_data_list", []) if "rotation" in d]
        rotation = turns[0] % 360 if turns else 0
        return (PROFILES[stream["profile"]] if fits else ""), rotation, what

    def copied(self, piece: Span, out: Path) -> str:
        """The middle's packets, as stored, to an MPEG-TS file; "" when its first one is
        an IDR picture with its parameter sets before it, else why it cannot follow the
        head: a picture that is not IDR (an open GOP's recovery point, say) leaves the
        decoder ordering its frames among the head's by picture order counts that are
        not reset; without its own parameter sets (an MPEG-TS source that sends them
        once) it would be decoded with the head's."""
        seek, offset, until = self.copy_input(piece)
        first = out.with_suffix(".h264")
        self._run(self._ffmpeg(*seek, *offset, *until, *self.input(),
                               "-map", "0:v:0", "-c:v", "copy", "-an", "-sn", "-dn",
                               "-copypriorss", "0", "-f", "mpegts", "-y", f"file:{out}",
                               "-map", "0:v:0", "-c:v", "copy", "-frames:v", "1",
                               "-copypriorss", "0", "-bsf:v", "h264_mp4toannexb",
                               "-f", "h264", "-y", f"file:{first}"), "ffmpeg")
        types = nal_types(first.read_bytes())
        if IDR not in types:
            return (f"the keyframe at {piece.start:.6f} s is not an IDR picture"
                    " (an open GOP's, say)")
        if not types >= PARAMETER_SETS:
            return f"the keyframe at {piece.start:.6f} s has no parameter sets before it"
        return ""

    def encoded(self, line: Timeline, piece: Span, profile: str, lead: float,
                out: Path) -> None:
        """``piece`` re-encoded to an MPEG-TS file, each frame decoded ``lead`` seconds
        before it is shown."""
        seek, picks = self.encode_input(piece, line.at(piece.start))
        shift = ["-bsf:v", f"setts=dts=PTS-{round(lead * 90000)}"] if lead > 0 else []
        self._run(self._ffmpeg(
            "-threads", "2", "-noautorotate", *seek, *self.input(),
            "-map", "0:v:0", "-an", "-sn", "-dn", "-vf", ",".join(picks),
            "-frames:v", str(piece.count), "-fps_mode", "passthrough", *_ENDS,
            "-profile:v", profile, *shift, "-threads", "2", "-f", "mpegts", "-y",
            f"file:{out}"), "ffmpeg")

    def joined(self, listed: Path, span: Span, out: Path, audio: str | None,
               rotation: int) -> None:
        """The pieces ``listed`` (an ffconcat file) joined into the MP4 ``out``, with the
        audio of ``span`` encoded to AAC and the source's rotation as metadata; the last
        frame lasts until the span's end (:func:`~api.frames.cut.lasting`: MPEG-TS keeps
        no durations)."""
        sound = [] if audio is None else [
            "-ss", f"{span.start:.6f}", "-t", f"{span.end - span.start:.6f}", *self.input()]
        turn = ["-metadata:s:v:0", f"rotate={rotation}"] if rotation else []
        self._run([self.ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error",
                   "-protocol_whitelist", "file", "-format_whitelist", "concat,mpegts",
                   "-f", "concat", "-i", f"file:{listed}", *sound,
                   "-map", "0:v:0", "-c:v", "copy", "-tag:v", "avc3", *turn,
                   *(["-an"] if audio is None else ["-map", "1:a:0?", *AAC]),
                   *lasting(span), *MP4_OUTPUT, f"file:{out}"], "ffmpeg")
