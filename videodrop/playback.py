"""Whether a ready video plays as it is in current browsers, and if not, why and what
would make it play. Pure: normalised metadata in (the prober's, as the catalog stores it),
a :class:`Verdict` out.

"Plays in current browsers" is what a user can rely on in Chromium, Firefox and Safari
alike (the intersection, not the union):

* container: MP4, MOV or M4V (ISO BMFF) or WebM;
* video: H.264 (Constrained Baseline, Baseline, Main, High), VP8, VP9, AV1, in 8-bit
  4:2:0 pixels (``yuv420p``, or ``yuvj420p``: the same at full range);
* audio (the track a browser picks: the first flagged default, else the first): AAC,
  MP3, Opus, Vorbis;
* each codec in a container browsers play it in (:data:`FAMILIES`: VP8 and Vorbis in
  WebM only; H.264, AAC and MP3 in MP4/MOV only);
* an MP4/MOV's index (``moov``) before its media data (``mdat``).

HEVC is not in the intersection (Chromium and Firefox decode it only through the
platform's hardware decoder where there is one; Debian's Chromium never: sound over an
empty frame). Where it decodes (Safari; Chrome, Edge and Firefox with a hardware decoder),
8-bit 4:2:0 HEVC tagged ``hvc1`` in MP4 plays: ``verdict(metadata, hevc=True)`` judges for
such a browser, :func:`hevc_type` names the type a page asks it about (the HEVC rendition,
derive/rendition.py). Rotation and
variable frame rate are not reasons: browsers apply an MP4/MOV display matrix and play
frames at their timestamps (the corpus in ``testbed/camera_variants.py`` shows both in
Chromium).

What makes a file play, cheapest first (``needs``): ``remux`` (stream copy into a
browser container, index first, ``hvc1`` tag: only the container, the layout or the tag
is wrong), ``transcode_audio`` (the video is copied, only the audio is re-encoded),
``transcode`` (the video is re-encoded). No rendition is built yet: the record says
``"stream": "original"`` (videodrop/records.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = ["DESCRIPTIONS", "FAMILIES", "HEVC_FAMILIES", "ISO_BMFF", "UNKNOWN_FACTS", "Needs",
           "Reason", "Verdict", "hevc_copyable", "hevc_type", "played_audio", "verdict"]


class Reason(StrEnum):
    """Why a file does not play as it is (``playback.reasons[].code``)."""

    CONTAINER = "container"
    VIDEO_CODEC = "video_codec"
    PIXEL_FORMAT = "pixel_format"
    AUDIO_CODEC = "audio_codec"
    MOOV_AT_END = "moov_at_end"
    HEVC_TAG = "hevc_tag"


class Needs(StrEnum):
    """The cheapest path to a version that plays (``playback.needs``), cheapest first."""

    REMUX = "remux"
    TRANSCODE_AUDIO = "transcode_audio"
    TRANSCODE = "transcode"


#: What each reason means, for docs/api.md and the OpenAPI document.
DESCRIPTIONS: dict[Reason, str] = {
    Reason.CONTAINER: "the container is not one browsers play (they play MP4/MOV and WebM):"
                      " AVI, WMV/ASF, FLV, Matroska, MPEG-TS, 3GP, a raw H.264/HEVC stream;"
                      " or a codec sits in a container browsers do not play it in (VP8 or"
                      " Vorbis in MP4)",
    Reason.VIDEO_CODEC: "the video codec is not H.264, VP8, VP9 or AV1 (HEVC, MPEG-4 Part 2,"
                        " MPEG-2, Motion JPEG, WMV, Sorenson Spark, VP6...), or H.264 in a"
                        " profile browsers do not decode (Extended, High 4:4:4 Predictive)",
    Reason.PIXEL_FORMAT: "the pixels are not 8-bit 4:2:0 (yuv420p, yuvj420p): 10-bit, 4:2:2,"
                         " 4:4:4, RGB; Firefox and Safari do not decode them in H.264",
    Reason.AUDIO_CODEC: "the audio codec is not AAC, MP3, Opus or Vorbis (PCM such as sowt or"
                        " twos, G.711 mu-law or A-law, ADPCM, WMA, MP2, AC-3, FLAC...), or no"
                        " container browsers play holds it beside the video's codec (Vorbis"
                        " beside H.264)",
    Reason.MOOV_AT_END: "an MP4/MOV whose index (moov) follows its media data (mdat): a player"
                        " must fetch the end of the file before the first frame (an extra"
                        " round trip over a network; some players give up)",
    Reason.HEVC_TAG: "HEVC tagged hev1 in MP4/MOV: Safari plays HEVC only tagged hvc1",
}

#: The containers (``metadata.format``) that hold ISO BMFF boxes (moov, mdat).
ISO_BMFF = frozenset({"mp4", "mov", "m4v", "3gp"})


@dataclass(frozen=True)
class Family:
    """Containers browsers play, with the codecs they play in them."""

    name: str  # the container a remux writes
    containers: frozenset[str]  # metadata.format values of the family
    video: frozenset[str]  # ffprobe codec names
    audio: frozenset[str]


#: Browser containers and what browsers play in them; the first is preferred when a file
#: fits either (a remux or transcode writes MP4 unless only WebM holds the codecs).
FAMILIES = (
    Family("mp4", frozenset({"mp4", "mov", "m4v"}), frozenset({"h264", "vp9", "av1"}),
           frozenset({"aac", "mp3", "opus"})),
    Family("webm", frozenset({"webm"}), frozenset({"vp8", "vp9", "av1"}),
           frozenset({"vorbis", "opus"})),
)
#: :data:`FAMILIES` where HEVC decodes: HEVC (``hvc1``) in MP4 too.
HEVC_FAMILIES = (Family("mp4", FAMILIES[0].containers, FAMILIES[0].video | {"hevc"},
                        FAMILIES[0].audio), FAMILIES[1])
_AUDIO = frozenset().union(*(f.audio for f in FAMILIES))
_PIXELS = frozenset({"yuv420p", "yuvj420p"})
_H264_PROFILES = frozenset({"Constrained Baseline", "Baseline", "Main", "High",
                            "Progressive High", "Constrained High"})
#: Names for the details, where ffprobe's short name says little.
_NAMES = {
    "hevc": "HEVC/H.265", "mpeg4": "MPEG-4 Part 2", "msmpeg4v2": "MS MPEG-4 v2",
    "msmpeg4v3": "MS MPEG-4 v3/DivX 3", "mpeg2video": "MPEG-2", "mpeg1video": "MPEG-1",
    "mjpeg": "Motion JPEG", "wmv1": "WMV 7", "wmv2": "WMV 8", "wmv3": "WMV 9", "vc1": "VC-1",
    "flv1": "Sorenson Spark", "vp6f": "VP6", "vp6": "VP6", "h263": "H.263",
    "pcm_s16le": "16-bit PCM", "pcm_s16be": "16-bit PCM", "pcm_mulaw": "G.711 mu-law",
    "pcm_alaw": "G.711 A-law", "mp2": "MP2", "wmav2": "WMA", "wmav1": "WMA",
    "ac3": "AC-3", "eac3": "E-AC-3", "flac": "FLAC", "adpcm_ima_wav": "IMA ADPCM",
    "adpcm_g726": "G.726",
}  # fmt: skip
_CONTAINER_NAMES = {"avi": "AVI", "wmv": "WMV/ASF", "flv": "FLV", "mkv": "Matroska",
                    "ts": "MPEG-TS", "3gp": "3GP", "h264": "a raw H.264 stream",
                    "hevc": "a raw HEVC stream", "mp4": "MP4", "mov": "MOV", "m4v": "M4V",
                    "webm": "WebM"}


#: The facts ``unknown`` may name, each with the reason it would be if it turned out wrong.
UNKNOWN_FACTS: dict[str, Reason] = {
    "moov_position": Reason.MOOV_AT_END, "video_codec": Reason.VIDEO_CODEC,
    "pixel_format": Reason.PIXEL_FORMAT, "audio_codec": Reason.AUDIO_CODEC,
    "container": Reason.CONTAINER,
}


@dataclass(frozen=True)
class Verdict:
    """``playable``: True (plays as it is), False (``reasons`` says why), None (no known
    reason, but a fact in ``unknown`` could be one). ``reasons``: ``(code, detail)`` pairs,
    in :class:`Reason` order, ``detail`` naming what this file has. ``needs``: the cheapest
    path to a version that plays; None when it plays, or when an unknown fact could make
    the path dearer than the known reasons. ``unknown``: facts the catalog does not hold
    (``moov_position``: probed before it was recorded; ``video_codec``, ``pixel_format``,
    ``audio_codec``: ffprobe did not say). ``target``: the container a remux or transcode
    would write (``mp4`` or ``webm``), None when nothing is needed."""

    playable: bool | None
    reasons: tuple[tuple[Reason, str], ...]
    needs: Needs | None
    unknown: tuple[str, ...]
    target: str | None

    def as_json(self) -> dict[str, Any]:
        """The record's ``playback`` (without ``stream``, which says what is served)."""
        return {
            "playable": self.playable,
            "reasons": [{"code": code.value, "detail": detail} for code, detail in self.reasons],
            "needs": self.needs.value if self.needs else None,
            "unknown": list(self.unknown),
        }


