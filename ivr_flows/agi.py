"""FastAGI wire format, sans-IO: the environment block, reply lines, quoting.

Everything here is pure (bytes in, values out) so both the server (panoramisk's,
adapted in ``fastagi.py``) and the simulated Asterisk
(``callcenter/simulator/agi_client.py``) share one definition of the protocol,
checked against the recorded ``.agi`` traces:

* the environment is ``agi_key: value`` lines ended by an empty line (bare LF);
* a reply is ``200 result=<r>[ (<data>)][ endpos=<n>]``, ``510 ...``, ``511 ...`` or
  a multi-line ``520-...`` / ``520 End of proper usage.`` block;
* after a hang-up Asterisk sends one unsolicited ``HANGUP`` line, which may
  arrive before the reply to the command in flight (07b, 07c).

Caller-supplied text (caller ID, DTMF, channel variables) only ever reaches a
command through :func:`quote`, which drops control characters (so a newline can
never start a second command) and backslash-escapes ``"`` and ``\\`` the way
Asterisk's ``parse_args`` reads them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from callcenter.text import clean

# Order of the environment block as sent by Asterisk 22 (traces 04, 07*).
ENV_ORDER = (
    "agi_network", "agi_network_script", "agi_request", "agi_channel", "agi_language",
    "agi_type", "agi_uniqueid", "agi_version", "agi_callerid", "agi_calleridname",
    "agi_callingpres", "agi_callingani2", "agi_callington", "agi_callingtns", "agi_dnid",
    "agi_rdnis", "agi_context", "agi_extension", "agi_priority", "agi_enhanced",
    "agi_accountcode", "agi_threadid",
)
MAX_ENV_BYTES = 64 * 1024
DEAD_CHANNEL = "Command Not Permitted on a dead channel or intercept routine"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_BUT_LF = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")
_ENV_LINE = re.compile(r"^(agi_[a-z0-9_]+): ?(.*)$", re.MULTILINE)  # a good line: key, value
_SCRIPT = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")


class EnvError(ValueError):
    """The environment block is unusable (too big, no blank line)."""


@dataclass
class Env:
    values: dict[str, str]
    malformed: int = 0  # lines that were not ``agi_key: value``

    def get(self, key: str, default: str = "") -> str:
        return self.values.get(key, default)

    @property
    def script(self) -> str | None:
        """The flow name: ``agi_network_script``, else the path of ``agi_request``.

        Only ``[A-Za-z0-9_-]`` names are accepted, so a request path can never
        reach the file system (``../../etc``)."""
        name = self.values.get("agi_network_script", "")
        if not name:
            req = self.values.get("agi_request", "")
            m = re.match(r"^agi://[^/]*/([^?]*)", req)
            name = m.group(1) if m else ""
        name = name.split("?", 1)[0].strip("/")
        return name if _SCRIPT.match(name) else None


def parse_env(block: bytes) -> Env:
    """Parse ``agi_key: value`` lines; bad lines are counted, never fatal.

    Control characters (CR, NUL, ...) are dropped from every line (a NUL in a caller ID:
    no row could be stored); the block is decoded and cleaned once, not line by line
    (the same text: LF never occurs inside a UTF-8 sequence)."""
    values: dict[str, str] = {}
    text = block.decode("utf-8", "replace")
    if _CONTROL_BUT_LF.search(text) is not None:
        text = _CONTROL_BUT_LF.sub("", text)
    # One pass for the good lines (``agi_key:`` up to the first colon, one space dropped),
    # not a partition and a key match per line: the rest of the non-empty lines are bad.
    pairs = _ENV_LINE.findall(text)
    lines = text.split("\n")
    bad = len(lines) - lines.count("") - len(pairs)
    for key, value in pairs:
        if key in values:  # first wins: an injected line after agi_calleridname changes nothing
            bad += 1
            continue
        values[key] = value
    return Env(values, bad)


def encode_env(values: dict[str, str]) -> bytes:
    """The block as Asterisk writes it: known keys in Asterisk's order, then ``agi_arg_N``."""
    out = []
    for key in ENV_ORDER:
        if key in values:
            out.append(f"{key}: {values[key]}\n")
    for key, value in values.items():
        if key not in ENV_ORDER:
            out.append(f"{key}: {value}\n")
    return ("".join(out) + "\n").encode("utf-8")


def clean(value: object) -> str:
    """Text with every control character (CR, LF, NUL, ...) removed."""
    return _CONTROL.sub("", str(value))


def quote(value: object) -> str:
    """One AGI argument, always double-quoted, safe for any input."""
    text = clean(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def command(*words: object) -> str:
    """Join a command line; every word after the verb must be already safe or quoted."""
    line = " ".join(str(w) for w in words)
    if "\n" in line or "\r" in line or "\x00" in line:
        raise ValueError("AGI command contains a line break")
    return line


def parse_args(line: str) -> list[str]:
    """Split a command line exactly like Asterisk's ``parse_args`` (res_agi.c)."""
    args: list[str] = []
    cur: list[str] | None = None
    quoted = escaped = False
    for ch in line:
        if ch == '"' and not escaped:
            quoted = not quoted
            if quoted and cur is None:
                cur = []
                args.append("")
            continue
        if ch in " \t" and not quoted and not escaped:
            if cur is not None:
                args[-1] = "".join(cur)
            cur = None
            continue
        if ch == "\\" and not escaped:
            escaped = True
            continue
        if cur is None:
            cur = []
            args.append("")
        cur.append(ch)
        escaped = False
    if cur is not None:
        args[-1] = "".join(cur)
    return args


@dataclass
class Reply:
    """One complete AGI reply."""

    code: int
    result: str = ""
    data: str | None = None  # text in parentheses: value, "timeout", "dtmf", "hangup"
    endpos: int | None = None
    lines: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.code == 200

    @property
    def dead(self) -> bool:
        """The channel is gone: 511, or ``result=-1`` from a media command."""
        return self.code == 511 or (self.code == 200 and self.result == "-1")

    @property
    def digit(self) -> str | None:
        """STREAM FILE / WAIT FOR DIGIT / RECORD FILE: the ASCII code as a digit."""
        try:
            code = int(self.result)
        except ValueError:
            return None
        return chr(code) if code > 0 else None


R200 = re.compile(r"^200 result=(\S*)(?: \((.*)\))?(?: endpos=(-?\d+))?\s*$")


def parse_reply_line(line: str) -> Reply:
    m = R200.match(line)
    if m:
        endpos = int(m.group(3)) if m.group(3) is not None else None
        return Reply(200, m.group(1), m.group(2), endpos, [line])
    m = re.match(r"^(\d{3})[ -]?(.*)$", line)
    if m:
        return Reply(int(m.group(1)), "", m.group(2), None, [line])
    return Reply(0, "", line, None, [line])
