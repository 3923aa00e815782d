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
    """Masks the message *and* the traceback (an exception's text carries SQL parameters,
    AMI lines, caller IDs: what the code never meant to log)."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        masked = mask_text(msg)
        if masked != msg:
            record.msg, record.args = masked, ()
        if record.exc_info and record.exc_info[0] is not None:
            if not record.exc_text:
                record.exc_text = _FORMATTER.formatException(record.exc_info)
            record.exc_text = mask_text(record.exc_text)  # formatters print exc_text when set
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        return True


_FORMATTER = logging.Formatter()


class RepeatFilter(logging.Filter):
    """One line per ``interval`` for a record that keeps repeating (same logger, level,
    message and exception type), then the next one says how many were dropped.

    A process out of file descriptors logs the same accept() traceback thousands of
    times a second; this keeps the log readable and the disk from filling.  Time is the
    record's own ``created`` stamp."""

    def __init__(self, interval: float = 60.0, max_keys: int = 1000):
        super().__init__()
        self.interval = interval
        self.max_keys = max_keys
        self._seen: dict[tuple, list] = {}   # key -> [first time of the window, dropped]

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else ""
        key = (record.name, record.levelno, record.getMessage()[:300], exc)
        entry = self._seen.get(key)
        if entry is not None and record.created - entry[0] < self.interval:
            entry[1] += 1
            return False
        if entry is not None and entry[1]:
            record.msg = f"{record.getMessage()} [{entry[1]} more like this in the last {self.interval:g} s]"
            record.args = ()
        if len(self._seen) >= self.max_keys and key not in self._seen:
            self._seen.pop(next(iter(self._seen)))
        self._seen[key] = [record.created, 0]
        return True


class RepeatLimiter:
    """The same idea for code that knows its repeats (a refused connection, a cut client):
    the first occurrence of ``key`` is logged, later ones within ``interval`` (on the
    injected clock) are counted and reported with the next line."""

    def __init__(self, logger: logging.Logger, clock, interval: float = 60.0):
        self.logger = logger
        self.clock = clock
        self.interval = interval
        self._seen: dict[str, list] = {}

    def log(self, level: int, key: str, msg: str, *args) -> bool:
        now = self.clock.seconds()
        entry = self._seen.get(key)
        if entry is not None and now - entry[0] < self.interval:
            entry[1] += 1
            return False
        dropped = entry[1] if entry is not None else 0
        self._seen[key] = [now, 0]
        if dropped:
            msg += f" ({dropped} more in the last {self.interval:g} s)"
        self.logger.log(level, msg, *args)
        return True

    def warning(self, key: str, msg: str, *args) -> bool:
        return self.log(logging.WARNING, key, msg, *args)

    def info(self, key: str, msg: str, *args) -> bool:
        return self.log(logging.INFO, key, msg, *args)


def setup_logging(level: str = "INFO") -> None:
    root = logging.getLogger()
    if any(getattr(h, "_callcenter", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler._callcenter = True  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RepeatFilter())
    handler.addFilter(MaskingFilter())
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    logging.getLogger("alembic").setLevel(logging.WARNING)