def verdict(metadata: Mapping[str, Any], *, hevc: bool = False) -> Verdict:
    """The verdict on a ready video from its normalised metadata (``prober.metadata``'s
    shape: ``format``, ``video.codec``/``codec_tag``/``pix_fmt``/``profile``,
    ``audio_tracks[].codec``/``default``, ``moov_before_mdat``). A key missing (a record
    probed before it was kept) is an unknown fact, never a guess. ``hevc``: in a browser
    that decodes HEVC (:data:`HEVC_FAMILIES`; the record's verdict is the strict one)."""
    families = HEVC_FAMILIES if hevc else FAMILIES
    container = metadata.get("format")
    video: Mapping[str, Any] = metadata.get("video") or {}
    codec = video.get("codec") or metadata.get("codec")
    pix_fmt = video.get("pix_fmt")
    audio = played_audio(metadata.get("audio_tracks") or [])
    unknown: list[str] = []
    found: dict[Reason, str] = {}

    if codec is None:
        unknown.append("video_codec")
    elif not any(codec in f.video for f in families):
        found[Reason.VIDEO_CODEC] = f"video is {_name(codec)}"
    if pix_fmt is None:
        unknown.append("pixel_format")
    elif pix_fmt not in _PIXELS:
        found[Reason.PIXEL_FORMAT] = f"pixel format {pix_fmt}"
    elif codec == "h264" and video.get("profile") not in _H264_PROFILES | {None}:
        found[Reason.VIDEO_CODEC] = f"H.264 in its {video.get('profile')} profile"

    # The families a version that plays could be in: those holding the video codec (any,
    # when the video is re-encoded anyway).
    holding = [f for f in families if codec in f.video] or list(families)
    if audio is not None and not any(audio.get("codec") in f.audio for f in holding):
        if audio.get("codec") is None:
            unknown.append("audio_codec")
        elif audio["codec"] in _AUDIO:
            found[Reason.AUDIO_CODEC] = (f"{_name(audio['codec'])} audio beside {_name(codec)}"
                                         " video: no container browsers play holds both")
        else:
            found[Reason.AUDIO_CODEC] = f"audio is {_name(audio['codec'])}"
    fits = [f for f in holding if audio is None or audio.get("codec") in f.audio] or holding
    target = next((f for f in fits if container in f.containers), fits[0])
    if container is None:
        unknown.append("container")
    elif container not in target.containers:
        what = _CONTAINER_NAMES.get(container, container)
        if any(container in f.containers for f in families):  # the codecs need another
            held = " and ".join(_name(c) for c in (codec, audio and audio.get("codec")) if c)
            found[Reason.CONTAINER] = (f"{held} in {what}: browsers play"
                                       f" {'them' if ' and ' in held else 'it'} in"
                                       f" {_CONTAINER_NAMES[target.name]}")
        else:
            found[Reason.CONTAINER] = f"the container is {what}"
    if container in ISO_BMFF:
        moov_first = metadata.get("moov_before_mdat")
        if moov_first is None:
            unknown.append("moov_position")
        elif moov_first is False:
            found[Reason.MOOV_AT_END] = "moov after mdat"
        if codec == "hevc" and video.get("codec_tag") == "hev1":
            found[Reason.HEVC_TAG] = "HEVC tagged hev1"

    reasons = tuple((code, found[code]) for code in Reason if code in found)
    needs = _needs(set(found))
    worst = _needs(set(found) | {UNKNOWN_FACTS[u] for u in unknown})
    playable = False if reasons else (None if unknown else True)
    return Verdict(playable, reasons, needs if needs == worst else None, tuple(unknown),
                   target.name if needs else None)


