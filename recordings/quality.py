"""Is a finished recording file worth keeping?  Pure: a fingerprint and a call length in,
a catalogue status and a reason out.

A full disk does not make Asterisk fail MixMonitor or RECORD FILE: the file is created
(a directory entry still fits) and nothing is written into it, so it ends 0 bytes long;
a disk that fills during the call cuts the audio short.  Either must be ``failed`` (shown
to supervisors, reported by ``recordings verify``), never ``ready``.

"Far shorter than the call" is only judged for calls of at least ``SHORT_CHECK_AFTER``
seconds: on a test rig whose phones are Local channels the only audio is what is played,
so a short call's file legitimately holds less audio than the call lasted.
"""
from __future__ import annotations

from .wav import FileInfo

WAV_HEADER_BYTES = 44
SHORT_CHECK_AFTER = 60.0  # s of call before "far shorter than the call" is judged
MIN_AUDIO_RATIO = 0.1  # audio below this share of the call length: cut short


def judge(info: FileInfo, fmt: str, call_seconds: float | None) -> tuple[str, str]:
    """``("ready", "")`` or ``("failed", why)`` for the file described by ``info``."""
    if info.size == 0:
        return "failed", "empty file (0 bytes): disk full or not writable?"
    if fmt.lower() == "wav" and info.duration is None:
        return "failed", f"not a readable WAV file ({info.size} bytes)"
    if (call_seconds is not None and info.duration is not None and call_seconds >= SHORT_CHECK_AFTER
            and info.duration < MIN_AUDIO_RATIO * call_seconds):
        return "failed", (f"{info.duration:.1f} s of audio for a {call_seconds:.0f} s call: "
                          "cut short (disk full?)")
    return "ready", ""
