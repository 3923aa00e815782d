"""`callcenter demo` from the command line: starts, serves the dashboard, stops cleanly."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_demo_runs_calls_and_stops_on_sigint(tmp_path):
    web, agi = free_port(), free_port()
    env = {**os.environ, "CALLCENTER_SERVICE_DATA_DIR": str(tmp_path / "demo"),
           "CALLCENTER_WEB_PORT": str(web), "CALLCENTER_AGI_PORT": str(agi)}
    env.pop("CALLCENTER_DATABASE_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "callcenter", "demo", "--scale", "120"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    try:
        out = _read_until(proc, "Ctrl-C to stop")
        assert f"dashboard: http://127.0.0.1:{web}/" in out, out
        assert "supervisor" in out
        # the dashboard answers (login page for an anonymous visitor)
        with urllib.request.urlopen(f"http://127.0.0.1:{web}/login", timeout=10) as r:
            assert r.status == 200
        # simulated callers go through the IVR into the queues; poll until calls are stored
        summary = {}
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline and not summary.get("answered"):
            time.sleep(0.5)
            summary = report(env)
        assert summary.get("answered", 0) >= 1, summary
    finally:
        proc.send_signal(signal.SIGINT)
        rest = _drain(proc)
    assert proc.returncode == 0, rest[-2000:]
    assert "stopped ami" in rest


def _drain(proc, limit: float = 30) -> str:
    """Wait for ``proc`` to exit; return what it printed that was not read yet."""
    proc.wait(timeout=limit)
    if hasattr(proc, "_lines"):
        out = []
        while True:
            line = proc._lines.get(timeout=limit)
            if line is None:
                return "".join(out)
            out.append(line)
    return proc.stdout.read()


def report(env) -> dict:
    r = subprocess.run([sys.executable, "-m", "callcenter", "report", "answer-times", "--format", "json"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["summary"]


def _read_until(proc, needle: str, limit: float = 60) -> str:
    """Lines of ``proc``'s output up to the one containing ``needle``, within ``limit`` s
    (a reader thread, so a silent process cannot hang the test)."""
    import queue
    import threading

    if not hasattr(proc, "_lines"):
        proc._lines = queue.Queue()

        def pump():
            for line in proc.stdout:
                proc._lines.put(line)
            proc._lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
    seen = []
    deadline = time.monotonic() + limit
    while True:
        try:
            line = proc._lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            line = None
        if line is None:
            raise AssertionError(f"{needle!r} not seen in:\n{''.join(seen)[-3000:]}")
        seen.append(line)
        if needle in line:
            return "".join(seen)


def test_serve_against_a_separate_pbx_and_sigterm(tmp_path):
    """`callcenter serve` (real-Asterisk mode) against the simulator in another process:
    logs in over AMI, serves, and shuts down cleanly on SIGTERM."""
    ami, web, agi = free_port(), free_port(), free_port()
    env = {**os.environ, "CALLCENTER_SERVICE_DATA_DIR": str(tmp_path / "data"),
           "CALLCENTER_AMI_PORT": str(ami), "CALLCENTER_AMI_SECRET": "bridge-secret",
           "CALLCENTER_WEB_PORT": str(web), "CALLCENTER_AGI_PORT": str(agi)}
    env.pop("CALLCENTER_DATABASE_URL", None)
    up = subprocess.run([sys.executable, "-m", "callcenter", "db", "upgrade"], env=env,
                        capture_output=True, text=True, timeout=120)
    assert up.returncode == 0, up.stderr
    pbx = subprocess.Popen([sys.executable, "-m", "callcenter", "simulator", "run", "--ami-port", str(ami),
                            "--agi-port", str(agi)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           env=env, text=True)
    try:
        _read_until(pbx, "simulated Asterisk: AMI on")
        svc = subprocess.Popen([sys.executable, "-m", "callcenter", "serve"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, env=env, text=True)
        try:
            out = _read_until(svc, "callcenter serving")
            if "AMI logged in" not in out:  # the gateway logs in in the background
                out += _read_until(svc, "AMI logged in")
            assert "bridge-secret" not in out
        finally:
            svc.send_signal(signal.SIGTERM)
            rest = _drain(svc)
        assert svc.returncode == 0, rest[-3000:]
        assert "stopped web" in rest and "stopped ami" in rest
        assert "Traceback" not in out + rest
    finally:
        pbx.send_signal(signal.SIGINT)
        _drain(pbx)
    assert pbx.returncode == 0
