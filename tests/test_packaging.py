"""The product as it ships: the wheel, installed outside the checkout, migrates and serves.

``scripts/wheel_smoke.sh`` does the work (build, fresh venv, ``db upgrade``, ``demo``,
login page + stylesheet, SIGTERM); this test runs it as part of the suite, so a
template, migration or package directory left out of the wheel fails ``.ci/run``.
It needs PyPI (or a warm pip cache) for the dependencies of the fresh venv.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_installs_into_a_clean_venv_and_runs_db_upgrade_and_demo():
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_") and k != "PYTHONPATH"}
    env["PYTHON"] = sys.executable
    r = subprocess.run([str(ROOT / "scripts" / "wheel_smoke.sh")], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, f"wheel smoke failed (rc {r.returncode}):\n{r.stderr[-6000:]}\n{r.stdout[-2000:]}"
    assert "wheel_smoke: [" in r.stderr and "ok: wheel callcenter-" in r.stderr
