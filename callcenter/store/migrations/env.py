"""Alembic environment: the engine comes from ``callcenter.store.migrate``."""
from alembic import context

from callcenter.store import Base, load_all_models

load_all_models()
config = context.config
engine = config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    context.run_migrations()
