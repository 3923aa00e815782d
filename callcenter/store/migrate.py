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

from callcenter.phones import DEFAULT_REGION

HERE = Path(__file__).parent


# the configuration's defaults of [hospital] answer_target_seconds and short_abandon_seconds
DEFAULT_ROLLUP_SETTINGS = (30.0, 5.0)


def alembic_config(engine: Engine | None = None, *, phone_region: str | None = None,
                   rollup_settings: tuple[float, float] | None = None) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(HERE / "migrations"))
    if engine is not None:
        cfg.attributes["engine"] = engine
    if phone_region is not None:
        cfg.attributes["phone_region"] = phone_region  # data migrations that normalise numbers
    if rollup_settings is not None:
        cfg.attributes["rollup_settings"] = rollup_settings  # 0999 counts the stored calls with them
    return cfg


def heads() -> list[str]:
    return list(ScriptDirectory.from_config(alembic_config()).get_heads())


def current_and_heads(engine: Engine) -> tuple[list[str], list[str]]:
    with engine.connect() as conn:
        current = list(MigrationContext.configure(conn).get_current_heads())
    return current, heads()


def upgrade(engine: Engine, target: str = "heads", *, phone_region: str = DEFAULT_REGION,
            rollup_settings: tuple[float, float] = DEFAULT_ROLLUP_SETTINGS) -> None:
    """Migrate to ``target``; ``phone_region`` is ``[hospital] region`` (stored numbers are
    normalised to E.164 with it by 0950); ``rollup_settings`` the answer target and short-abandon
    seconds the queue-call rollups are counted with (0999)."""
    command.upgrade(alembic_config(engine, phone_region=phone_region, rollup_settings=rollup_settings), target)


def downgrade(engine: Engine, target: str) -> None:
    command.downgrade(alembic_config(engine), target)
