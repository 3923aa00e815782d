"""A bounded schemathesis run against the OpenAPI document (issue 16.7): no 5xx, and every
status code answered is declared.  Deterministic (fixed seed, deterministic generation),
a few examples per operation, as a supervisor with a valid CSRF token."""
from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from twisted.internet.task import Clock

from tests.support.web import Client, FakeQueueCalls, add_users, running_web

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
EXAMPLES = int(os.environ.get("CC_SCHEMATHESIS_EXAMPLES", "2"))


async def test_api_conforms_to_its_openapi_document(config, db, tmp_path):
    add_users(db)
    clock = Clock()
    clock.advance(1_800_000_000)
    async with running_web(config, db, clock=clock, queuecalls=FakeQueueCalls()) as web:
        c = Client(web.port)
        assert (await c.login("sup1")).status == 303
        csrf = await c.csrf()
        doc = (await c.get("/api/openapi.json")).json()
        spec = tmp_path / "openapi.json"
        spec.write_text(json.dumps(doc))
        cookie = "; ".join(f"{k}={v}" for k, v in c.cookies.items())
        proc = await asyncio.create_subprocess_exec(
            str(SCHEMATHESIS), "run", str(spec), "--url", f"http://127.0.0.1:{web.port}",
            "-H", f"Cookie: {cookie}", "-H", f"X-CSRF-Token: {csrf}",
            "--checks", "not_a_server_error,status_code_conformance",
            "--max-examples", str(EXAMPLES), "--seed", "16", "--generation-deterministic", "--no-shrink",
            "--workers", "1", "--request-timeout", "10", "--max-redirects", "0",
            "--exclude-path", "/logout", "--exclude-path-regex", "^/events/",
            "--phases", os.environ.get("CC_SCHEMATHESIS_PHASES", "fuzzing"), "--warnings", "off",
            cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "SCHEMATHESIS_HOOKS": "", "NO_COLOR": "1"})
        out, _ = await asyncio.wait_for(proc.communicate(), 240)
    text = out.decode("utf-8", "replace")
    assert proc.returncode == 0, text[-6000:]
