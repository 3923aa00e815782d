"""Foundation: config validation, CLI, migrations on SQLite and PostgreSQL."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from sqlalchemy import inspect

from callcenter.cli import main
from callcenter.config import ConfigError, load_config
from callcenter.store import Base, Database, load_all_models, migrate


def run_cli(*args, env=None):
    import os

    return subprocess.run(
        [sys.executable, "-m", "callcenter", *args], capture_output=True, text=True,
        env={**os.environ, **(env or {})}, timeout=120,
    )


def test_defaults_and_env_override(tmp_path):
    cfg = load_config(None, env={"CALLCENTER_HOSPITAL_ANSWER_TARGET_SECONDS": "20",
                                 "CALLCENTER_SERVICE_DATA_DIR": str(tmp_path)})
    assert cfg.hospital.answer_target_seconds == 20.0
    assert cfg.hospital.short_abandon_seconds == 5.0
    assert cfg.agi.port == 4573 and cfg.web.port == 8080
    assert cfg.database_url == f"sqlite:///{tmp_path / 'callcenter.sqlite'}"


@pytest.mark.parametrize("body,needle", [
    ("[ami]\nprot = 5038\n", "unknown key [ami] prot"),
    ("[ami]\nport = 'five'\n", "[ami] port must be a whole number"),
    ("[ami]\nport = 70000\n", "[ami] port = 70000: must be a TCP port"),
    ("[hospital]\ntimezone = 'Mars/Olympus'\n", "unknown timezone"),
    ("[nope]\na = 1\n", "unknown section [nope]"),
    ("[ami\n", "not valid TOML"),
    ("[database]\nurl = 'mysql://x/y'\n", "unsupported database 'mysql'"),
])
def test_bad_config_names_the_problem(tmp_path, body, needle):
    path = tmp_path / "cc.toml"
    path.write_text(body)
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    assert needle in str(err.value)
    assert str(path) in str(err.value)


def test_bad_config_cli_one_line_no_traceback(tmp_path):
    path = tmp_path / "cc.toml"
    path.write_text("[ami]\nport = 'x'\n")
    r = run_cli("config", "show", "--config", str(path))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0
    assert "[ami] port must be a whole number" in r.stderr


def test_unreachable_database_is_one_line(tmp_path):
    r = run_cli("db", "upgrade", env={
        "CALLCENTER_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "CALLCENTER_SERVICE_DATA_DIR": str(tmp_path)})
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert "cannot use the database" in r.stderr


def test_config_show_masks_secrets(tmp_path, capsys, monkeypatch):
    path = tmp_path / "cc.toml"
    path.write_text("[ami]\nsecret = 'hunter2'\n[database]\nurl = 'postgresql://u:pw123@db/x'\n")
    monkeypatch.delenv("CALLCENTER_DATABASE_URL", raising=False)
    assert main(["config", "show", "--config", str(path), "--format", "json"]) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out and "pw123" not in out
    shown = json.loads(out)
    assert shown["ami"]["secret"] == "***"
    assert shown["hospital"]["timezone"] == "Asia/Shanghai"


@pytest.fixture
def own_config(tmp_path, monkeypatch):
    """A config file naming its own database; the environment points elsewhere."""
    for name in ("CALLCENTER_DATABASE_URL", "CALLCENTER_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CALLCENTER_SERVICE_DATA_DIR", str(tmp_path / "default-data"))
    path = tmp_path / "cc.toml"
    path.write_text(f"[database]\nurl = 'sqlite:///{tmp_path / 'configured.sqlite'}'\n"
                    "[hospital]\nanswer_target_seconds = 17\n")
    return path


@pytest.mark.parametrize("where", ["before", "after"])
def test_config_option_before_or_after_the_command_db_upgrade(own_config, tmp_path, where):
    """``callcenter --config F db upgrade`` used to migrate the default database instead."""
    args = ["--config", str(own_config), "db", "upgrade"] if where == "before" \
        else ["db", "upgrade", "--config", str(own_config)]
    assert main(args) == 0
    assert (tmp_path / "configured.sqlite").exists()
    assert not (tmp_path / "default-data").exists()


@pytest.mark.parametrize("where", ["before", "after"])
def test_config_option_before_or_after_the_command_config_show(own_config, capsys, where):
    args = ["-c", str(own_config), "config", "show", "--format", "json"] if where == "before" \
        else ["config", "show", "--format", "json", "-c", str(own_config)]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["hospital"]["answer_target_seconds"] == 17


@pytest.mark.parametrize("args", [
    ["--config", "{missing}", "db", "upgrade"],
    ["db", "upgrade", "--config", "{missing}"],
    ["--config", "{missing}", "config", "show"],
    ["config", "show", "--config", "{missing}"],
])
def test_missing_config_file_is_an_error_naming_it(tmp_path, capsys, monkeypatch, args):
    monkeypatch.setenv("CALLCENTER_SERVICE_DATA_DIR", str(tmp_path / "default-data"))
    missing = str(tmp_path / "nope.toml")
    assert main([a.format(missing=missing) for a in args]) == 2
    assert f"{missing}: no such config file" in capsys.readouterr().err
    assert not (tmp_path / "default-data").exists()


def test_help_lists_commands():
    r = run_cli("--help")
    assert r.returncode == 0
    for cmd in ("serve", "demo", "db", "config"):
        assert cmd in r.stdout


@pytest.mark.postgres
def test_migrations_match_models(db):
    """The migrated schema equals the models: no drift between code and Alembic."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    load_all_models()
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}),
                                Base.metadata)
    assert diff == []
    assert set(Base.metadata.tables) <= set(inspect(db.engine).get_table_names())


@pytest.mark.postgres
def test_db_upgrade_cli_then_serve_check(config_env, db_backend, tmp_path):
    r = run_cli("db", "status")
    assert r.returncode == 0, r.stderr  # the fixture database is already migrated
    assert "up to date" in r.stdout


def test_unmigrated_database_is_refused(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'empty.sqlite'}")
    with pytest.raises(Exception) as err:
        db.check_migrated()
    assert "callcenter db upgrade" in str(err.value)
    migrate.upgrade(db.engine)
    db.check_migrated()
    db.close()


def test_serve_refuses_unmigrated_database(tmp_path):
    r = run_cli("serve", env={"CALLCENTER_DATABASE_URL": f"sqlite:///{tmp_path / 'new.sqlite'}",
                              "CALLCENTER_SERVICE_DATA_DIR": str(tmp_path)})
    assert r.returncode == 2
    assert "run: callcenter db upgrade" in r.stderr
    assert "Traceback" not in r.stderr


def test_masking_of_numbers_and_secrets():
    from callcenter.logs import mask_name, mask_number, mask_text

    assert mask_number("13800138001") == "*******8001"
    assert mask_name("王小明") == "王**"
    line = mask_text("call from 13800138001 secret=abc123 queue consultation")
    assert "13800138001" not in line and "abc123" not in line and "8001" in line


def test_one_migration_head():
    """Parallel chains are merged: a new revision has one obvious parent."""
    heads = migrate.heads()
    assert len(heads) == 1, heads


@pytest.mark.postgres
def test_migrations_downgrade_to_base_and_upgrade_again(db):
    migrate.downgrade(db.engine, "base")
    assert set(db.table_names()) <= {"alembic_version"}
    migrate.upgrade(db.engine)
    load_all_models()
    assert set(Base.metadata.tables) <= set(db.table_names())
    db.check_migrated()
