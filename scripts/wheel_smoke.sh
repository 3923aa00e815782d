#!/usr/bin/env bash
# The product as it ships: build the wheel from this checkout, install it into a fresh
# venv outside the checkout (dependencies from PyPI), then in an empty directory run
# `callcenter db upgrade` and a short `callcenter demo`, fetch the login page and its
# stylesheet, stop the demo with SIGTERM and check it exited cleanly.
# Run by tests/test_packaging.py (so by scripts/test.sh and .ci/run); also usable alone.
# Needs: python3 (3.11+), network access to PyPI (or a warm pip cache).
set -euo pipefail
cd "$(dirname "$0")/.."
checkout=$PWD
PY=${PYTHON:-python3}
work=$(mktemp -d "${TMPDIR:-/tmp}/callcenter-wheel-smoke.XXXXXX")
demo_pid=
cleanup() {
  if [ -n "$demo_pid" ] && kill -0 "$demo_pid" 2>/dev/null; then
    kill -TERM "$demo_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$demo_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$demo_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "wheel_smoke: FAIL: $*" >&2; [ -f "$work/demo.log" ] && { echo "--- demo output:" >&2; tail -n 40 "$work/demo.log" >&2; }; exit 1; }
step() { echo "wheel_smoke: [$SECONDS s] $*" >&2; }

step "building the wheel from a clean copy of the checkout"
# Only the files git knows (tracked, or new and not ignored): a stale callcenter.egg-info
# or build/ in the checkout would otherwise put files into the wheel that a clone lacks.
mkdir "$work/src"
git ls-files -z --cached --others --exclude-standard | "$PY" -c '
import os, shutil, sys
for p in filter(None, sys.stdin.buffer.read().decode().split("\0")):
    if os.path.isfile(p):
        os.makedirs(os.path.join(sys.argv[1], os.path.dirname(p)), exist_ok=True)
        shutil.copy2(p, os.path.join(sys.argv[1], p))' "$work/src"
"$PY" -m pip wheel -q --no-deps -w "$work/dist" "$work/src" >"$work/build.log" 2>&1 \
  || { cat "$work/build.log" >&2; fail "pip wheel failed"; }
wheel=$(ls "$work"/dist/callcenter-*.whl)
for f in callcenter/store/migrations/env.py callcenter/store/migrations/script.py.mako \
         callcenter/ami/gateway.py callcenter/web/templates/login.html callcenter/web/static/app.css \
         ivr_flows/hotline.yaml ivr_flows/revisit_survey.yaml dialer/plans.yaml; do
  "$PY" -c 'import sys, zipfile; sys.exit(sys.argv[2] not in zipfile.ZipFile(sys.argv[1]).namelist())' \
    "$wheel" "$f" || fail "$f is not in $(basename "$wheel")"
done
# Every tracked file under a package directory is either Python or listed in the wheel.
missing=$(git ls-files callcenter ivr_flows dialer recordings | "$PY" -c '
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
print(" ".join(p for p in sys.stdin.read().split() if p not in names))' "$wheel")
[ -z "$missing" ] || fail "tracked package files missing from the wheel: $missing"

step "installing it into a fresh venv ($work/venv)"
# The builder's pip installs into the new venv (no ensurepip copy); no byte-compiling:
# both only cost time here.
"$PY" -m venv --without-pip "$work/venv"
"$PY" -m pip --python "$work/venv/bin/python" install -q --no-compile --disable-pip-version-check "$wheel" \
    >"$work/install.log" 2>&1 \
  || { cat "$work/install.log" >&2; fail "pip install of the wheel failed"; }

run_dir="$work/site"
mkdir -p "$run_dir"
cd "$run_dir"  # nowhere near the checkout: nothing can be imported from it
env -u PYTHONPATH -u CALLCENTER_CONFIG -u CALLCENTER_DATABASE_URL "$work/venv/bin/python" -c '
import callcenter, sys
sys.exit(0 if sys.argv[1] not in callcenter.__file__ else f"imported from the checkout: {callcenter.__file__}")' "$checkout"

port() { "$work/venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
web_port=$(port); agi_port=$(port)
cat >"$run_dir/cc.toml" <<EOF
[service]
data_dir = "data"
[web]
port = $web_port
[agi]
port = $agi_port
EOF
clean_env=(env -u PYTHONPATH -u CALLCENTER_CONFIG -u CALLCENTER_DATABASE_URL -u CALLCENTER_SERVICE_DATA_DIR
           -u CALLCENTER_WEB_PORT -u CALLCENTER_AGI_PORT)
cc() { "${clean_env[@]}" "$work/venv/bin/callcenter" "$@"; }

step "callcenter db upgrade"
cc --config cc.toml db upgrade >/dev/null || fail "callcenter db upgrade failed"
[ -f data/callcenter.sqlite ] || fail "db upgrade did not create data/callcenter.sqlite"
cc db status --config cc.toml | grep -q "up to date" || fail "db status is not up to date after upgrade"

step "callcenter demo (web on 127.0.0.1:$web_port)"
# Started directly (not through the cc function), so $! is the demo itself, not a subshell.
"${clean_env[@]}" "$work/venv/bin/callcenter" --config cc.toml demo --scale 60 >"$work/demo.log" 2>&1 &
demo_pid=$!
for _ in $(seq 1 200); do
  grep -q "Ctrl-C to stop" "$work/demo.log" 2>/dev/null && break
  kill -0 "$demo_pid" 2>/dev/null || fail "the demo exited before it was ready"
  sleep 0.1
done
grep -q "Ctrl-C to stop" "$work/demo.log" || fail "the demo did not become ready within 20 s"
fetch() {  # URL EXPECTED-CONTENT-TYPE NEEDLE: status 200, content type and a piece of the body
  "$work/venv/bin/python" - "$@" <<'PYEOF'
import sys, urllib.request
url, ctype, needle = sys.argv[1:]
with urllib.request.urlopen(url, timeout=10) as r:
    body = r.read().decode()
    got = r.headers.get("Content-Type", "")
    if r.status != 200 or not got.startswith(ctype) or needle not in body:
        sys.exit(f"{url}: status {r.status}, {got!r}, {needle!r} {'found' if needle in body else 'missing'}")
PYEOF
}
base="http://127.0.0.1:$web_port"
fetch "$base/login" text/html 'href="/static/app.css"' || fail "login page not served"
fetch "$base/static/app.css" text/css '{' || fail "stylesheet not served"
fetch "$base/static/app.js" "" 'function' || fail "script not served"

step "stopping the demo (SIGTERM)"
kill -TERM "$demo_pid"
for _ in $(seq 1 150); do kill -0 "$demo_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$demo_pid" 2>/dev/null; then fail "the demo did not stop within 15 s of SIGTERM"; fi
rc=0; wait "$demo_pid" || rc=$?
demo_pid=
[ "$rc" -eq 0 ] || fail "the demo exited with status $rc after SIGTERM"
if pgrep -f "$work/venv/" >/dev/null; then fail "processes of the smoke venv are still running: $(pgrep -af "$work/venv/")"; fi
if "$work/venv/bin/python" -c 'import socket, sys; s = socket.socket(); sys.exit(s.connect_ex(("127.0.0.1", int(sys.argv[1]))) != 0)' "$web_port"; then
  fail "port $web_port still answers after the demo stopped"
fi
step "ok: wheel $(basename "$wheel") installs, migrates, serves the login page and its stylesheet, stops on SIGTERM"
