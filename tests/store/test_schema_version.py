"""The schema check's own reading of revisions agrees with Alembic's."""
from __future__ import annotations

import pytest
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from callcenter.store import Database, MigrationRequired, migrate, schema_version


def test_heads_are_alembics():
    want = ScriptDirectory.from_config(migrate.alembic_config()).get_heads()
    assert schema_version.script_heads() == sorted(want)


def test_stored_revisions_are_alembics(db):
    with db.engine.connect() as conn:
        assert schema_version.stored_revisions(conn) == sorted(MigrationContext.configure(conn).get_current_heads())
        assert schema_version.stored_revisions(conn) == schema_version.script_heads()
    db.check_migrated()


def test_an_empty_database_has_no_revision(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'empty.sqlite'}")
    try:
        with db.engine.connect() as conn:
            assert schema_version.stored_revisions(conn) == []
        with pytest.raises(MigrationRequired, match="has no schema"):
            db.check_migrated()
    finally:
        db.close()


def test_a_merge_and_a_branch(tmp_path):
    (tmp_path / "__init__.py").write_text("")
    (tmp_path / "a.py").write_text('"""a"""\nrevision = "a"\ndown_revision = None\n')
    (tmp_path / "b.py").write_text('revision = "b"\ndown_revision = "a"\n')
    (tmp_path / "c.py").write_text('revision: str = "c"\ndown_revision = "a"\n')
    assert schema_version.script_heads(tmp_path) == ["b", "c"]
    (tmp_path / "d.py").write_text('revision = "d"\ndown_revision = ("b",\n                 "c")\n')
    assert schema_version.script_heads(tmp_path) == ["d"]


def test_a_script_without_a_literal_revision_is_named(tmp_path):
    (tmp_path / "x.py").write_text('import os\nrevision = os.environ["R"]\ndown_revision = None\n')
    with pytest.raises(schema_version.RevisionScriptUnreadable, match="x.py: revision is not a literal"):
        schema_version.script_heads(tmp_path)
    (tmp_path / "x.py").write_text('"""no revision here"""\n')
    with pytest.raises(schema_version.RevisionScriptUnreadable, match="x.py: no literal revision"):
        schema_version.script_heads(tmp_path)
