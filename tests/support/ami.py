"""What the gateway's parser returned, read by read: built messages, ``None`` for an event
left unbuilt, :class:`~callcenter.ami.codec.Deferred` for one needed only in some state."""
from __future__ import annotations

from callcenter.ami import codec


def record_parsed(monkeypatch) -> list:
    """Spy on :meth:`codec.Parser.feed` (the real one still runs); the list grows with what
    the gateway's parser returns (the one expecting a banner: a replay server parses with its own)."""
    parsed: list = []
    feed = codec.Parser.feed

    def spy_feed(self, data, skip=None):
        out = feed(self, data, skip)
        if self.expect_banner:
            parsed.extend(out)
        return out

    monkeypatch.setattr(codec.Parser, "feed", spy_feed)
    return parsed
