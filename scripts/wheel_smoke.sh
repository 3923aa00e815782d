#!/usr/bin/env bash
# The product as it ships: build the wheel from this checkout, install it into a fresh
# venv outside the checkout (dependencies from PyPI), then in an empty directory run
# `callcenter db upgrade`, a short `callcenter demo` and, beside it, `callcenter serve` against
# `callcenter simulator run`; each time fetch the login page and its stylesheet, stop
# with SIGTERM, and check the process exited 0 and left nothing running.
# Run by tests/test_packaging.py (so by scripts/test.sh and .ci/run); also usable alone.
# Needs: python3 (3.11+), network access to PyPI (or a warm pip cache).
set -euo pipefail
cd "$(dirname "$0")/.."
checkout=$PWD
PY=${PYTHON:-python3}
work=$(mktemp -d "${TMPDIR:-/tmp}/callcenter-wheel-smoke.XXXXXX")
pids=()  # what this script started in the background (demo, simulator, serve)
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$work"
}
trap cleanup EXIT
log_file=  # the output shown when a step fails
fail() {
  echo "wheel_smoke: FAIL: $*" >&2
  if [ -n "$log_file" ] && [ -f "$log_file" ]; then echo "--- $(basename "$log_file"):" >&2; tail -n 40 "$log_file" >&2; fi
  exit 1
}
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
# Every tracked file under a package directory is in the wheel (code and data alike).
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
env -u PYTHONPATH "$work/venv/bin/python" -c '
import callcenter, sys
sys.exit(0 if sys.argv[1] not in callcenter.__file__ else f"imported from the checkout: {callcenter.__file__}")' "$checkout"

port() { "$work/venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
web_port=$(port); agi_port=$(port); ami_port=$(port); serve_web_port=$(port); serve_agi_port=$(port)
# Two sites side by side: the demo's, and one for `serve` against `simulator run` (run at the
# same time: each waits mostly on its own start-up)
cat >"$run_dir/cc.toml" <<EOF
[service]
data_dir = "data"
[web]
port = $web_port
[agi]
port = $agi_port
[ami]
port = $ami_port
username = "bridge"
EOF
cat >"$run_dir/serve.toml" <<EOF
[service]
data_dir = "serve-data"
[web]
port = $serve_web_port
[agi]
port = $serve_agi_port
[ami]
port = $ami_port
username = "bridge"
EOF
clean_env=(env -u PYTHONPATH -u CALLCENTER_CONFIG -u CALLCENTER_DATABASE_URL -u CALLCENTER_SERVICE_DATA_DIR
           -u CALLCENTER_WEB_PORT -u CALLCENTER_AGI_PORT -u CALLCENTER_AMI_PORT -u CALLCENTER_AMI_HOST
           -u CALLCENTER_AMI_USERNAME -u CALLCENTER_AMI_SECRET)
cc() { "${clean_env[@]}" "$work/venv/bin/callcenter" "$@"; }

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
check_web() {  # WHAT PORT: the login page, its stylesheet and its script are served
  local base="http://127.0.0.1:$2"
  fetch "$base/login" text/html 'href="/static/app.css"' || fail "$1: login page not served"
  fetch "$base/static/app.css" text/css '{' || fail "$1: stylesheet not served"
  fetch "$base/static/app.js" "" 'function' || fail "$1: script not served"
}
start_bg() {  # LOG CMD...: run directly (not through a shell function), so $! is the process itself
  local log=$1; shift
  "${clean_env[@]}" "$@" >"$log" 2>&1 &
  bg_pid=$!
  pids+=("$bg_pid")
  log_file=$log
}
wait_for() {  # PID LOG NEEDLE WHAT
  for _ in $(seq 1 600); do
    grep -q "$3" "$2" 2>/dev/null && return 0
    kill -0 "$1" 2>/dev/null || fail "$4 exited before it was ready"
    sleep 0.1
  done
  fail "$4 was not ready within 60 s (no '$3' in its output)"
}
stop_bg() {  # PID WHAT: SIGTERM; it must exit with status 0 within 15 s
  kill -TERM "$1"
  for _ in $(seq 1 150); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$1" 2>/dev/null; then fail "$2 did not stop within 15 s of SIGTERM"; fi
  local rc=0
  wait "$1" || rc=$?
  [ "$rc" -eq 0 ] || fail "$2 exited with status $rc after SIGTERM"
}
port_closed() {  # PORT WHAT
  if "$work/venv/bin/python" -c 'import socket, sys; s = socket.socket(); sys.exit(s.connect_ex(("127.0.0.1", int(sys.argv[1]))) != 0)' "$1"; then
    fail "port $1 still answers after $2 stopped"
  fi
}

step "callcenter db upgrade (both sites)"
cc --config cc.toml db upgrade >/dev/null || fail "callcenter db upgrade failed"
[ -f data/callcenter.sqlite ] || fail "db upgrade did not create data/callcenter.sqlite"
cc --config serve.toml db upgrade >/dev/null || fail "callcenter db upgrade (serve.toml) failed"
# (serve, below, refuses a database that is not at the head revision)

step "callcenter demo (web on 127.0.0.1:$web_port), and callcenter serve (web on 127.0.0.1:$serve_web_port) against callcenter simulator run (AMI on 127.0.0.1:$ami_port)"
start_bg "$work/sim.log" "$work/venv/bin/callcenter" simulator run --config serve.toml --ami-port "$ami_port" \
  --agi-port "$serve_agi_port"
sim_pid=$bg_pid
start_bg "$work/demo.log" "$work/venv/bin/callcenter" --config cc.toml demo --scale 60
demo_pid=$bg_pid
wait_for "$sim_pid" "$work/sim.log" "simulated Asterisk: AMI on" "the simulator"
clean_env+=(CALLCENTER_AMI_SECRET=bridge-secret)  # the simulator's secret, the way an operator passes it
start_bg "$work/serve.log" "$work/venv/bin/callcenter" serve --config serve.toml
serve_pid=$bg_pid

log_file="$work/demo.log"
wait_for "$demo_pid" "$work/demo.log" "Ctrl-C to stop" "the demo"
check_web "demo" "$web_port"
step "stopping the demo (SIGTERM)"
stop_bg "$demo_pid" "the demo"
port_closed "$web_port" "the demo"

log_file="$work/serve.log"
wait_for "$serve_pid" "$work/serve.log" "AMI logged in" "serve"
for _ in $(seq 1 300); do
  fetch "http://127.0.0.1:$serve_web_port/login" text/html login 2>/dev/null && break
  kill -0 "$serve_pid" 2>/dev/null || fail "serve exited"
  sleep 0.1
done
check_web "serve" "$serve_web_port"
step "stopping serve and the simulator (SIGTERM)"
stop_bg "$serve_pid" "serve"
port_closed "$serve_web_port" "serve"
log_file="$work/sim.log"
stop_bg "$sim_pid" "the simulator"
port_closed "$ami_port" "the simulator"

if pgrep -f "$work/venv/" >/dev/null; then fail "processes of the smoke venv are still running: $(pgrep -af "$work/venv/")"; fi
step "ok: wheel $(basename "$wheel") installs, migrates, serves the login page and its stylesheet under demo and serve, stops on SIGTERM"
