"""A stand-in for the AMI gateway (CONTRACTS.md API) for unit tests of the capture."""
from __future__ import annotations

import shutil
from pathlib import Path

from callcenter.ami.codec import Message


class FakeAmiError(Exception):
    pass


class FakeGateway:
    """Records actions; on MixMonitor it 'records' by copying ``wav_source`` to the file,
    mapping Asterisk's ``spool`` prefix to the local ``directory`` (like a shared mount)."""

    name = "ami"

    def __init__(self, *, spool: str = "", directory: Path | None = None, wav_source: Path | None = None,
                 refuse: bool = False, live: set[str] | None = None):
        self.sent: list[dict] = []
        self.connected = True
        self._subs, self._connect_hooks, self._disconnect = [], [], []
        self.spool, self.directory, self.wav_source = spool, directory, wav_source
        self.refuse = refuse
        self.live = live or set()

    def subscribe(self, cb):
        self._subs.append(cb)

    def on_connect(self, fn):
        self._connect_hooks.append(fn)

    def on_disconnect(self, cb):
        self._disconnect.append(cb)

    def emit(self, msg: Message, t: float) -> None:
        for cb in self._subs:
            cb(msg, t)

    async def reconnect(self) -> None:
        for fn in self._connect_hooks:
            await fn()

    async def action(self, headers, *, timeout=None):
        h = dict(headers)
        self.sent.append(h)
        aid = h.get("ActionID", f"fake-{len(self.sent)}")
        if h["Action"] == "MixMonitor":
            if self.refuse:
                raise FakeAmiError("No such channel")
            if self.wav_source is not None and self.directory is not None:
                rel = h["File"][len(self.spool):].lstrip("/")
                dest = self.directory / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(self.wav_source, dest)
            return Message.of(("Response", "Success"), ("ActionID", aid))
        if h["Action"] == "CoreShowChannels":
            items = [Message.of(("Response", "Success"), ("EventList", "start"))]
            items += [Message.of(("Event", "CoreShowChannel"), ("Uniqueid", u)) for u in sorted(self.live)]
            items.append(Message.of(("Event", "CoreShowChannelsComplete"), ("EventList", "Complete")))
            return items
        return Message.of(("Response", "Success"), ("ActionID", aid))
