"""Alembic, driven from code (``callcenter db upgrade``), so no alembic.ini is needed.

Revisions live under ``migrations/versions``: the packages' first schemas were
parallel chains on ``0001_base``, merged by ``0900_merge_packages``; new
revisions go on the single head (``upgrade`` still goes to all heads, so a
branch added by mistake is never left behind).
"""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

HERE = Path(__file__).parent


def alembic_config(engine: Engine | None = None) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(HERE / "migrations"))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def heads() -> list[str]:
    return list(ScriptDirectory.from_config(alembic_config()).get_heads())


def current_and_heads(engine: Engine) -> tuple[list[str], list[str]]:
    with engine.connect() as conn:
        current = list(MigrationContext.configure(conn).get_current_heads())
    return current, heads()


def upgrade(engine: Engine, target: str = "heads") -> None:
    command.upgrade(alembic_config(engine), target)


def downgrade(engine: Engine, target: str) -> None:
    command.downgrade(alembic_config(engine), target)
