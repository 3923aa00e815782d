"""The AMI test double for unit tests of the capture: MixMonitor 'records' a file."""
from __future__ import annotations

import shutil
from pathlib import Path

from callcenter.ami.codec import Message
from callcenter.ami.fake import FakeAmi


class FakeAmiError(Exception):
    pass


class FakeGateway(FakeAmi):
    """On MixMonitor it 'records' by copying ``wav_source`` to the file, mapping Asterisk's
    ``spool`` prefix to the local ``directory`` (like a shared mount); ``refuse`` answers
    as Asterisk does for a channel that is gone."""

    def __init__(self, *, spool: str = "", directory: Path | None = None, wav_source: Path | None = None,
                 refuse: bool = False, live: set[str] | None = None):
        super().__init__(live=live or set())
        self.spool, self.directory, self.wav_source = spool, directory, wav_source
        self.refuse = refuse

    async def action(self, headers, *, timeout=None):
        h = dict(headers)
        if h["Action"] != "MixMonitor":
            return await super().action(h, timeout=timeout)
        self.sent.append(h)
        if self.refuse:
            raise FakeAmiError("No such channel")
        if self.wav_source is not None and self.directory is not None:
            rel = h["File"][len(self.spool):].lstrip("/")
            dest = self.directory / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(self.wav_source, dest)
        return Message.of(("Response", "Success"), ("ActionID", h.get("ActionID", f"fake-{len(self.sent)}")))
