"""A join whose left side SQLite must read first (``CROSS JOIN``).

SQLite orders a join's tables from ``sqlite_stat1``; ``CROSS JOIN`` is its documented way
to keep the left table the outer loop whatever the statistics say.  The rollups' recount
joins a handful of marks to the calls they name: statistics taken while the marks table
was full (after a bulk load, 729,034 marks) made SQLite scan every call instead and probe
the marks, seconds a write at a year's calls.  Other databases get a plain inner join.
"""
from __future__ import annotations

from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.selectable import Join


class OuterFirst(Join):
    """``left JOIN right ON ...``; on SQLite ``left CROSS JOIN right ON ...`` (left read first)."""

    inherit_cache = True


@compiles(OuterFirst, "sqlite")
def _sqlite(join: OuterFirst, compiler, **kw) -> str:
    kw["asfrom"] = True
    return (f"{compiler.process(join.left, **kw)} CROSS JOIN {compiler.process(join.right, **kw)} "
            f"ON {compiler.process(join.onclause, **kw)}")


@compiles(OuterFirst)
def _other(join: OuterFirst, compiler, **kw) -> str:
    return compiler.visit_join(join, **kw)
