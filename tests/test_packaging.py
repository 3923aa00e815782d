"""The product as it ships: the wheel, installed outside the checkout, migrates and serves.

``scripts/wheel_smoke.sh`` does the work (build, fresh venv, ``db upgrade``, ``demo``,
login page + stylesheet, SIGTERM); this test runs it as part of the suite, so a
template, migration or package directory left out of the wheel fails ``.ci/run``.
It needs PyPI (or a warm pip cache) for the dependencies of the fresh venv.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_installs_into_a_clean_venv_and_runs_db_upgrade_and_demo():
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_") and k != "PYTHONPATH"}
    env["PYTHON"] = sys.executable
    # Own process group: if the script hangs, the demo it started goes down with it.
    proc = subprocess.Popen([str(ROOT / "scripts" / "wheel_smoke.sh")], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"wheel smoke did not finish within 240 s:\n{err[-6000:]}")
    assert proc.returncode == 0, f"wheel smoke failed (rc {proc.returncode}):\n{err[-6000:]}\n{out[-2000:]}"
    assert "ok: wheel callcenter-" in err
