"""The SQL store: the truth for everything that must survive a restart.

``Base`` is the one declarative base every package's tables use; each package
keeps its tables in its own ``models.py`` and :func:`load_all_models` imports
them so ``Base.metadata`` is complete (Alembic and the drift test rely on it).
"""
from .base import Base, utcnow
from .db import Database, MigrationRequired, load_all_models

__all__ = ["Base", "Database", "MigrationRequired", "load_all_models", "utcnow"]
