"""Logging set-up and masking of patient data and secrets.

Phone numbers and names are sensitive: log lines pass through
:class:`MaskingFilter`, which hides all but the last 4 digits of anything that
looks like a phone number, and code logs names through :func:`mask_name`.
"""
from __future__ import annotations

import logging
import re
import sys

_PHONE = re.compile(r"(?<![\w.])(\+?\d[\d \-]{5,}\d)(?![\w.])")
_SECRET = re.compile(r"(?i)((?:secret|password|passwd|token)\s*[:=]\s*)(\S+)")


def mask_number(number: str | None) -> str:
    """``13800138001`` → ``*******8001``; short or empty values are fully masked."""
    if not number:
        return ""
    digits = re.sub(r"\D", "", number)
    if len(digits) <= 4:
        return "*" * len(number)
    return "*" * (len(digits) - 4) + digits[-4:]


def mask_name(name: str | None) -> str:
    """``王小明`` → ``王**``; ``Li Na`` → ``L****``."""
    if not name:
        return ""
    return name[0] + "*" * (len(name) - 1)


# Not phone numbers: complaint ticket numbers (TS-2026-000123) and ISO dates/times.
_KEEP = re.compile(r"(?:TS-\d{4}-\d{6}|\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?)(?!\d)")


def mask_text(text: str) -> str:
    text = _SECRET.sub(lambda m: m.group(1) + "***", text)
    keep = [(m.start(), m.end()) for m in _KEEP.finditer(text)]

    def sub(m: re.Match) -> str:
        if any(a <= m.start(1) and m.end(1) <= b for a, b in keep):  # wholly inside: keep
            return m.group(0)
        return mask_number(m.group(1))

    return _PHONE.sub(sub, text)


class MaskingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        masked = mask_text(msg)
        if masked != msg:
            record.msg, record.args = masked, ()
        return True


def setup_logging(level: str = "INFO") -> None:
    root = logging.getLogger()
    if any(getattr(h, "_callcenter", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler._callcenter = True  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(MaskingFilter())
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    logging.getLogger("alembic").setLevel(logging.WARNING)