#: Containers an HEVC stream is copied out of into the HEVC rendition: each keeps every
#: packet's presentation time (an AVI's would be invented, see derive/rendition.py).
HEVC_SOURCES = frozenset({"mp4", "mov", "m4v", "mkv", "ts"})


def hevc_copyable(metadata: Mapping[str, Any]) -> bool:
    """Whether the video is HEVC that a stream copy into a faststart MP4 tagged ``hvc1``
    (the HEVC rendition) makes play where HEVC decodes: 8-bit 4:2:0 HEVC in
    :data:`HEVC_SOURCES`, whose played audio (if any) an MP4 carries as it is; only the
    container, the index's place or the tag are wrong for such a browser. An unknown fact
    (pixels or audio ffprobe did not name) is no copy."""
    video = metadata.get("video") or {}
    if (video.get("codec") or metadata.get("codec")) != "hevc" \
            or metadata.get("format") not in HEVC_SOURCES:
        return False
    found = verdict(metadata, hevc=True)
    return not found.unknown and found.needs in (None, Needs.REMUX)


#: HEVC profiles by ffprobe's name: (general_profile_idc, profile compatibility flags in
#: hex, bits reversed: ISO/IEC 14496-15 Annex E).
_HEVC_PROFILES = {"Main": (1, "6"), "Main Still Picture": (3, "8")}


