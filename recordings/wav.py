"""WAV header parsing and file fingerprints (size, duration, sha256).

Blocking file I/O: call these from a worker thread, never on the event loop.
Asterisk rewrites the RIFF/data sizes when MixMonitor closes the file; a file
still being written (or cut short) may carry 0 or a too-large data size, so
the duration uses the bytes actually present after the header.
"""
from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path


class WavError(ValueError):
    pass


@dataclass(frozen=True)
class WavInfo:
    channels: int
    sample_rate: int
    bits: int
    byte_rate: int
    data_offset: int
    data_bytes: int

    @property
    def duration(self) -> float:
        return self.data_bytes / self.byte_rate if self.byte_rate else 0.0


def parse_header(head: bytes, file_size: int) -> WavInfo:
    """Parse the RIFF chunks in ``head`` (the first bytes of a file of ``file_size`` bytes)."""
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise WavError("not a RIFF/WAVE file")
    pos, fmt = 12, None
    while pos + 8 <= len(head):
        cid, size = head[pos:pos + 4], struct.unpack("<I", head[pos + 4:pos + 8])[0]
        body = pos + 8
        if cid == b"fmt ":
            if size < 16 or body + 16 > len(head):
                raise WavError("truncated fmt chunk")
            _tag, ch, rate, brate, _align, bits = struct.unpack("<HHIIHH", head[body:body + 16])
            fmt = (ch, rate, bits, brate)
        elif cid == b"data":
            if fmt is None:
                raise WavError("data chunk before fmt chunk")
            present = max(0, file_size - body)
            data = size if 0 < size <= present else present
            return WavInfo(fmt[0], fmt[1], fmt[2], fmt[3], body, data)
        pos = body + size + (size & 1)
    raise WavError("no data chunk in the first bytes")


@dataclass(frozen=True)
class FileInfo:
    size: int
    duration: float | None
    sha256: str


def inspect_file(path: Path, fmt: str = "wav", chunk: int = 1 << 20) -> FileInfo:
    """Size, duration (WAV only; None when unknown) and sha256, reading the file once."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        head = fh.read(4096)
        h.update(head)
        while True:
            block = fh.read(chunk)
            if not block:
                break
            h.update(block)
        size = fh.tell()
    duration = None
    if fmt.lower() == "wav":
        try:
            duration = round(parse_header(head, size).duration, 3)
        except WavError:
            duration = None
    return FileInfo(size, duration, h.hexdigest())


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def write_wav(path: Path, pcm: bytes, rate: int = 8000, bits: int = 16, channels: int = 1) -> None:
    """A minimal PCM WAV (tests, fakes)."""
    brate = rate * channels * bits // 8
    header = b"RIFF" + struct.pack("<I", 36 + len(pcm)) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, rate, brate, channels * bits // 8, bits)
    header += b"data" + struct.pack("<I", len(pcm))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + pcm)
