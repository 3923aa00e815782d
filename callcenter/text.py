"""Characters no store keeps: found at the boundaries, before they reach a database.

PostgreSQL refuses NUL in text (the whole transaction fails: an IVR session row, a
voice message lost) and no driver can encode a lone surrogate (a JSON ``"\\ud800"``);
other C0 control characters are storable but corrupt CSV exports and log lines.
Input from people (web forms, JSON, imports) is refused with the field named; input
from the PBX (AMI headers, FastAGI variables) is cleaned, since the call must go on.
"""
from __future__ import annotations

import re

_UNSTORABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


def unstorable(value: str) -> str | None:
    """Why ``value`` cannot be stored (the first bad character named), or None."""
    m = _UNSTORABLE.search(value)
    if m is None:
        return None
    ch = m.group(0)
    what = "NUL" if ch == "\x00" else ("a lone surrogate" if "\ud800" <= ch <= "\udfff" else "a control character")
    return f"contains {what} (U+{ord(ch):04X}) at position {m.start() + 1}"


def clean(value: str) -> str:
    """``value`` without the characters :func:`unstorable` names."""
    return _UNSTORABLE.sub("", value) if _UNSTORABLE.search(value) else value
