"""queue_log and its rotated predecessors (main/logger.c naming), and when they cannot cover a span."""
from __future__ import annotations

import gzip
import os

from callcenter.queuecalls.queuelog import read_since
from callcenter.simulator.queues import QueueLog

T = 1_795_400_000  # epochs as Asterisk writes them (a `timestamp` archive is named by one)


def write(log: QueueLog, t0: int, n: int, uid: str = "1.1") -> None:
    for i in range(n):
        log.write(t0 + i, f"{uid}{i}", "consultation", "NONE", "ENTERQUEUE", "", "13800138001", 1)


def test_sequential_and_timestamp_archives_are_read_in_order(tmp_path):
    path = tmp_path / "queue_log"
    log = QueueLog(path)
    log.write(T + 900, "NONE", "NONE", "NONE", "QUEUESTART", "")
    write(log, T + 1000, 3, "a")
    assert log.rotate("sequential").name == "queue_log.0"
    write(log, T + 2000, 3, "b")
    assert log.rotate("timestamp", now=T + 2500).name == f"queue_log.{T + 2500}"
    write(log, T + 3000, 3, "c")
    span = read_since(path, T + 1500, lookback=0)
    assert span.complete, span.note
    assert [e.callid for e in span.events] == ["b0", "b1", "b2", "c0", "c1", "c2"]
    assert span.files == ["queue_log.0", f"queue_log.{T + 2500}", "queue_log"]


def test_rotate_strategy_shifts_and_gzip_keeps_the_order(tmp_path):
    path = tmp_path / "queue_log"
    log = QueueLog(path)
    for k, t0 in enumerate((1000, 2000, 3000)):
        write(log, t0, 2, "abc"[k])
        log.rotate("rotate", compress=True)
    write(log, 4000, 2, "d")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["queue_log", "queue_log.0.gz", "queue_log.1.gz",
                                                          "queue_log.2.gz"]
    with gzip.open(tmp_path / "queue_log.2.gz", "rt") as fh:
        assert fh.readline().startswith("1000|a0|")  # the oldest has the highest number
    span = read_since(path, 1000, lookback=0)
    assert span.complete, span.note
    assert [e.callid for e in span.events] == ["a0", "a1", "b0", "b1", "c0", "c1", "d0", "d1"]


def test_spans_the_files_cannot_cover_are_flagged(tmp_path):
    path = tmp_path / "queue_log"
    log = QueueLog(path)
    for t0 in (1000, 2000, 3000):
        write(log, t0, 2)
        log.rotate("sequential")
    write(log, 4000, 2)
    assert read_since(path, 2500).complete
    os.unlink(tmp_path / "queue_log.1")  # a numbered predecessor is gone
    span = read_since(path, 2500)
    assert not span.complete and "queue_log.1 is missing" in span.note
    os.unlink(tmp_path / "queue_log.0")  # the oldest now starts after the span
    span = read_since(path, 1500)
    assert not span.complete and "older files were removed" in span.note
    assert [e.t for e in span.events][:1] == [3000.0]  # what is there is returned all the same
    (tmp_path / "queue_log.5.Z").write_bytes(b"\x1f\x9d")
    assert "compress" in read_since(path, 3500).note
    big = read_since(path, 3500, max_bytes=20)
    assert not big.complete and "over" in big.note
