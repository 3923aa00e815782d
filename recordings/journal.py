"""The recordings' durable local journal: what capture did, before the database knows.

MixMonitor must start when the call is answered, not when the database answers (a 90 s
lock lost 46 of 49 recordings: rows that could not be written were not recorded, and
MixMonitor sent after the lock reached a channel that had gone).  So capture appends a
fact here (one JSON line, flushed and fsync'd), acts on Asterisk at once, and the
catalogue follows from these facts whenever the database takes them, also after a restart.

Facts, by ``op``: ``start`` (everything the catalogue row needs), ``refused`` (Asterisk
refused the MixMonitor), ``ended`` (the caller's hang-up time), ``settled`` (the row has
its final status: the recording needs nothing more).  :func:`unsettled` folds them into
the recordings still owed to the catalogue; :meth:`Journal.compact` drops the rest.

Blocking file I/O: call from a worker thread (the event loop's side, many facts per
fsync, is :mod:`.journal_writes`).  A torn last line (a crash mid-append) is skipped; any
other unreadable line is an error naming the file and line.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OPS = ("start", "refused", "ended", "settled")


class JournalError(ValueError):
    """A journal line that is not a fact (names file and line)."""


@dataclass
class Owed:
    """One recording the catalogue has not settled yet."""

    start: dict
    refused: str | None = None
    ended: float | None = None
    extra: dict = field(default_factory=dict)


def unsettled(entries: list[dict]) -> dict[str, Owed]:
    """Pure: uniqueid -> what is still owed, in the order the recordings started."""
    out: dict[str, Owed] = {}
    for e in entries:
        uid = e["uid"]
        if e["op"] == "start":
            out[uid] = Owed(e)
        elif uid in out:
            if e["op"] == "refused":
                out[uid].refused = e.get("error") or "refused"
            elif e["op"] == "ended":
                out[uid].ended = float(e["t"])
            elif e["op"] == "settled":
                del out[uid]
    return out


class Journal:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._fh: Any = None

    def open(self) -> list[dict]:
        """Read what is there (facts of a previous run) and open for appending."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        entries = self.read()
        self._fh = open(self.path, "a", encoding="utf-8")
        return entries

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        lines = self.path.read_text(encoding="utf-8").split("\n")
        out = []
        for no, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                e = json.loads(line)
                if e.get("op") not in OPS or not isinstance(e.get("uid"), str):
                    raise ValueError(f"op must be one of {', '.join(OPS)}, with a uid")
            except ValueError as exc:
                if no == len(lines):  # the last line, not ended by a newline: a torn append
                    break
                raise JournalError(f"{self.path}:{no}: not a recordings journal fact: {exc}") from None
            out.append(e)
        return out

    def append(self, entry: dict) -> None:
        """One fact, on disk (fsync) when this returns."""
        self.append_many([entry])

    def append_many(self, entries: list[dict]) -> None:
        """Facts in this order, all on disk when this returns: one write and one fsync for
        them all (a burst of answered calls costs one disk flush, not one per call)."""
        if self._fh is None:
            raise RuntimeError(f"recordings journal {self.path} is not open")
        self._fh.write("".join(json.dumps(e, ensure_ascii=False, separators=(",", ":")) + "\n"
                               for e in entries))
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def compact(self) -> int:
        """Rewrite the file with only the facts of unsettled recordings (atomic rename);
        returns how many recordings are still owed."""
        entries = self.read()
        owed = unsettled(entries)
        keep = [e for e in entries if e["uid"] in owed]
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            for e in keep:
                fh.write(json.dumps(e, ensure_ascii=False, separators=(",", ":")) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        if self._fh is not None:
            self._fh.close()
        os.replace(tmp, self.path)
        self._fh = open(self.path, "a", encoding="utf-8")
        return len(owed)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
