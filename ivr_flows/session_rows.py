"""The ``ivr_sessions`` row of a session: its insert and its completion, as Core statements.

These run on the database thread for every caller (two per session).  Through the ORM
(``Session.add`` / ``Session.get`` + unit of work) they cost ~0.8 ms of Python each, and
that thread holds the GIL all along: the event loop, wanting it back after every socket
call, waited up to the interpreter's switch interval (5 ms) while a reply sat unread.
As plain statements the same writes take a fraction of that, and the thread gives the GIL
up inside SQLite's calls.  They take a Connection, not a Session: the group commit runs a
batch of them without an ORM session at all (``GroupCommit.run(..., connection=True)``;
the session's set-up and commit bookkeeping cost more than the statements did).
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import bindparam, insert, select, update

from .models import IvrSession

# Built once, executed with a parameter dict: no statement (and cache key) built per caller.
_T = IvrSession.__table__
_INSERT = insert(_T)
_FIND = select(_T.c.id, _T.c.started_at).where(
    _T.c.uniqueid == bindparam("k_uniqueid"), _T.c.flow == bindparam("k_flow"),
    _T.c.caller_number == bindparam("k_number"))
_DETAIL = select(_T.c.detail).where(_T.c.id == bindparam("row_id"))
_COMPLETE = update(_T).where(_T.c.id == bindparam("row_id"))


def _ts(value: dt.datetime) -> float:
    """A stored datetime back to epoch seconds (naive values are UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.timestamp()


def insert_row(conn: Any, *, flow: str, uniqueid: str, caller_number: str, started_at: dt.datetime,
               language: str) -> int:
    """Insert the row of a session that has just started; its id."""
    res = conn.execute(_INSERT, {
        "flow": flow, "uniqueid": uniqueid, "caller_number": caller_number, "started_at": started_at,
        "ended_at": None, "path": [], "digits": "", "result": "", "language": language, "detail": {}})
    return int(res.inserted_primary_key[0])


def find_row(conn: Any, *, flow: str, uniqueid: str, caller_number: str, started: float) -> int | None:
    """The id of a row an earlier (retried) insert committed for this session, else None."""
    rows = conn.execute(_FIND, {"k_uniqueid": uniqueid, "k_flow": flow, "k_number": caller_number})
    for rid, started_at in rows:
        if abs(_ts(started_at) - started) < 0.001:
            return int(rid)
    return None


def complete_row(conn: Any, sid: int, *, ended_at: dt.datetime, path: list, digits: str, result: str,
                 language: str, caller_number: str, detail: dict, merge: bool = True) -> bool:
    """Write how the session ended.  With ``merge``, ``detail`` goes over what the row
    holds (ids written by the session's hooks); without, the caller knows no hook wrote
    any (the row's detail is still the insert's ``{}``).  False if the row is not there."""
    if merge:
        old = conn.execute(_DETAIL, {"row_id": sid}).first()
        if old is None:
            return False
        detail = {**(old[0] or {}), **detail}
    done = conn.execute(_COMPLETE, {"row_id": sid, "ended_at": ended_at, "path": path, "digits": digits,
                                    "result": result, "language": language, "caller_number": caller_number,
                                    "detail": detail})
    return done.rowcount == 1
