"""Login slow-down per (user, client), atomic, trusted proxies only, audited (issue 16.3)."""
from __future__ import annotations

import asyncio
import re
from urllib.parse import urlencode

from sqlalchemy import select
from twisted.internet.task import Clock

from callcenter.store.models import AuditEntry
from callcenter.web.auth import LoginThrottle

from tests.support.web import PASSWORD, Client, add_users, running_web

AGENTS = {f"agent{i:02d}": ("agent", f"Local/1{i:03d}@sim-agent/n") for i in range(40)}


async def _raw_login(port, username, password, *, xff=None, source="127.0.0.1"):
    """One login over its own socket (form + POST), so many can be in flight at once."""
    c = Client(port)
    form = await c.get("/login")
    token = re.search(r'name="login_token" value="([^"]+)"', form.text).group(1)
    body = urlencode({"username": username, "password": password, "login_token": token}).encode()
    head = (f"POST /login HTTP/1.1\r\nHost: x\r\nConnection: close\r\nCookie: cc_login={token}\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n")
    if xff:
        head += f"X-Forwarded-For: {xff}\r\n"
    r, w = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    return r, w, head.encode() + b"\r\n" + body


async def _status(r, w) -> int:
    line = await asyncio.wait_for(r.readline(), 20)
    w.close()
    return int(line.split()[1])


async def _login(port, username, password, **kw) -> int:
    r, w, data = await _raw_login(port, username, password, **kw)
    w.write(data)
    return await _status(r, w)


def _audit(db, action):
    with db.session() as s:
        return s.scalars(select(AuditEntry).where(AuditEntry.action == action)).all()


async def test_one_nat_address_does_not_lock_out_the_call_centre(config, db):
    add_users(db, AGENTS)
    clock = Clock()
    clock.advance(1_800_000_000)
    async with running_web(config, db, clock=clock) as web:
        for name in AGENTS:            # 40 agents behind one address, each mistypes once ...
            assert await _login(web.port, name, "typo") == 401
        for name in AGENTS:            # ... and then signs in (was: 429 for everyone after 30)
            assert await _login(web.port, name, PASSWORD) == 303


async def test_slow_down_is_per_user_and_client(config, db):
    add_users(db)
    clock = Clock()
    clock.advance(1_800_000_000)
    async with running_web(config, db, clock=clock) as web:
        for _ in range(5):
            assert await _login(web.port, "sup1", "wrong", source="127.0.0.2") == 401
        assert await _login(web.port, "sup1", PASSWORD, source="127.0.0.2") == 429   # slowed: 1 s
        assert await _login(web.port, "agent1", PASSWORD, source="127.0.0.2") == 303  # others are not
        assert await _login(web.port, "sup1", PASSWORD, source="127.0.0.3") == 303    # nor other clients
        clock.advance(1.5)
        assert await _login(web.port, "sup1", "wrong", source="127.0.0.2") == 401
        assert await _login(web.port, "sup1", PASSWORD, source="127.0.0.2") == 429    # now 2 s
        clock.advance(2.5)
        assert await _login(web.port, "sup1", PASSWORD, source="127.0.0.2") == 303
        throttled = _audit(db, "login_throttled")
        assert len(throttled) == 1 and throttled[0].detail["remote"] == "127.0.0.2"
        assert throttled[0].detail["keys"] == ["pair"]


async def test_concurrent_wrong_passwords_cannot_pass_the_count(config, db):
    add_users(db)
    clock = Clock()
    clock.advance(1_800_000_000)
    async with running_web(config, db, clock=clock) as web:
        conns = [await _raw_login(web.port, "sup1", f"wrong{i}") for i in range(60)]
        for r, w, data in conns:    # all 60 in flight before any is answered
            w.write(data)
        statuses = await asyncio.gather(*[_status(r, w) for r, w, _ in conns])
        assert statuses.count(401) == 5 and statuses.count(429) == 55, statuses
        assert len(_audit(db, "login_failed")) == 5   # only 5 passwords were checked (was: 59)


async def test_forwarded_for_believed_only_from_trusted_proxies(config, db):
    add_users(db)
    clock = Clock()
    clock.advance(1_800_000_000)
    cfg = config.with_overrides({"web": {"trusted_proxies": ["127.0.0.5"]}})
    async with running_web(cfg, db, clock=clock) as web:
        # an attacker naming a new address each time is still counted under its own
        for i in range(5):
            assert await _login(web.port, "sup1", "wrong", xff=f"198.51.100.{i}", source="127.0.0.4") == 401
        assert await _login(web.port, "sup1", PASSWORD, xff="198.51.100.99", source="127.0.0.4") == 429
        # behind the trusted proxy, each browser is its own client
        for i in range(5):
            assert await _login(web.port, "sup1", "wrong", xff="203.0.113.7", source="127.0.0.5") == 401
        assert await _login(web.port, "sup1", PASSWORD, xff="203.0.113.7", source="127.0.0.5") == 429
        assert await _login(web.port, "sup1", PASSWORD, xff="203.0.113.8", source="127.0.0.5") == 303
        remotes = {e.detail.get("remote") for e in _audit(db, "login_failed")}
        assert remotes == {"127.0.0.4", "203.0.113.7"}


def test_throttle_policy_slows_down_and_forgives():
    clock = Clock()
    th = LoginThrottle(clock)
    waits = []
    for _ in range(12):
        wait, _ = th.attempt("u", "c")
        while wait > 0:
            clock.advance(wait)
            wait, _ = th.attempt("u", "c")
        waits.append(clock.seconds())
    gaps = [b - a for a, b in zip(waits, waits[1:])]
    assert gaps[:4] == [0, 0, 0, 0] and gaps[4:8] == [1, 2, 4, 8]   # doubling after 5 failures
    th.succeeded("u", "c")
    assert th.attempt("u", "c")[0] == 0                              # a right password resets the pair
    clock.advance(901)
    assert th._failures.get(("user", "u")) is None or len(th._recent(("user", "u"), 900, clock.seconds())) <= 1
