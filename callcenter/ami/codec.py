"""Sans-IO AMI framing: bytes in, messages out; messages in, bytes out.

AMI is a line protocol: ``Key: Value`` lines ended by CRLF, a message ended by an
empty line, and a one-line banner (``Asterisk Call Manager/11.0.0``) on connect.
The parser keeps raw *bytes* until a whole message has arrived and only then
decodes it, so a UTF-8 character split across TCP reads (panoramisk 1.4 drops
it, see PITFALLS 1 in docs/asterisk-pitfalls.md) arrives intact.  Both the service's AMI client and the
simulator's AMI server use this module, which keeps the two honest with each other.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator

from callcenter.text import clean

CRLF = b"\r\n"
MAX_MESSAGE_BYTES = 1 << 20  # one AMI message larger than this is garbage, not data


class ProtocolError(ValueError):
    """Input that cannot be AMI; the message says what was wrong."""


@dataclass
class Message:
    """One AMI message: ordered headers, repeated keys allowed (``Variable``, ``Output``).

    ``msg["Key"]`` returns the first value (case-insensitive key, like Asterisk);
    ``msg.getall("Key")`` returns all of them in order.
    """

    headers: list[tuple[str, str]] = field(default_factory=list)
    # set by the Parser: False when no ActionID/CommandID header can be in the message (its
    # lower-cased text has neither word), so the gateway skips looking; None: not known
    has_id: bool | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, *pairs: tuple[str, str], **kw: str) -> "Message":
        return cls([*pairs, *kw.items()])

    def get(self, key: str, default: str | None = None) -> str | None:
        k = key.lower()
        for name, value in self.headers:
            if name.lower() == k:
                return value
        return default

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def getall(self, key: str) -> list[str]:
        k = key.lower()
        return [v for n, v in self.headers if n.lower() == k]

    def keys(self) -> list[str]:
        return [n for n, _ in self.headers]

    def as_dict(self) -> dict[str, str]:
        """First value per key; enough for most events."""
        out: dict[str, str] = {}
        for n, v in self.headers:
            out.setdefault(n, v)
        return out

    @property
    def event(self) -> str | None:
        return self.get("Event")

    @property
    def action_id(self) -> str | None:
        return self.get("ActionID")

    def encode(self) -> bytes:
        return encode(self.headers)


def encode(headers: Iterable[tuple[str, str]]) -> bytes:
    """Serialise headers as Asterisk does: ``Key: Value`` CRLF lines and a blank line.

    Values must not contain CR or LF: that would let data inject headers.
    """
    out = []
    for name, value in headers:
        value = "" if value is None else str(value)
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            raise ProtocolError(f"AMI header {name!r} contains a line break")
        out.append(f"{name}: {value}".encode("utf-8"))
    out.append(b"")
    out.append(b"")
    return CRLF.join(out)


def parse_header_line(line: str) -> tuple[str, str]:
    name, sep, value = line.partition(":")
    if not sep:
        # Asterisk emits a few bare lines (e.g. inside Command output); keep them readable.
        return ("", line)
    if value.startswith(" "):
        value = value[1:]
    return (name, value)


class Parser:
    """Incremental AMI parser.

    ``feed(data)`` returns the complete messages found so far.  The first line
    of a client-side stream is the banner; it is returned as ``banner``.
    Lines may end in CRLF (Asterisk) or a bare LF (tolerated, as Asterisk does).
    """

    def __init__(self, expect_banner: bool = False) -> None:
        self._buf = bytearray()
        self._lines: list[bytes] = []
        self.expect_banner = expect_banner
        self.banner: str | None = None

    def feed(self, data: bytes) -> list[Message]:
        """Complete messages in the bytes so far (a message is decoded only when whole).

        The complete part of the buffer (up to its last empty line) is decoded
        once and split with ``str`` methods, so the per-header cost is one
        ``str.partition``: about twice panoramisk's parse rate (bench/ami_ingest.py).
        """
        buf = self._buf
        buf += data
        out: list[Message] = []
        pos = 0
        if self.expect_banner and self.banner is None:
            nl = buf.find(b"\n")
            if nl < 0:
                if len(buf) > MAX_MESSAGE_BYTES:
                    buf.clear()
                    raise ProtocolError("AMI banner longer than 1 MiB without a line end")
                return out
            self.banner = bytes(buf[:nl]).rstrip(b"\r").decode("utf-8", "replace")
            pos = nl + 1
        # the last message end in the buffer: everything before it is whole messages,
        # and a message end is ASCII, so decoding that region cannot split a character
        last = max(buf.rfind(b"\n\n"), buf.rfind(b"\n\r\n"))
        if last >= pos:
            stop = last + (2 if buf[last + 1] == 10 else 3)
            text = bytes(buf[pos:stop]).decode("utf-8", "replace")
            pos = stop
            if "\r" in text:
                text = text.replace("\r\n", "\n")
            text = clean(text)  # NUL etc. from a caller ID would fail the queue-call row (PostgreSQL)
            append = out.append
            for block in text.split("\n\n"):
                if not block:
                    continue
                if len(block) > MAX_MESSAGE_BYTES:
                    buf.clear()
                    raise ProtocolError("AMI message larger than 1 MiB")
                headers = []
                for line in block.split("\n"):
                    name, sep, value = line.partition(": ")
                    if sep and ":" not in name:
                        headers.append((name, value))
                    elif line:
                        name, sep, value = line.partition(":")
                        headers.append((name, value) if sep else ("", line))
                if headers:
                    low = block.lower()
                    append(Message(headers, "actionid" in low or "commandid" in low))
        if pos:
            del buf[:pos]
        if len(buf) > MAX_MESSAGE_BYTES:
            buf.clear()
            raise ProtocolError("AMI message larger than 1 MiB without an end")
        return out

    def iter_feed(self, data: bytes) -> Iterator[Message]:
        yield from self.feed(data)
