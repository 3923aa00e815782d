"""Pause reasons: the hospital's codes with a zh and an en label (``[web] pause_reasons``).

Each item is ``code=中文|English`` (e.g. ``"meal=用餐|Meal"``).  The code is what the agent
desk sends to Asterisk as ``QueuePause`` ``Reason`` (so it is what ``PausedReason`` and
``queue_log`` carry) and what the API accepts; the labels are what people read: the agent
desk and the wallboard show :meth:`PauseReasons.label`.  Pure: no I/O.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from dialer.reservations import is_dialer_reason

_CODE = re.compile(r"[a-z][a-z0-9_]{0,31}")


@dataclass(frozen=True)
class PauseReason:
    code: str
    zh: str
    en: str


def parse_item(item: object) -> PauseReason:
    """One ``code=中文|English`` item; ValueError saying what is wrong with it."""
    if not isinstance(item, str):
        raise ValueError(f"{item!r} must be a string 'code=中文|English'")
    code, eq, labels = item.partition("=")
    code = code.strip()
    if not eq or "|" not in labels:
        raise ValueError(f"{item!r} must be 'code=中文|English'")
    if not _CODE.fullmatch(code):
        raise ValueError(f"{item!r}: the code must be 1-32 of a-z, 0-9, _ starting with a letter")
    zh, _, en = labels.partition("|")
    zh, en = zh.strip(), en.strip()
    if not zh or not en or "|" in en:
        raise ValueError(f"{item!r}: needs one Chinese and one English label, 'code=中文|English'")
    return PauseReason(code, zh, en)


def problem(items: list) -> str | None:
    """The config check of ``[web] pause_reasons``: None when valid, else what is wrong
    (naming the item by its position, from 1)."""
    if not items:
        return "needs at least one pause reason 'code=中文|English'"
    seen: set[str] = set()
    for n, item in enumerate(items, 1):
        try:
            r = parse_item(item)
        except ValueError as exc:
            return f"item {n}: {exc}"
        if r.code in seen:
            return f"item {n}: code {r.code!r} appears twice"
        seen.add(r.code)
    return None


class PauseReasons:
    """The configured reasons, in the configured order."""

    def __init__(self, items: list[str]):
        bad = problem(items)
        if bad:
            raise ValueError(bad)
        self.reasons = [parse_item(i) for i in items]
        self._by_code = {r.code: r for r in self.reasons}

    @classmethod
    def from_config(cls, config) -> "PauseReasons":
        return cls(config.values["web"]["pause_reasons"])

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(r.code for r in self.reasons)

    def label(self, code: str, lang: str) -> str:
        """What a person reads for the ``PausedReason`` Asterisk reports: the configured
        label; the dialer's reservation (``dialer:<attempt>``) as such; a reason set outside
        the desk (CLI ``queue pause ... reason lunch``) is not a code: shown as Asterisk has it."""
        r = self._by_code.get(code)
        if r is None:
            if is_dialer_reason(code):   # the dialer holds the agent for a patient it dials
                return "外呼预留" if lang == "zh" else "Held for an outbound call"
            return code
        return r.zh if lang == "zh" else r.en

    def options(self, lang: str) -> list[dict]:
        return [{"code": r.code, "label": self.label(r.code, lang)} for r in self.reasons]
