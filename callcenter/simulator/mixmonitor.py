"""The file one simulated MixMonitor writes, the way Asterisk 22.10.1 writes it.

Checked against a real 22.10.1 (``app_mixmonitor`` + ``format_wav``):

* the file is created at MixMonitorStart with a 44-byte WAV header whose RIFF and data
  sizes are 0, even before any frame arrives;
* audio goes through a 32 KiB stdio buffer: while the call is up the file grows in
  32768-byte steps (44, 32812, 65580 …) and the header still says 0;
* on hang-up / StopMixMonitor the rest is written and the header sizes are patched;
* what is in it is what the channels carried.  Phones (``media="phones"``) send 20 ms
  frames all call long, silence included, so the file covers the whole monitored time;
  the trace harness's Local channels (``media="local"``) carry only what is played
  (a 14 s call with ``AGENT_SAY=hello-world`` gave 1.42 s, without it 0 s).

On a full disk the file is still created but nothing goes into it (0 bytes); a disk that
fills during the call cuts the audio at the last whole block.
"""
from __future__ import annotations

import struct
import sys
from array import array
from pathlib import Path
from typing import Callable

from .voices import RATE, Conversation

BLOCK = 32768  # the stdio buffer Asterisk's file streams write through
FORMATS = ("wav", "sln", "raw", "ulaw", "alaw")  # 8 kHz formats the simulator encodes


def wav_header(data_bytes: int | None) -> bytes:
    """The 44-byte header; ``None``: the one written at open (both sizes 0)."""
    riff = 0 if data_bytes is None else 36 + data_bytes
    return (b"RIFF" + struct.pack("<I", riff) + b"WAVE"
            + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, RATE, 2 * RATE, 2, 16)
            + b"data" + struct.pack("<I", data_bytes or 0))


def _g711_tables() -> tuple[bytes, bytes]:
    def ulaw(s: int) -> int:
        sign = 0x80 if s < 0 else 0
        s = min(abs(s), 32635) + 0x84
        exp = max(0, s.bit_length() - 8)
        return ~(sign | (exp << 4) | ((s >> (exp + 3)) & 0x0F)) & 0xFF

    def alaw(s: int) -> int:
        sign = 0x80 if s >= 0 else 0
        s = min(abs(s), 32767) >> 3
        if s < 32:
            v = s >> 1
        else:
            exp = s.bit_length() - 5
            v = (exp << 4) | ((s >> exp) & 0x0F)
        return (sign | v) ^ 0x55

    signed = [i - 65536 if i >= 32768 else i for i in range(65536)]
    return bytes(ulaw(s) for s in signed), bytes(alaw(s) for s in signed)


_G711: tuple[bytes, bytes] | None = None


def encode(samples: array, fmt: str) -> bytes:
    if fmt in ("wav", "sln", "raw"):
        if sys.byteorder == "big":
            samples = array("h", samples)
            samples.byteswap()
        return samples.tobytes()
    global _G711
    if _G711 is None:
        _G711 = _g711_tables()
    table = _G711[0 if fmt == "ulaw" else 1]
    return bytes(table[s & 0xFFFF] for s in samples)


