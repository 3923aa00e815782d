"""Access over real HTTP/TCP: roles, audit, Range requests, path traversal."""
from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_twisted
from sqlalchemy import select
from twisted.internet import reactor
from twisted.web.resource import Resource
from twisted.web.server import Site

from callcenter.ami.tracefile import traces_dir
from callcenter.store.models import AuditEntry
from recordings import catalog
from recordings.models import Recording
from recordings.settings import Settings
from recordings.wav import inspect_file, write_wav
from recordings.web import RangeNotSatisfiable, RecordingsResource, parse_range

PART1 = traces_dir() / "06-mixmonitor-part1.wav"
T0 = dt.datetime(2026, 11, 22, 11, 26, tzinfo=dt.timezone.utc)


@dataclass
class User:
    username: str
    role: str


USERS = {"sup": User("sup", "supervisor"), "adm": User("adm", "admin"), "ag": User("ag", "agent")}


def authorize(request):
    name = (request.getHeader(b"x-test-user") or b"").decode()
    return USERS.get(name)


def test_parse_range():
    assert parse_range(None, 100) is None
    assert parse_range("bytes=0-9", 100) == (0, 9)
    assert parse_range("bytes=90-", 100) == (90, 99)
    assert parse_range("bytes=-10", 100) == (90, 99)
    assert parse_range("bytes=-1000", 100) == (0, 99)
    assert parse_range("bytes=50-5000", 100) == (50, 99)
    assert parse_range("items=0-9", 100) is None
    assert parse_range("bytes=0-1,5-6", 100) is None
    for bad in ("bytes=100-", "bytes=5-2", "bytes=abc", "bytes=-0", "bytes=-", "bytes=1-x"):
        with pytest.raises(RangeNotSatisfiable):
            parse_range(bad, 100)


@pytest.fixture
def server(db, tmp_path):
    s = Settings(directory=tmp_path / "rec", spool_dir=tmp_path / "rec")
    recs = {}
    for name, src in (("small", PART1.read_bytes()), ("big", None)):
        rel = f"2026/11/22/consultation/{name}.wav"
        if src is None:
            write_wav(s.directory / rel, os.urandom(3 * 1024 * 1024 + 17))
        else:
            (s.directory / rel).parent.mkdir(parents=True, exist_ok=True)
            (s.directory / rel).write_bytes(src)
        info = inspect_file(s.directory / rel)

        def add(ses, rel=rel, info=info, name=name):
            rid = catalog.start(ses, rel=rel, kind="queue", uniqueid=name, started_at=T0, settings=s,
                                queue="consultation")
            catalog.finalize(ses, rid, info, T0)
            return rid

        recs[name] = db.call(add)
    root = Resource()
    root.putChild(b"recordings", RecordingsResource(db, authorize, settings=s, clock=reactor))
    site = Site(root)
    site.timeOut = None
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    base = f"http://127.0.0.1:{port.getHost().port}/recordings"
    yield base, recs, s
    pytest_twisted.blockon(port.stopListening())


