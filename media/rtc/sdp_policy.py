"""The SDP allow-list, checked before ``setRemoteDescription``: what a call may carry, and nothing else.

A description may hold at most one audio section (Opus), one video section (VP8 or H264) and one data
channel (SCTP over DTLS), all over ICE+DTLS. Offers may list further codecs beside the required one (browsers
do; aiortc answers with the allowed ones only); answers must pick an allowed codec first. Anything else --
other media kinds, plain RTP, a missing required codec, oversized or binary text -- is refused with a reason.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

MAX_SDP_BYTES = 32 * 1024
MAX_SDP_LINES = 1000
RTP_PROTOCOLS = {"UDP/TLS/RTP/SAVPF", "UDP/TLS/RTP/SAVP"}
SCTP_PROTOCOLS = {"UDP/DTLS/SCTP", "DTLS/SCTP", "TCP/DTLS/SCTP"}
ALLOWED_CODECS = {"audio": {"opus"}, "video": {"vp8", "h264"}}
CODEC_NAMES = {"opus": "Opus", "vp8": "VP8", "h264": "H264"}
_LINE = re.compile(r"^[a-z]=[\x20-\x7e\t]*$")
_RTPMAP = re.compile(r"^a=rtpmap:(\d{1,3}) ([A-Za-z0-9_.-]+)/(\d+)")


class SdpPolicyError(ValueError):
    """The description carries something the call does not allow."""


@dataclass
class _Section:
    kind: str
    protocol: str
    formats: list[str]
    codecs: dict[str, str] = field(default_factory=dict)  # payload type -> codec name as written


def _sections(sdp: str) -> list[_Section]:
    if len(sdp.encode("utf-8", "replace")) > MAX_SDP_BYTES:
        raise SdpPolicyError(f"description larger than {MAX_SDP_BYTES} bytes")
    lines = [line for line in sdp.replace("\r\n", "\n").split("\n") if line]
    if len(lines) > MAX_SDP_LINES:
        raise SdpPolicyError(f"description has more than {MAX_SDP_LINES} lines")
    if not lines or lines[0] != "v=0":
        raise SdpPolicyError("not a session description (it must start with v=0)")
    sections: list[_Section] = []
    for line in lines:
        if not _LINE.match(line):
            raise SdpPolicyError(f"malformed line {line[:40]!r}")
        if line.startswith("m="):
            parts = line[2:].split()
            if len(parts) < 4:
                raise SdpPolicyError(f"malformed media line {line[:60]!r}")
            sections.append(_Section(parts[0], parts[2], parts[3:]))
        elif sections and (match := _RTPMAP.match(line)):
            sections[-1].codecs[match.group(1)] = match.group(2)
    if not sections:
        raise SdpPolicyError("description has no media sections")
    return sections


def check_sdp(sdp: str, kind: str) -> None:
    """Raise :class:`SdpPolicyError` unless ``sdp`` (an ``offer`` or ``answer``) fits the allow-list."""
    sections = _sections(sdp)
    counts = Counter(section.kind for section in sections)
    for media_kind, count in counts.items():
        if media_kind not in ("audio", "video", "application"):
            raise SdpPolicyError(f"media kind {media_kind!r} is not allowed (audio, video, one data channel)")
        if count > 1:
            raise SdpPolicyError(f"{count} {media_kind} sections; at most one is allowed")
    for section in sections:
        if section.kind == "application":
            if section.protocol not in SCTP_PROTOCOLS:
                raise SdpPolicyError(f"data section over {section.protocol!r}; only SCTP over DTLS is allowed")
            continue
        if section.protocol not in RTP_PROTOCOLS:
            raise SdpPolicyError(f"{section.kind} over {section.protocol!r}; only encrypted RTP (DTLS-SRTP) is allowed")
        if section.formats == ["0"] and not section.codecs:
            continue  # a rejected (port 0) section carries no codecs
        allowed = ALLOWED_CODECS[section.kind]
        names = " or ".join(CODEC_NAMES[c] for c in sorted(allowed))
        offered = [section.codecs.get(pt, "") for pt in section.formats]
        if kind == "answer" and offered[0].lower() not in allowed:
            raise SdpPolicyError(f"{section.kind} answered with {offered[0] or 'an unknown codec'}; allowed: {names}")
        if not allowed.intersection(name.lower() for name in offered):
            raise SdpPolicyError(f"{section.kind} section without {names}")
