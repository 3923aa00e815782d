"""Row locks that hold on SQLite as well as PostgreSQL.

PostgreSQL: ``SELECT ... FOR UPDATE``.  SQLite ignores ``FOR UPDATE``, and the
``sqlite3`` driver only opens a transaction at the first write, so a
read-modify-write there can silently overwrite a concurrent commit (seen: a survey
answer and a hang-up retried together after a database outage left the attempt
``hungup``).  A no-op ``UPDATE`` of the row first takes SQLite's write lock; the
read that follows is then current and nobody else can commit until we do.
"""
from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import inspect, update
from sqlalchemy.orm import Session

M = TypeVar("M")


def get_for_update(session: Session, model: type[M], pk: Any) -> M | None:
    if session.get_bind().dialect.name == "sqlite":
        col = inspect(model).primary_key[0]
        session.execute(update(model).where(col == pk).values({col.key: col}))
        return session.get(model, pk, populate_existing=True)
    return session.get(model, pk, with_for_update=True)