def fetch(url, user=None, headers=None, method="GET"):
    req = urllib.request.Request(url, method=method, headers={**({"X-Test-User": user} if user else {}),
                                                              **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


async def get(*a, **kw):
    return await asyncio.to_thread(fetch, *a, **kw)


def audit_rows(db, action=None):
    def q(s):
        stmt = select(AuditEntry).where(AuditEntry.object_type == "recording").order_by(AuditEntry.id)
        if action:
            stmt = stmt.where(AuditEntry.action == action)
        return [(e.actor, e.action, e.object_id, e.detail) for e in s.scalars(stmt)]

    return db.call(q)


async def test_unauthorised_users_cannot_list_or_fetch(server, db):
    base, recs, _ = server
    rid = recs["small"]
    for user, code in ((None, 401), ("ag", 403)):
        for path in ("/", "", f"/{rid}", f"/{rid}/audio", f"/{rid}/download"):
            status, _h, body = await get(base + path, user)
            assert status == code, (user, path)
            assert b"RIFF" not in body and b"consultation" not in body
    denied = audit_rows(db, "recording.denied")
    assert len(denied) == 10
    assert {a for a, *_ in denied} == {"anonymous", "ag"}
    assert any(oid == f"{rid}/audio" for _a, _x, oid, _d in denied)


async def test_supervisor_lists_and_plays_with_audit(server, db):
    base, recs, s = server
    status, headers, body = await get(base + "/", "sup")
    assert status == 200 and headers["Cache-Control"] == "no-store"
    listed = json.loads(body)["recordings"]
    assert {r["id"] for r in listed} == set(recs.values())
    status, _h, body = await get(base + f"/{recs['small']}", "adm")
    assert status == 200 and json.loads(body)["size"] == 22764

    status, headers, body = await get(base + f"/{recs['small']}/audio", "sup")
    assert status == 200
    assert body == PART1.read_bytes()
    assert headers["Content-Type"] == "audio/wav" and headers["Accept-Ranges"] == "bytes"
    assert headers["Content-Length"] == "22764" and headers["Content-Disposition"].startswith("inline")
    status, headers, _ = await get(base + f"/{recs['small']}/download", "adm")
    assert status == 200 and headers["Content-Disposition"] == f'attachment; filename="recording-{recs["small"]}.wav"'

    rows = audit_rows(db)
    assert [(a, act) for a, act, *_ in rows] == [
        ("sup", "recording.list"), ("adm", "recording.view"), ("sup", "recording.play"), ("adm", "recording.download")]
    play = rows[2]
    assert play[2] == str(recs["small"]) and play[3]["ok"] is True and play[3]["bytes"] == [0, 22763]
    assert play[3]["ip"] == "127.0.0.1"


async def test_range_requests(server, db):
    base, recs, s = server
    url = base + f"/{recs['small']}/audio"
    data = PART1.read_bytes()
    status, h, body = await get(url, "sup", {"Range": "bytes=0-99"})
    assert (status, h["Content-Range"], body) == (206, "bytes 0-99/22764", data[:100])
    status, h, body = await get(url, "sup", {"Range": "bytes=-100"})
    assert (status, h["Content-Range"], body) == (206, "bytes 22664-22763/22764", data[-100:])
    status, h, body = await get(url, "sup", {"Range": "bytes=22000-"})
    assert (status, h["Content-Length"], body) == (206, "764", data[22000:])
    for bad in ("bytes=99999-", "bytes=50-10", "bytes=x-y"):
        status, h, body = await get(url, "sup", {"Range": bad})
        assert status == 416 and h["Content-Range"] == "bytes */22764", bad
    # the three ranges served are one play (one row, its first range); each refusal has its own row
    ranges = [d.get("range") for *_x, d in audit_rows(db, "recording.play")]
    assert ranges == ["bytes=0-99", "bytes=99999-", "bytes=50-10", "bytes=x-y"]

    big = s.directory / "2026/11/22/consultation/big.wav"
    url = base + f"/{recs['big']}/audio"
    status, h, body = await get(url, "sup")
    assert status == 200 and hashlib.sha256(body).digest() == hashlib.sha256(big.read_bytes()).digest()
    status, h, body = await get(url, "sup", {"Range": "bytes=1000000-2500000"})
    assert status == 206 and body == big.read_bytes()[1000000:2500001]


@pytest.mark.parametrize("path", [
    "/..%2f..%2fetc%2fpasswd", "/%2e%2e/%2e%2e/etc/passwd", "/../../etc/passwd", "/1/../../x",
    "/1%2f..%2f..%2fsecret.wav/audio", "/01/audio", "/1.wav/audio", "/-1/audio", "/0x1/audio",
    "/1%00/audio", "/1/audio/extra", "/1/..", "/%201/audio", "/1%0d%0aX-Evil:%201/audio", "/99999999999999999999999/audio",
    "/1/audio%2f..%2f..%2fsecret.wav",
])
async def test_crafted_paths_are_refused(server, db, tmp_path, path):
    base, recs, s = server
    (tmp_path / "secret.wav").write_bytes(b"TOP-SECRET")
    status, _h, body = await get(base + path, "adm")
    assert status in (400, 404)
    assert b"TOP-SECRET" not in body and b"root:" not in body and b"RIFF" not in body


async def test_catalogue_path_escaping_the_directory_is_refused(server, db, tmp_path):
    base, recs, s = server
    (tmp_path / "secret.wav").write_bytes(b"TOP-SECRET")
    os.symlink(tmp_path / "secret.wav", s.directory / "link.wav")

    def add(ses):
        ids = []
        for p in ("../secret.wav", "link.wav", "/etc/passwd"):
            r = Recording(path=p, kind="queue", uniqueid="x", started_at=T0, status="ready",
                          legal_hold=False, error="", format="wav")
            ses.add(r)
            ses.flush()
            ids.append(r.id)
        return ids

    for rid in db.call(add):
        status, _h, body = await get(base + f"/{rid}/audio", "adm")
        assert status == 404 and b"TOP-SECRET" not in body and b"root:" not in body
    refused = [d for *_x, d in audit_rows(db, "recording.play")]
    assert len(refused) == 3 and all(d["ok"] is False for d in refused)


async def test_missing_file_and_unknown_id(server, db):
    base, recs, s = server
    (s.directory / "2026/11/22/consultation/small.wav").unlink()
    status, _h, body = await get(base + f"/{recs['small']}/audio", "sup")
    assert status == 404 and b"missing" in body
    status, _h, _b = await get(base + "/424242/audio", "sup")
    assert status == 404
    status, _h, body = await get(base + "/?limit=0", "sup")
    assert status == 400
    status, _h, body = await get(base + "/?queue=../../x", "sup")
    assert status == 400


def _abort_midway(url: str, user: str) -> int:
    import socket
    from urllib.parse import urlsplit

    u = urlsplit(url)
    with socket.create_connection((u.hostname, u.port), timeout=10) as sock:
        sock.sendall(f"GET {u.path} HTTP/1.1\r\nHost: x\r\nX-Test-User: {user}\r\n\r\n".encode())
        got = 0
        while got < 200_000:
            block = sock.recv(65536)
            if not block:
                break
            got += len(block)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    return got


async def test_client_going_away_mid_download_is_harmless(server, db, caplog):
    base, recs, s = server
    got = await asyncio.to_thread(_abort_midway, base + f"/{recs['big']}/audio", "sup")
    assert 0 < got < 3 * 1024 * 1024
    # the server carries on serving others
    status, _h, body = await get(base + f"/{recs['small']}/audio", "sup")
    assert status == 200 and body == PART1.read_bytes()
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


async def test_head_gives_headers_without_body(server, db):
    base, recs, _ = server
    status, h, body = await get(base + f"/{recs['small']}/audio", "sup", method="HEAD")
    assert status == 200 and h["Content-Length"] == "22764" and body == b""
