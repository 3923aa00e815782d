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
from typing import TYPE_CHECKING, Iterable, Iterator

from callcenter.text import clean

if TYPE_CHECKING:
    from .interest import EventFilter

CRLF = b"\r\n"
# what text.clean removes, as bytes (the C0 controls but TAB, LF, CR)
_C0 = tuple(bytes((c,)) for c in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20)))
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
    # lower-cased name -> first value, made at the first get: an event handed to four or
    # five consumers is asked for ~10 headers, and each scan lower-cased every name before
    # the one asked for (Uniqueid is the 15th header of a Hangup).  Headers are not changed
    # once a message is made (the parser's, or one a test builds whole).
    _index: dict[str, str] | None = field(default=None, init=False, compare=False, repr=False)

    @classmethod
    def of(cls, *pairs: tuple[str, str], **kw: str) -> "Message":
        return cls([*pairs, *kw.items()])

    def get(self, key: str, default: str | None = None) -> str | None:
        index = self._index
        if index is None:
            index = self._index = {}
            for name, value in reversed(self.headers):  # the first of a repeated key wins
                index[name.lower()] = value
        return index.get(key.lower(), default)

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


class Deferred:
    """An event left unbuilt because it is needed only in some state (its name is in the
    filter's ``when``): its text, for the gateway to build (:meth:`build`) if, when its turn
    comes, a subscriber needs it (:meth:`callcenter.ami.interest.Routes.wanted`)."""

    __slots__ = ("name", "block", "eol")

    def __init__(self, name: str, block: str, eol: str):
        self.name, self.block, self.eol = name, block, eol

    def header(self, key: str) -> str | None:
        """The value of the one ``key: value`` line (exact case); None when it is absent,
        repeated, or written otherwise (the message must then be built to tell)."""
        block, tag = self.block, self.eol + key + ": "
        i = block.find(tag)
        if i < 0 or block.find(tag, i + 1) >= 0:
            return None
        i += len(tag)
        j = block.find(self.eol, i)
        return block[i:j] if j >= 0 else block[i:]

    def build(self) -> "Message":
        """The message, as the parser would have built it."""
        return _message(self.block, self.eol)

    def __repr__(self) -> str:
        return f"Deferred({self.name!r})"


def _message(block: str, eol: str) -> "Message":
    headers = []
    for line in block.split(eol):
        name, sep, value = line.partition(": ")
        if sep and ":" not in name:
            headers.append((name, value))
        elif line:
            name, sep, value = line.partition(":")
            headers.append((name, value) if sep else ("", line))
    return Message(headers, _has_ids(block.lower()))


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

    def feed(self, data: bytes, skip: "EventFilter | None" = None) -> list[Message | Deferred | None]:
        """Complete messages in the bytes so far (a message is decoded only when whole).

        The complete part of the buffer (up to its last empty line) is decoded
        once and split with ``str`` methods, so the per-header cost is one
        ``str.partition``: about twice panoramisk's parse rate (bench/ami_ingest.py).

        ``skip`` (:class:`callcenter.ami.interest.EventFilter`): an event nobody reads is
        not built; ``None`` stands in its place (the caller counts it, in order).  Only the
        ``Event:`` line (and a VarSet's one ``Variable:`` line) is read for that, in the
        already decoded text; anything unusual (no leading ``Event:``, two Variable
        headers in any case) is built as usual.  An event of ``skip.when`` (needed only in
        some state) is left as a :class:`Deferred` (with ``check_ids``: one without an
        ActionID/CommandID header), for the caller to build or count when its turn comes.
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
        last = buf.rfind(b"\n\r\n", pos)  # (then an LF-only end after it: the scan stops there)
        last = max(last, buf.rfind(b"\n\n", max(pos, last)))
        if last >= pos:
            stop = last + (2 if buf[last + 1] == 10 else 3)
            raw = bytes(buf[pos:stop])
            text = raw.decode("utf-8", "replace")
            pos = stop
            # (whole-region checks on the bytes, each a C scan: memchr for the 27 C0 bytes)
            if any(c in raw for c in _C0):  # decoding never makes a C0 or a surrogate
                text = clean(text.replace("\r\n", "\n"))  # NUL etc. from a caller ID would fail
                eol = "\n"                                   # the queue-call row (PostgreSQL)
            elif b"\r" not in raw:
                eol = "\n"
            elif raw.count(b"\n") == raw.count(b"\r\n"):
                eol = "\r\n"  # Asterisk's CRLF only: split on it as is (no copy with LF line ends)
            else:
                text, eol = text.replace("\r\n", "\n"), "\n"  # bare LFs too (tolerated)
            self._blocks(text, eol, skip, out.append)
        if pos:
            del buf[:pos]
        if len(buf) > MAX_MESSAGE_BYTES:
            buf.clear()
            raise ProtocolError("AMI message larger than 1 MiB without an end")
        return out

    def _blocks(self, text: str, eol: str, skip: "EventFilter | None", append) -> None:
        """The messages of ``text`` (whole messages; lines end in ``eol``, CRLF or LF)."""
        if skip is not None:
            events, variables, check_ids, when = skip.events, skip.variables, skip.check_ids, skip.when
        crlf = eol == "\r\n"
        for block in text.split(eol + eol):
            if not block:
                continue
            if len(block) > MAX_MESSAGE_BYTES and len(block) - crlf * block.count("\r\n") > MAX_MESSAGE_BYTES:
                self._buf.clear()
                raise ProtocolError("AMI message larger than 1 MiB")
            if skip is not None and block.startswith("Event: "):
                nl = block.find(eol)
                name = block[7:nl] if nl >= 0 else block[7:]
                if name not in events:
                    if name in when:
                        if not check_ids or not _has_ids(block.lower()):
                            append(Deferred(name, block, eol))
                            continue
                    elif ((name != "VarSet" and not check_ids and len(name) != 8)  # most: no more to read
                            or _skippable(block, name, eol, variables, check_ids)):
                        append(None)
                        continue
            msg = _message(block, eol)
            if msg.headers:
                append(msg)

    def iter_feed(self, data: bytes) -> Iterator[Message]:
        yield from self.feed(data)


def _skippable(block: str, name: str, eol: str, variables: frozenset[str], check_ids: bool) -> bool:
    """May the event ``name`` (not declared by anyone) go unbuilt?  Not a ``Shutdown``
    (panoramisk ends the link on it, in any case); a ``VarSet`` only when its one
    ``Variable`` header (in any case) is not a declared variable; with ``check_ids``,
    only without an ActionID/CommandID header (a list item of an action in flight)."""
    low = None
    if name == "VarSet" and variables:
        i = block.rfind("\nVariable: ")  # Asterisk puts it last but one: found at once from the end
        if i < 0:
            return False
        j = block.find(eol, i + 11)
        if block[i + 11:j if j >= 0 else len(block)] in variables:
            return False
        low = block.lower()
        if low.count("\nvariable:") != 1:
            return False
    elif len(name) == 8 and name.lower() == "shutdown":
        return False
    if check_ids:
        return not _has_ids(block.lower() if low is None else low)
    return True


def _has_ids(low: str) -> bool:
    """Can the message whose lower-cased text is ``low`` carry an ActionID/CommandID?"""
    return "actionid" in low or "commandid" in low
