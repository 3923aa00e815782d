"""The faster Parser.feed keeps the framing rules: any split, CRLF or LF, stray blank lines."""
from __future__ import annotations

import pytest

from callcenter.ami.codec import Parser, ProtocolError
from callcenter.ami.tracefile import read_ami, traces_dir

ODD = (b"Asterisk Call Manager/11.0.0\r\n\r\nResponse: Success\r\nMessage: a: b\r\nKey:x\r\n"
       b"AccountCode: \r\nBare line\r\nK:abc: def\r\n\r\n\r\n\r\nEvent: X\nCallerIDName: \xe7\x8e\x8b\n\n")
WANT = [[("Response", "Success"), ("Message", "a: b"), ("Key", "x"), ("AccountCode", ""),
         ("", "Bare line"), ("K", "abc: def")], [("Event", "X"), ("CallerIDName", "王")]]


@pytest.mark.parametrize("step", [1, 2, 3, 7, 1000])
def test_any_split_gives_the_same_messages(step):
    p = Parser(expect_banner=True)
    out = []
    for i in range(0, len(ODD), step):
        out += p.feed(ODD[i:i + step])
    assert p.banner == "Asterisk Call Manager/11.0.0"
    assert [m.headers for m in out] == WANT


def test_trace_stream_parses_to_the_recorded_messages():
    tr = read_ami(traces_dir() / "08-queue-status.ami")
    p = Parser(expect_banner=True)
    got = []
    data = tr.stream()
    for i in range(0, len(data), 333):
        got += p.feed(data[i:i + 333])
    assert [m.headers for m in got] == [e.message.headers for e in tr.received]


def test_runaway_message_is_refused():
    p = Parser()
    with pytest.raises(ProtocolError):
        p.feed(b"Event: X\r\nData: " + b"x" * (1 << 20) + b"\r\n")
