"""docs/operations.md's steps, tried as written where this machine can: the systemd unit,
backup and restore of the database with the recordings, and an upgrade/downgrade."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "docs" / "ops" / "callcenter.service"
INSTALLED = "/opt/callcenter/venv/bin/callcenter"


def _verify(text: str, tmp_path: Path) -> subprocess.CompletedProcess:
    unit = tmp_path / "callcenter.service"
    unit.write_text(text)
    return subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed here")
def test_systemd_unit_verifies(tmp_path):
    """As shipped, with only the install path pointed at this machine's entry point (verify
    checks that ExecStart exists)."""
    text = UNIT.read_text()
    for line in ("LimitNOFILE=65536", "Restart=on-failure", "User=callcenter", "KillSignal=SIGTERM"):
        assert line in text.splitlines()
    here = str(Path(sys.executable).with_name("callcenter"))
    r = _verify(text.replace(INSTALLED, here), tmp_path)
    assert r.returncode == 0 and r.stdout + r.stderr == "", r.stdout + r.stderr
    # the check can fail: a misplaced key is reported
    r = _verify(text.replace(INSTALLED, here).replace("LimitNOFILE=65536", "LimitNOFILES=65536"), tmp_path)
    assert "Unknown key 'LimitNOFILES'" in r.stdout + r.stderr


def _pg_admin_url() -> str:
    from tests.conftest import PG_URL

    return PG_URL.replace("postgresql+psycopg", "postgresql")


@pytest.fixture
def empty_pg_database():
    import psycopg
    from sqlalchemy.engine import make_url

    from tests.conftest import _postgres_available

    if not _postgres_available():
        pytest.skip("PostgreSQL not reachable (the restore is tried on PostgreSQL only)")
    admin = _pg_admin_url()
    names = [f"cc_ops_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    with psycopg.connect(admin, autocommit=True) as conn:
        for n in names:
            conn.execute(f'CREATE DATABASE "{n}"')
    base = make_url(admin)
    yield [base.set(database=n, drivername="postgresql+psycopg").render_as_string(hide_password=False)
           for n in names]
    with psycopg.connect(admin, autocommit=True) as conn:
        for n in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)')


def _cli(*args, env, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "callcenter", *args], env=env, capture_output=True, text=True,
                          timeout=120, input=stdin)


def test_backup_then_restore_into_a_new_database(empty_pg_database, tmp_path):
    """The guide's backup and restore, by its scripts: rows and recording files come back together."""
    source, target = empty_pg_database
    rec = tmp_path / "recordings"
    (rec / "2026" / "11").mkdir(parents=True)
    (rec / "2026" / "11" / "call-1.wav").write_bytes(b"RIFF....WAVE")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CALLCENTER_SERVICE_DATA_DIR": str(tmp_path / "data"),
           "CALLCENTER_DATABASE_URL": source, "RECORDINGS_DIR": str(rec)}
    env.pop("CALLCENTER_CONFIG", None)
    assert _cli("db", "upgrade", env=env).returncode == 0
    r = _cli("users", "add", "nurse", "--role", "supervisor", "--password-stdin", env=env,
             stdin="a-long-nurse-password\n")
    assert r.returncode == 0, r.stderr
    out = subprocess.run([str(ROOT / "scripts" / "backup.sh"), str(tmp_path / "backups")], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    backup = Path(out.stdout.strip().splitlines()[-1])
    assert {p.name for p in backup.iterdir()} == {"db.dump", "recordings.tar.gz", "SHA256SUMS"}

    restored = tmp_path / "restored"
    env2 = {**env, "CALLCENTER_DATABASE_URL": target, "RECORDINGS_DIR": str(restored)}
    r = subprocess.run([str(ROOT / "scripts" / "restore.sh"), str(backup)], env=env2, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (restored / "2026" / "11" / "call-1.wav").read_bytes() == b"RIFF....WAVE"
    status = _cli("db", "status", env=env2)
    assert status.returncode == 0 and "up to date" in status.stdout
    users = _cli("users", "list", env=env2)
    assert "nurse" in users.stdout, users.stdout + users.stderr
    # restoring twice refuses: the database is no longer empty
    r = subprocess.run([str(ROOT / "scripts" / "restore.sh"), str(backup)], env=env2, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and "not empty" in r.stderr
    # a damaged backup is refused before anything is written
    (backup / "db.dump").write_bytes(b"garbage")
    env3 = {**env, "CALLCENTER_DATABASE_URL": source, "RECORDINGS_DIR": str(tmp_path / "r3")}
    r = subprocess.run([str(ROOT / "scripts" / "restore.sh"), str(backup)], env=env3, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode != 0 and "FAILED" in r.stdout + r.stderr


def test_upgrade_then_downgrade_and_back(empty_pg_database, tmp_path):
    url = empty_pg_database[0]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CALLCENTER_SERVICE_DATA_DIR": str(tmp_path / "data"),
           "CALLCENTER_DATABASE_URL": url}
    env.pop("CALLCENTER_CONFIG", None)
    assert _cli("db", "upgrade", env=env).returncode == 0
    r = _cli("db", "downgrade", "-1", env=env)  # the head is a merge: a step back is ambiguous
    assert r.returncode == 2 and "cannot downgrade to '-1'" in r.stderr
    r = _cli("db", "downgrade", "0601_web_tokens", env=env)
    assert r.returncode == 0, r.stderr
    assert "0601_web_tokens" in r.stdout and "0900_merge_packages" not in r.stdout
    status = _cli("db", "status", env=env)
    assert status.returncode == 1 and "needs: callcenter db upgrade" in status.stdout
    assert _cli("db", "upgrade", env=env).returncode == 0
    assert _cli("db", "status", env=env).returncode == 0
