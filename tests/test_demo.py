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
    lines = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("Ctrl-C to stop"):
                break
        out = "".join(lines)
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
        rest, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, rest[-2000:]
    assert "stopped ami" in rest


def report(env) -> dict:
    r = subprocess.run([sys.executable, "-m", "callcenter", "report", "answer-times", "--format", "json"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["summary"]
