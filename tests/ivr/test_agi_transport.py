"""The FastAGI connection protocol (``ivr_flows.agi_transport``) keeps the streams' guarantees:
a flooding peer is held back by TCP (reading pauses above the limit), a clean end reads as
``b""``, a reset raises, and ``drain`` waits for a peer that does not read, then fails once
the connection is gone."""
from __future__ import annotations

import asyncio
import socket

import pytest

from ivr_flows.agi_transport import AgiConnection


async def _serve(handler, limit=64 * 1024):
    conns: list[AgiConnection] = []

    def factory():
        conn = AgiConnection(handler, limit=limit)
        conns.append(conn)
        return conn
    server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], conns


async def test_reading_pauses_above_the_limit_and_resumes_when_read():
    go = asyncio.Event()
    got = bytearray()

    async def handler(reader, writer):
        await go.wait()
        while len(got) < 1_000_000:
            got.extend(await reader.read(65536))
        writer.close()

    server, port, conns = await _serve(handler)
    try:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"x" * 1_000_000)
        for _ in range(200):
            await asyncio.sleep(0.01)
            if conns and not conns[0].transport.is_reading():
                break
        assert not conns[0].transport.is_reading()   # held back, not buffered without bound
        assert len(conns[0]._buf) < 64 * 1024 + 300_000
        go.set()
        await asyncio.wait_for(w.drain(), 5)
        assert await asyncio.wait_for(r.read(), 5) == b""
        assert len(got) == 1_000_000 and set(got) == {ord("x")}
        w.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_clean_end_reads_empty_and_reset_raises():
    outcome: list = []

    async def handler(reader, writer):
        try:
            outcome.append(await reader.read(10))
            outcome.append(await reader.read(10))
        except ConnectionError as exc:
            outcome.append(type(exc))

    server, port, _ = await _serve(handler)
    try:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"abc")
        w.write_eof()
        for _ in range(200):
            if len(outcome) == 2:
                break
            await asyncio.sleep(0.01)
        assert outcome == [b"abc", b""]
        w.close()
        outcome.clear()
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.sendall(b"abc")
        await asyncio.sleep(0.05)
        sock.close()  # linger 0: an RST, not a FIN
        for _ in range(200):
            if len(outcome) == 2:
                break
            await asyncio.sleep(0.01)
        assert outcome == [b"abc", ConnectionResetError]
    finally:
        server.close()
        await server.wait_closed()


async def test_drain_waits_for_a_peer_that_does_not_read_then_fails_when_it_is_gone():
    state: dict = {}

    async def handler(reader, writer):
        writer.transport.set_write_buffer_limits(high=16 * 1024)
        chunk = b"y" * 65536
        try:
            for _ in range(1000):  # far more than the socket buffers hold
                writer.write(chunk)
                state["written"] = state.get("written", 0) + 1
                await writer.drain()
        except ConnectionError as exc:
            state["error"] = type(exc)

    server, port, conns = await _serve(handler)
    try:
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        for _ in range(100):
            await asyncio.sleep(0.01)
        stuck = state["written"]
        assert stuck < 1000                    # waiting in drain, not writing without bound
        await asyncio.sleep(0.2)
        assert state["written"] == stuck and "error" not in state
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()
        await asyncio.wait_for(conns[0].task, 5)
        assert state["error"] in (ConnectionResetError, BrokenPipeError)
    finally:
        server.close()
        await server.wait_closed()