def hevc_type(metadata: Mapping[str, Any]) -> str:
    """The MIME type with RFC 6381 ``codecs`` of the video's HEVC rendition, what a page
    asks ``canPlayType`` (``video/mp4; codecs="hvc1.1.6.L93.B0"``: Main profile, main tier,
    level 3.1); an unknown level says 6.2 (a browser that cannot tell refuses rather than
    stalls)."""
    video = metadata.get("video") or {}
    profile, flags = _HEVC_PROFILES.get(str(video.get("profile")), _HEVC_PROFILES["Main"])
    level = video.get("level")
    level = level if isinstance(level, int) and 0 < level <= 255 else 186
    return f'video/mp4; codecs="hvc1.{profile}.{flags}.L{level}.B0"'


def _needs(reasons: set[Reason]) -> Needs | None:
    if reasons & {Reason.VIDEO_CODEC, Reason.PIXEL_FORMAT}:
        return Needs.TRANSCODE
    if Reason.AUDIO_CODEC in reasons:
        return Needs.TRANSCODE_AUDIO
    return Needs.REMUX if reasons else None


def played_audio(tracks: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The audio track a browser plays: the first flagged default, else the first."""
    return next((t for t in tracks if t.get("default")), tracks[0] if tracks else None)


def _name(codec: str | None) -> str:
    if codec is None:
        return "an unknown codec"
    return f"{_NAMES[codec]} ({codec})" if codec in _NAMES else codec
