"""A running web component on a real TCP port, and a tiny cookie-keeping HTTP client.

The client runs ``http.client`` in a worker thread (real HTTP over TCP while the
server keeps running on the shared loop); it never follows redirects, so tests
see exactly what the server answered.
"""
from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import re
from dataclasses import dataclass, field
from urllib.parse import urlencode

from callcenter.ami.fake import FakeAmi
from callcenter.store.models import User
from callcenter.web.component import WebComponent
from callcenter.web.passwords import hash_password

PASSWORD = "correct horse 1"
USERS = {"agent1": ("agent", "Local/1001@sim-agent/n"), "sup1": ("supervisor", ""), "admin1": ("admin", "")}


def add_users(db, users=USERS, password=PASSWORD):
    with db.session() as s:
        for name, (role, iface) in users.items():
            s.add(User(username=name, display_name=name.title(), role=role, interface=iface, language="en",
                       password_hash=hash_password(password, n=2**10), active=True))


def answered_call(db, uniqueid: str, interface: str = USERS["agent1"][1], *, number: str = "+8613800138001",
                  queue: str = "consultation"):
    """A stored queue call answered by ``interface``: a call that agent may record the outcome of."""
    import datetime as dt

    from callcenter.queuecalls.models import QueueCall

    at = dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.timezone.utc)
    with db.session() as s:
        s.add(QueueCall(uniqueid=uniqueid, linkedid=uniqueid, queue=queue, caller_number=number, entered_at=at,
                        answered_at=at, ended_at=at + dt.timedelta(seconds=60), wait_seconds=0.0, agent=interface,
                        talk_seconds=60.0, outcome="answered", within_target=True))


@dataclass
class Reply:
    status: int
    headers: dict
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self):
        return json.loads(self.body)

    @property
    def location(self) -> str:
        return self.headers.get("location", "")


@dataclass
class Client:
    port: int
    cookies: dict = field(default_factory=dict)

    def _do(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        h = dict(headers or {})
        if self.cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        conn.request(method, path, body=body, headers=h)
        resp = conn.getresponse()
        data = resp.read()
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        for k, v in resp.getheaders():
            if k.lower() == "set-cookie":
                name, _, rest = v.partition("=")
                value = rest.split(";", 1)[0]
                if "Max-Age=0" in v:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = value
        conn.close()
        return Reply(resp.status, hdrs, data)

    async def get(self, path, headers=None) -> Reply:
        return await asyncio.to_thread(self._do, "GET", path, None, headers)

    async def post(self, path, data=None, headers=None, json_body=None) -> Reply:
        h = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode()
            h["Content-Type"] = "application/json"
        else:
            body = urlencode(data or {}).encode()
            h["Content-Type"] = "application/x-www-form-urlencoded"
        return await asyncio.to_thread(self._do, "POST", path, body, h)

    async def post_file(self, path, fields: dict, name: str, filename: str, data: bytes) -> Reply:
        """A multipart/form-data POST, as a browser sends a form with a file."""
        boundary = "----cc-test-boundary-7d2f"
        parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                 for k, v in fields.items()]
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                     f"Content-Type: text/csv\r\n\r\n".encode() + data + b"\r\n")
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        return await asyncio.to_thread(self._do, "POST", path, body,
                                       {"Content-Type": f"multipart/form-data; boundary={boundary}"})

    async def login(self, username, password=PASSWORD) -> Reply:
        form = await self.get("/login")
        token = re.search(r'name="login_token" value="([^"]+)"', form.text).group(1)
        return await self.post("/login", {"username": username, "password": password, "login_token": token})

    async def csrf(self) -> str:
        return (await self.get("/api/me")).json()["csrf_token"]


@contextlib.asynccontextmanager
async def running_web(config, db, *, clock=None, queuecalls=None, gateway=None, escalation=None,
                      limits=None, timers=None):
    """The web app as the composition root builds it, on a free port, over this test's
    live view (``queuecalls``, default: an empty :class:`FakeQueueCalls`), AMI client
    (default: :class:`FakeAmi`) and complaint escalation (default: none); ``limits``/``timers``:
    the connection limits and the clock of their timers (default: the reactor's)."""
    from twisted.internet import reactor

    from callcenter.web.server import WebApp
    from recordings.web import RecordingsHttp
    from tests import support

    d = support.domain(config, clock=clock or reactor)
    app = WebApp(config, db, clock or reactor, ami=gateway or FakeAmi(clock), live=queuecalls or FakeQueueCalls(),
                 domain=d, escalation=escalation, reactor=reactor,
                 recordings=RecordingsHttp(db, settings=d.recording_settings, clock=clock or reactor))
    web = WebComponent(app, host="127.0.0.1", port=0, limits=limits, timers=timers)
    await web.start()
    try:
        yield web
    finally:
        await web.stop()


async def start_up_plan_made(app) -> None:
    """Until the staffing plan the web makes at start is kept (its SQL runs on a worker
    thread whenever the machine gets to it: a test counting statements waits for it)."""
    from tests.support.waiting import until

    await until(lambda: len(app.plans) > 0 and not app.plans.making, "the start-up staffing plan")


class FakeQueueCalls:
    """The contract of the "queuecalls" component, driven by the test."""
    name = "queuecalls"

    def __init__(self):
        self.state: dict = {}
        self.subs = []
        self.buffer = []
        self.queue_config_error = None
        self.wrapup = 0.0

    def wrapup_of(self, queue):
        return self.wrapup

    async def start(self):
        pass

    async def stop(self):
        pass

    def live(self):
        return self.state

    def subscribe(self, cb):
        self.subs.append(cb)

    def changed(self, fact=None):
        """A fact from the tracker (None: something changed that the feed re-reads)."""
        for cb in self.subs:
            cb(fact)


class SSEClient:
    """Reads server-sent events over a raw TCP connection on the loop (HTTP/1.0: no chunking)."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer
        self.status = 0

    @classmethod
    async def open(cls, port, path, cookies):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
        writer.write(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
                     f"Cookie: {cookie}\r\n\r\n".encode())
        await writer.drain()
        self = cls(reader, writer)
        status = await reader.readline()
        self.status = int(status.split()[1])
        self.headers = {}
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b""):
                break
            k, _, v = line.decode().partition(":")
            self.headers[k.strip().lower()] = v.strip()
        return self

    async def next_event(self, name=None, timeout=5.0):
        """The next event (optionally of this name) as (event, data)."""
        async def read():
            buf = b""
            while True:
                line = await self.reader.readline()
                if not line:
                    raise ConnectionError("stream closed")
                buf += line
                if buf.endswith(b"\n\n"):
                    text = buf.decode()
                    buf = b""
                    event, data = None, []
                    for ln in text.splitlines():
                        if ln.startswith("event: "):
                            event = ln[7:]
                        elif ln.startswith("data: "):
                            data.append(ln[6:])
                    if event and (name is None or event == name):
                        return event, json.loads("\n".join(data))
        return await asyncio.wait_for(read(), timeout)

    def close(self):
        self.writer.close()


FakeGateway = FakeAmi  # the one AMI test double (callcenter/ami/fake.py)
