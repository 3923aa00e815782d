"""Which schema revision a database is at and which the code needs, without Alembic.

:meth:`Database.check_migrated` runs before every command that uses the database; Alembic's
own answer (importing Alembic, its autogenerate and templating, and every revision script)
costs a tenth of a second of CPU, as much as a short report.  The heads are read from the
revision scripts' ``revision`` / ``down_revision`` assignments (``ast``, nothing executed);
``tests/store/test_schema_version.py`` checks both answers against Alembic's.
"""
from __future__ import annotations

import ast
from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

VERSIONS = Path(__file__).parent / "migrations" / "versions"
VERSION_TABLE = "alembic_version"  # Alembic's default, which migrate.py keeps


class RevisionScriptUnreadable(ValueError):
    """A revision script without a literal ``revision`` (or ``down_revision``) assignment."""


def _assigned(path: Path) -> tuple[str, tuple[str, ...]]:
    found: dict[str, object] = {}
    for node in ast.parse(path.read_text(encoding="utf-8"), str(path)).body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Name) and t.id in ("revision", "down_revision") and node.value is not None:
                    try:
                        found[t.id] = ast.literal_eval(node.value)
                    except ValueError as exc:
                        raise RevisionScriptUnreadable(f"{path}: {t.id} is not a literal ({exc})") from None
    if not isinstance(found.get("revision"), str) or "down_revision" not in found:
        raise RevisionScriptUnreadable(f"{path}: no literal revision / down_revision assignment")
    down = found["down_revision"]
    return str(found["revision"]), (() if down is None else (down,) if isinstance(down, str) else tuple(down))


def script_heads(versions: Path = VERSIONS) -> list[str]:
    """The revisions no other revision script builds on."""
    revisions, below = set(), set()
    for path in sorted(versions.glob("*.py")):
        if path.name == "__init__.py":
            continue
        rev, down = _assigned(path)
        revisions.add(rev)
        below.update(down)
    return sorted(revisions - below)


def stored_revisions(conn: Connection) -> list[str]:
    """The revisions the database is at (none: no schema yet)."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return []
    return sorted(r[0] for r in conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")))
