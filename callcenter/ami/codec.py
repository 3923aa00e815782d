"""Sans-IO AMI framing: bytes in, messages out; messages in, bytes out.

AMI is a line protocol: ``Key: Value`` lines ended by CRLF, a message ended by an
empty line, and a one-line banner (``Asterisk Call Manager/11.0.0``) on connect.
The parser keeps raw *bytes* until a whole message has arrived and only then
decodes it, so a UTF-8 character split across TCP reads (panoramisk 1.4 drops
it, see PITFALLS 1) arrives intact.  Both the service's AMI client and the
simulator's AMI server use this module, which keeps the two honest with each other.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator

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
        self._buf += data
        out: list[Message] = []
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                if len(self._buf) > MAX_MESSAGE_BYTES:
                    self._buf.clear()
                    self._lines.clear()
                    raise ProtocolError("AMI line longer than 1 MiB without a line end")
                return out
            raw = bytes(self._buf[:nl])
            del self._buf[: nl + 1]
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            if self.expect_banner and self.banner is None:
                self.banner = raw.decode("utf-8", "replace")
                continue
            if raw:
                self._lines.append(raw)
                if sum(map(len, self._lines)) > MAX_MESSAGE_BYTES:
                    self._lines.clear()
                    raise ProtocolError("AMI message larger than 1 MiB")
                continue
            if not self._lines:
                continue  # stray blank line between messages
            lines, self._lines = self._lines, []
            out.append(
                Message([parse_header_line(b.decode("utf-8", "replace")) for b in lines])
            )

    def iter_feed(self, data: bytes) -> Iterator[Message]:
        yield from self.feed(data)