class MixMonitorFile:
    """One running MixMonitor: feed it with :meth:`play`, :meth:`bridged`, :meth:`unbridged`
    and :meth:`advance` (simulator clock seconds), end it with :meth:`close`."""

    def __init__(self, path: Path, start: float, *, media: str, disk_full: Callable[[], bool],
                 bridged_only: bool = False):
        self.path, self.start, self.media, self.disk_full = path, start, media, disk_full
        self.bridged_only = bridged_only  # option b: frames outside a bridge are dropped
        self.fmt = path.suffix.lstrip(".").lower() or "wav"
        if self.fmt not in FORMATS:
            raise ValueError(f"simulated MixMonitor cannot write format {self.fmt!r} ({path.name}); "
                             f"it writes {', '.join(FORMATS)}")
        self.pending = bytearray()
        self.data_bytes = 0     # audio bytes in the file
        self.cut = disk_full()  # no more bytes fit
        self.pos = 0            # samples rendered (phones)
        self.prompts: list[tuple[float, array]] = []
        self.talks: list[list] = []  # [conversation, from, until or None]
        self.fh = open(path, "wb", buffering=0)
        if not self.cut and self.fmt == "wav":
            self.fh.write(wav_header(None))

    # ----------------------------------------------------------------- what the channels carry
    def play(self, now: float, samples: array) -> None:
        """A sound played into the channel (or its bridge) from ``now``."""
        if self.media == "local":
            self._queue(encode(samples, self.fmt))  # only played frames reach the audiohook
        else:
            self.advance(now)
            self.prompts.append((now, samples))

    def bridged(self, now: float, conversation: Conversation) -> None:
        self.advance(now)
        self.talks.append([conversation, now, None])

    def unbridged(self, now: float) -> None:
        self.advance(now)
        for talk in self.talks:
            if talk[2] is None:
                talk[2] = now

    def advance(self, now: float) -> None:
        """Render the audio up to ``now`` (phones: silence where nobody speaks)."""
        if self.media == "local":
            return
        end = int(round((now - self.start) * RATE))
        if end <= self.pos:
            return
        buf = array("h", bytes(2 * (end - self.pos)))
        for t, clip in self.prompts:
            self._lay(buf, t, clip, None)
        for conv, since, until in self.talks:
            for t, clip in conv.until(now if until is None else until):
                if t + len(clip) / RATE > since:
                    self._lay(buf, t, clip, (since, until))
        if self.bridged_only:
            buf = self._in_bridge(buf)
        self.pos = end
        self.prompts = [(t, c) for t, c in self.prompts if self._sample(t) + len(c) > end]
        self._queue(encode(buf, self.fmt))

    def _in_bridge(self, buf: array) -> array:
        """The samples of ``buf`` taken while the channel was bridged (option ``b``)."""
        kept = array("h")
        for _conv, since, until in self.talks:
            a = max(self.pos, self._sample(since))
            b = min(self.pos + len(buf), self.pos + len(buf) if until is None else self._sample(until))
            if a < b:
                kept += buf[a - self.pos:b - self.pos]
        return kept

    def _sample(self, t: float) -> int:
        return int(round((t - self.start) * RATE))

    def _lay(self, buf: array, t: float, clip: array, window: tuple | None) -> None:
        """Copy the part of ``clip`` (starting at ``t``) that falls in ``buf`` (and ``window``)."""
        lo, hi = self.pos, self.pos + len(buf)
        if window is not None:
            lo = max(lo, self._sample(window[0]))
            if window[1] is not None:
                hi = min(hi, self._sample(window[1]))
        s = self._sample(t)
        a, b = max(lo, s), min(hi, s + len(clip))
        if a < b:
            buf[a - self.pos:b - self.pos] = clip[a - s:b - s]

    # ----------------------------------------------------------------- the file
    def _queue(self, data: bytes) -> None:
        self.pending += data
        while len(self.pending) >= BLOCK:
            self._write(bytes(self.pending[:BLOCK]))
            del self.pending[:BLOCK]

    def _write(self, data: bytes) -> None:
        if self.cut or self.disk_full():
            self.cut = True
            return
        self.fh.write(data)
        self.data_bytes += len(data)

    def close(self, now: float) -> None:
        """Hang-up / StopMixMonitor: flush the buffer, patch the WAV sizes, close."""
        try:
            self.advance(now)
            if self.pending:
                self._write(bytes(self.pending))
                self.pending.clear()
            if self.fmt == "wav" and self.fh.tell() >= 44:
                self.fh.seek(0)
                self.fh.write(wav_header(self.data_bytes))
        finally:
            self.fh.close()

    def next_flush(self) -> float:
        """Simulator time at which the buffer fills next (phones: frames arrive all the time)."""
        width = 1 if self.fmt in ("ulaw", "alaw") else 2
        missing = BLOCK - len(self.pending)
        return self.start + (self.pos + -(-missing // width)) / RATE
