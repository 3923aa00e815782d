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


@pytest.mark.slow
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


@pytest.mark.slow
def test_upgrade_then_downgrade_and_back(empty_pg_database, tmp_path):
    url = empty_pg_database[0]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CALLCENTER_SERVICE_DATA_DIR": str(tmp_path / "data"),
           "CALLCENTER_DATABASE_URL": url}
    env.pop("CALLCENTER_CONFIG", None)
    assert _cli("db", "upgrade", env=env).returncode == 0
    r = _cli("db", "downgrade", "no_such_revision", env=env)
    assert r.returncode == 2 and "cannot downgrade to 'no_such_revision'" in r.stderr
    before = _cli("db", "status", env=env).stdout
    r = _cli("db", "downgrade", "-1", env=env)  # one revision back
    assert r.returncode == 0, r.stderr
    assert r.stdout.split(" is at ")[1].strip() not in before
    status = _cli("db", "status", env=env)
    assert status.returncode == 1 and "needs: callcenter db upgrade" in status.stdout
    assert _cli("db", "upgrade", env=env).returncode == 0
    assert _cli("db", "status", env=env).returncode == 0


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _require_nginx():
    """scripts/bootstrap.sh --test installs nginx: missing it is skipped on a desk, a failure in CI."""
    if shutil.which("nginx") is None:
        why = "nginx not installed here (apt-get install nginx; scripts/bootstrap.sh --test)"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)


async def test_nginx_site_proxies_tls_to_the_web(config, db, tmp_path):
    """The shipped site file, with only addresses, ports and certificate paths replaced, passes
    ``nginx -t`` and serves the web over TLS (HSTS added, the app's own headers kept); with
    ``[web] trusted_proxies`` naming it, the service sees HTTPS and marks its cookies Secure."""
    _require_nginx()
    import asyncio
    import http.client
    import ssl

    from tests.support.web import running_web

    site = (ROOT / "docs" / "ops" / "nginx-callcenter.conf").read_text()
    key, cert = tmp_path / "hotline.key", tmp_path / "hotline.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=hotline.example-hospital.cn", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    http_port, tls_port = _free_port(), _free_port()
    config = config.with_overrides({"web": {"trusted_proxies": ["127.0.0.1"]}})
    async with running_web(config, db) as web:
        site_here = (site.replace("listen 80;", f"listen 127.0.0.1:{http_port};")
                     .replace("listen 443 ssl", f"listen 127.0.0.1:{tls_port} ssl")
                     .replace("/etc/ssl/certs/hotline.pem", str(cert))
                     .replace("/etc/ssl/private/hotline.key", str(key))
                     .replace("127.0.0.1:8080", f"127.0.0.1:{web.port}"))
        assert f"proxy_pass http://127.0.0.1:{web.port};" in site_here
        (tmp_path / "site.conf").write_text(site_here)
        user = "user root root;" if os.geteuid() == 0 else ""
        (tmp_path / "nginx.conf").write_text(f"""
            {user} daemon off; pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log;
            events {{}}
            http {{ access_log off; client_body_temp_path {tmp_path}/body; proxy_temp_path {tmp_path}/proxy;
                    fastcgi_temp_path {tmp_path}/fcgi; uwsgi_temp_path {tmp_path}/uwsgi;
                    scgi_temp_path {tmp_path}/scgi; include {tmp_path}/site.conf; }}""")
        t = subprocess.run(["nginx", "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                           capture_output=True, text=True, timeout=30)
        assert t.returncode == 0, t.stderr
        proc = subprocess.Popen(["nginx", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")])
        try:
            def get(path):
                ctx = ssl.create_default_context(cafile=str(cert))
                ctx.check_hostname = False
                for _ in range(100):
                    try:
                        conn = http.client.HTTPSConnection("127.0.0.1", tls_port, context=ctx, timeout=10)
                        conn.request("GET", path, headers={"Host": "hotline.example-hospital.cn"})
                        r = conn.getresponse()
                        return r.status, dict(r.getheaders()), r.read()
                    except ConnectionRefusedError:
                        import time
                        time.sleep(0.05)
                raise AssertionError("nginx did not start")
            status, headers, body = await asyncio.to_thread(get, "/login")
            assert status == 200 and b"login_token" in body
            assert headers["Strict-Transport-Security"] == "max-age=31536000"
            assert headers["X-Frame-Options"] == "DENY"
            assert "Secure" in headers["Set-Cookie"].split("; ")
        finally:
            proc.terminate()
            proc.wait(10)


async def test_alert_rules_use_metrics_the_service_exports(db):
    """Every metric docs/ops/alerts.yml watches is in /metrics' text (a renamed metric fails here)."""
    import re

    import yaml
    from twisted.internet.task import Clock

    from callcenter.ami.fake import FakeAmi
    from callcenter.metrics import ServiceMetrics
    from tests.support.web import FakeQueueCalls

    rules = yaml.safe_load((ROOT / "docs" / "ops" / "alerts.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    used = {re.sub(r"_(bucket|count|sum)$", "", m) for e in exprs for m in re.findall(r"callcenter_\w+", e)}
    clock = Clock()
    m = ServiceMetrics(ami=FakeAmi(clock), queuecalls=FakeQueueCalls(), db=db, clock=clock, timer=lambda: 0.0,
                       answer_target=30, servers=lambda: {"default": True})
    m.queue_calls.labels("consultation", "answered")  # labelled families appear once they have a child
    m.queue_within_target.labels("consultation")
    text = (await m.render()).decode()
    exported = set(re.findall(r"^# TYPE (\w+) ", text, re.M))
    missing = {u for u in used if u not in exported and u.removesuffix("_total") not in exported}
    assert used and not missing, missing


@pytest.mark.skipif(shutil.which("logrotate") is None, reason="logrotate not installed here")
def test_logrotate_file_parses(tmp_path):
    """logrotate -d (dry run) accepts the shipped file; paths and owner pointed at this machine."""
    import grp
    import pwd

    log = tmp_path / "queue_log"
    log.write_text("1795346592|NONE|NONE|NONE|QUEUESTART|\n")
    user, group = pwd.getpwuid(os.geteuid()).pw_name, grp.getgrgid(os.getegid()).gr_name
    text = ((ROOT / "docs" / "ops" / "logrotate-asterisk").read_text()
            .replace("/var/log/asterisk/queue_log", str(log))
            .replace("/var/log/asterisk/cdr-csv/*.csv", str(tmp_path / "cdr-*.csv"))
            .replace("create 0640 asterisk asterisk", f"create 0640 {user} {group}"))
    conf = tmp_path / "logrotate.conf"
    conf.write_text(text)
    r = subprocess.run(["logrotate", "-d", "-f", "-s", str(tmp_path / "state"), str(conf)], capture_output=True,
                       text=True, timeout=30)
    out = r.stdout + r.stderr
    assert r.returncode == 0 and "error" not in out.lower(), out
    assert f"rotating log {log}" in out
