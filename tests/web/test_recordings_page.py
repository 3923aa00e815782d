"""The recordings search page and its audit, through the real assembly (``app.build``):
search by day, agent, queue, number and complaint ticket; roles as the recording routes;
audio served with Range (206/416); one audit row per play, not per byte range."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from callcenter.ami.tracefile import traces_dir
from callcenter.app import build
from callcenter.store.models import AuditEntry
from recordings import catalog
from recordings.plays import Plays
from recordings.settings import from_config
from recordings.wav import inspect_file

from tests import support
from tests.support.web import Client, add_users

PART1 = traces_dir() / "06-mixmonitor-part1.wav"
UTC = dt.timezone.utc
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
AGENT = "Local/1001@sim-agent/n"


def seed(config, db) -> dict[str, int]:
    """Three recordings: two of agent1 (Shanghai 2026-11-22 19:26 and 2026-11-24 09:05), one
    of another agent on the complaint queue linked to a ticket."""
    settings = from_config(config)
    ids = {}
    rows = (("a", dt.datetime(2026, 11, 22, 11, 26, tzinfo=UTC), "consultation", AGENT, "Agent1", "13800138001"),
            ("b", dt.datetime(2026, 11, 24, 1, 5, tzinfo=UTC), "consultation", AGENT, "Agent1", "13900139002"),
            ("c", dt.datetime(2026, 11, 24, 2, 0, tzinfo=UTC), "complaint", "PJSIP/1002", "王芳", "13700137003"))
    for name, t0, queue, agent, agent_name, number in rows:
        rel = f"2026/11/{t0.day}/{queue}/{name}.wav"
        (settings.directory / rel).parent.mkdir(parents=True, exist_ok=True)
        (settings.directory / rel).write_bytes(PART1.read_bytes())

        def add(s, rel=rel, t0=t0, queue=queue, agent=agent, agent_name=agent_name, number=number, name=name):
            rid = catalog.start(s, rel=rel, kind="queue", uniqueid=f"17953467{t0.day}.{len(name)}", started_at=t0,
                                settings=settings, queue=queue, agent=agent, agent_name=agent_name,
                                caller_number=number)
            catalog.finalize(s, rid, inspect_file(settings.directory / rel), t0 + dt.timedelta(seconds=1))
            return rid
        ids[name] = db.call(add)
    svc = support.complaints()

    def ticket(s):
        t = svc.open_ticket(s, summary="rude on the phone", category="attitude", channel="phone", actor="sup1",
                            received_at=dt.datetime(2026, 11, 24, 2, 5, tzinfo=UTC))
        catalog.link_ticket(s, ticket_id=t.id, recording_id=ids["c"], settings=settings)
        return t.number
    ids["ticket"] = db.call(ticket)
    return ids


def _rows(page: str) -> list[int]:
    import re

    return [int(x) for x in re.findall(r'<tr data-recording="(\d+)"', page)]


def audit(db, action=None):
    q = select(AuditEntry).where(AuditEntry.object_type == "recording").order_by(AuditEntry.id)
    return [(e.actor, e.action, e.object_id, e.detail) for e in db.call(lambda s: list(s.scalars(q)))
            if action is None or e.action == action]


@pytest.mark.postgres
async def test_search_page_roles_and_filters(config, db):
    add_users(db)
    ids = seed(config, db)
    web = build(config.with_overrides({"web": {"port": 0}}), db=db).web  # as `callcenter serve` builds it
    await web.start()
    try:
        anon, agent, sup = Client(web.port), Client(web.port), Client(web.port)
        r = await anon.get("/recordings/", HTML)
        assert r.status == 303 and r.location.startswith("/login?next=/recordings/")  # a browser: the login
        assert (await anon.get("/recordings/")).status == 401                          # an API client: 401
        await agent.login("agent1")
        await sup.login("sup1")
        assert (await agent.get("/recordings/", HTML)).status == 403
        page = await sup.get("/recordings/", HTML)
        assert page.status == 200 and page.headers["content-type"].startswith("text/html")
        assert _rows(page.text) == [ids["c"], ids["b"], ids["a"]]               # newest first
        assert "2026-11-22 19:26:00" in page.text                                 # Shanghai time, not UTC
        assert f'src="/recordings/{ids["a"]}/audio"' in page.text and 'preload="none"' in page.text
        assert 'href="/recordings/"' in page.text                                # in the navigation
        # each filter, as the form sends it
        for query, expected in (("from=2026-11-23&to=2026-11-24", [ids["c"], ids["b"]]),
                                ("to=2026-11-22", [ids["a"]]),
                                ("agent=" + AGENT.replace("/", "%2F").replace("@", "%40"), [ids["b"], ids["a"]]),
                                ("queue=complaint", [ids["c"]]),
                                ("number=139+0013+9002", [ids["b"]]),
                                (f"ticket={ids['ticket']}", [ids["c"]]),
                                ("status=ready&queue=consultation", [ids["b"], ids["a"]]),
                                ("status=failed", []),
                                ("ticket=1", [ids["c"]]),
                                ("agent=&queue=&number=&ticket=&from=&to=", [ids["c"], ids["b"], ids["a"]])):
            got = await sup.get("/recordings/?" + query, HTML)
            assert got.status == 200 and _rows(got.text) == expected, query
        # the JSON list takes the same filters
        r = await sup.get("/recordings/?number=13900139002")
        assert r.status == 200 and [x["id"] for x in r.json()["recordings"]] == [ids["b"]]
        # bad input names the parameter (page: 400 with the form; JSON: 400)
        for query, label in (("from=yesterday", "From"), ("number=abc", "Caller&#39;s number"),
                             ("ticket=TS-9", "Complaint ticket"), ("agent=nobody", "Agent"),
                             ("ticket=TS-2026-999999", "Complaint ticket"), ("from=2026-11-24&to=2026-11-20", "From")):
            got = await sup.get("/recordings/?" + query, HTML)
            assert got.status == 400 and f'id="rec-error">{label}: ' in got.text and 'id="rec-search"' in got.text, query
        r = await sup.get("/recordings/?number=abc")
        assert r.status == 400 and r.json()["error"] == "bad query parameter: number: not a phone number"
        assert (await sup.get("/recordings/?from=2026-13-01")).status == 400
        # in Chinese
        await sup.post("/language", {"csrf_token": await sup.csrf(), "lang": "zh"})
        zh = (await sup.get("/recordings/", HTML)).text
        assert "通话录音" in zh and "每次播放均记入审计日志" in zh and "Recordings" not in zh
        bad = (await sup.get("/recordings/?number=abc", HTML)).text
        assert 'id="rec-error">来电号码：不是有效的电话号码。<' in bad
        # OpenAPI: the page and its filters are in the document
        doc = (await sup.get("/api/openapi.json")).json()
        op = doc["paths"]["/recordings/"]["get"]
        assert "text/html" in op["responses"]["200"]["content"]
        assert "search page" in op["summary"] and {"from", "to", "agent", "queue", "number", "ticket"} <= {
            p["name"] for p in op["parameters"]}
    finally:
        await web.stop()
    lists = audit(db, "recording.list")
    assert all(a == "sup1" for a, *_ in lists) and len(lists) >= 10             # every search is audited
    assert any(d["filters"].get("caller_number") == "+8613900139002" for *_x, d in lists)


async def test_audio_range_and_one_audit_row_per_play(config, db):
    add_users(db)
    ids = seed(config, db)
    web = build(config.with_overrides({"web": {"port": 0}}), db=db).web
    await web.start()
    try:
        sup = Client(web.port)
        await sup.login("sup1")
        data = PART1.read_bytes()
        url = f"/recordings/{ids['a']}/audio"
        # what a browser's <audio> does for one play: the start, then further ranges
        r = await sup.get(url, {"Range": "bytes=0-"})
        assert r.status == 206 and r.headers["content-range"] == f"bytes 0-{len(data) - 1}/{len(data)}"
        assert r.headers["accept-ranges"] == "bytes" and r.body == data
        r = await sup.get(url, {"Range": "bytes=1000-1999"})
        assert r.status == 206 and r.headers["content-range"] == f"bytes 1000-1999/{len(data)}"
        assert r.body == data[1000:2000]
        r = await sup.get(url, {"Range": "bytes=99999999-"})
        assert r.status == 416 and r.headers["content-range"] == f"bytes */{len(data)}"
        # another recording is another play; a download is audited each time
        assert (await sup.get(f"/recordings/{ids['b']}/audio", {"Range": "bytes=0-"})).status == 206
        assert (await sup.get(f"/recordings/{ids['b']}/download")).status == 200
        assert (await sup.get(f"/recordings/{ids['b']}/download")).status == 200
    finally:
        await web.stop()
    plays = audit(db, "recording.play")
    assert [(a, o, d["ok"]) for a, _x, o, d in plays] == [
        ("sup1", str(ids["a"]), True), ("sup1", str(ids["a"]), False), ("sup1", str(ids["b"]), True)]
    assert plays[0][3]["range"] == "bytes=0-" and plays[0][3]["ip"] == "127.0.0.1"
    assert plays[1][3]["reason"] == "range not satisfiable"
    assert len(audit(db, "recording.download")) == 2


def test_what_one_play_is():
    plays = Plays(quiet=600)
    assert plays.starts_play("sup1", 1, 1000.0, duration=30)            # the first request
    assert not plays.starts_play("sup1", 1, 1001.0, duration=30)        # its next range
    assert not plays.starts_play("sup1", 1, 1500.0, duration=30)        # a seek 8 minutes later
    assert plays.starts_play("sup2", 1, 1500.0, duration=30)            # another user: their play
    assert plays.starts_play("sup1", 2, 1500.0, duration=30)            # another recording
    assert plays.starts_play("sup1", 1, 2101.0, duration=30)            # after 10 quiet minutes: again
    assert plays.starts_play("sup1", 3, 0.0, duration=3600)             # first of a long one
    assert not plays.starts_play("sup1", 3, 3000.0, duration=3600)      # a long recording's own length
    assert plays.starts_play("sup1", 3, 3000.0 - 10, duration=3600)     # time going back: a new play
    small = Plays(quiet=600, max_tracked=2)
    for rid in (1, 2, 3):
        small.starts_play("u", rid, 0.0, None)
    assert small.starts_play("u", 1, 1.0, None) and len(small._last) == 2  # bounded: the oldest forgotten
