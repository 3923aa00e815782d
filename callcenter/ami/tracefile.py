"""Readers for the recorded Asterisk traces (``tests/fixtures/asterisk-traces``).

``.ami`` files are Asterisk's exact bytes with ``#`` annotation lines between
messages: ``# t=S`` (arrival time), ``# >>> t=S sent:`` + ``# >>> Key: value``
(an action the recorder sent), ``# note:`` and ``# t=S connection closed``.
``.agi`` files alternate ``# t=S <<<``/``# t=S >>>`` markers with the exact
bytes received from / sent to Asterisk.  Tests replay these over TCP and compare
the simulator with them, so the reader keeps bytes exact.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .codec import Message, Parser, parse_header_line

_T = re.compile(rb"^# t=([0-9.]+)")
_SENT = re.compile(rb"^# >>> t=([0-9.]+) sent:")
_EPOCH = re.compile(rb"connect at epoch ([0-9.]+)")


def traces_dir() -> Path:
    """The recorded traces: ``$CALLCENTER_TRACES`` or the checkout's ``tests/fixtures/asterisk-traces``.

    They are test data (recordings of a real Asterisk 22.10.1), not shipped in the wheel;
    a missing directory is an error naming it, so a parametrised test never silently
    collects nothing.
    """
    env = os.environ.get("CALLCENTER_TRACES")
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "asterisk-traces"
    if not path.is_dir():
        raise FileNotFoundError(f"recorded Asterisk traces not found: {path} (set CALLCENTER_TRACES)")
    return path


@dataclass
class AmiEntry:
    kind: str  # "banner" | "recv" | "sent" | "note" | "closed"
    t: float
    raw: bytes = b""
    message: Message | None = None
    text: str = ""


@dataclass
class AmiTrace:
    path: Path
    epoch: float | None
    entries: list[AmiEntry] = field(default_factory=list)

    @property
    def received(self) -> list[AmiEntry]:
        return [e for e in self.entries if e.kind == "recv"]

    @property
    def events(self) -> list[Message]:
        return [e.message for e in self.received if e.message and e.message.event]

    @property
    def sent(self) -> list[Message]:
        return [e.message for e in self.entries if e.kind == "sent" and e.message]

    def stream(self) -> bytes:
        """The original byte stream Asterisk sent (banner included)."""
        return b"".join(e.raw for e in self.entries if e.kind in ("banner", "recv"))


def read_ami(path: str | Path) -> AmiTrace:
    path = Path(path)
    data = path.read_bytes()
    trace = AmiTrace(path=path, epoch=None)
    t = 0.0
    pending_sent: list[bytes] | None = None
    sent_t = 0.0
    body = bytearray()

    def flush_body() -> None:
        nonlocal body
        if not body:
            return
        raw = bytes(body)
        body = bytearray()
        if raw.startswith(b"Asterisk Call Manager") or (
            not trace.received and b":" not in raw.split(b"\r\n", 1)[0]
        ):
            trace.entries.append(AmiEntry("banner", t, raw, text=raw.decode().strip()))
            return
        parser = Parser()
        msgs = parser.feed(raw)
        if len(msgs) != 1:
            # Several messages in one annotated block: split them keeping bytes exact.
            offset = 0
            for chunk in raw.split(b"\r\n\r\n"):
                if not chunk:
                    continue
                part = chunk + b"\r\n\r\n"
                offset += len(part)
                trace.entries.append(AmiEntry("recv", t, part, Parser().feed(part)[0]))
            return
        trace.entries.append(AmiEntry("recv", t, raw, msgs[0]))

    def flush_sent() -> None:
        nonlocal pending_sent
        if pending_sent is not None:
            headers = [parse_header_line(l.decode()) for l in pending_sent]
            trace.entries.append(AmiEntry("sent", sent_t, message=Message(headers)))
            pending_sent = None

    for line in data.splitlines(keepends=True):
        if line.startswith(b"#"):
            flush_body()
            m = _EPOCH.search(line)
            if m and trace.epoch is None:
                trace.epoch = float(m.group(1))
            m = _SENT.match(line)
            if m:
                flush_sent()
                sent_t = float(m.group(1))
                pending_sent = []
                continue
            if line.startswith(b"# >>> "):
                if pending_sent is not None:
                    pending_sent.append(line[6:].rstrip(b"\n"))
                continue
            flush_sent()
            m = _T.match(line)
            if m:
                t = float(m.group(1))
                if b"connection closed" in line:
                    trace.entries.append(AmiEntry("closed", t))
                continue
            if line.startswith(b"# note:"):
                trace.entries.append(AmiEntry("note", t, text=line[7:].decode().strip()))
            continue
        flush_sent()
        body += line
    flush_body()
    flush_sent()
    return trace


@dataclass
class AgiEntry:
    direction: str  # "<<<" from Asterisk, ">>>" to Asterisk, "note"
    t: float
    raw: bytes = b""
    text: str = ""


_AGI_MARK = re.compile(rb"^# t=([0-9.]+) (<<<|>>>)")


def read_agi(path: str | Path) -> list[AgiEntry]:
    """Entries of a FastAGI transcript with exact bytes per direction."""
    entries: list[AgiEntry] = []
    current: AgiEntry | None = None
    for line in Path(path).read_bytes().splitlines(keepends=True):
        if line.startswith(b"# "):
            m = _AGI_MARK.match(line)
            if m:
                current = AgiEntry(m.group(2).decode(), float(m.group(1)))
                entries.append(current)
            else:
                current = None
                if line.startswith(b"# note:"):
                    entries.append(AgiEntry("note", 0.0, text=line[7:].decode().strip()))
            continue
        if current is not None:
            current.raw += line
    return entries
