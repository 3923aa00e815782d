#!/usr/bin/env bash
# Create .venv and install the project (and, with --test, what the tests need).
# Idempotent: re-running only installs what changed. Used by demo.sh and test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "bootstrap: Python 3.11+ is required (found: $("$PY" --version 2>&1))" >&2; exit 1
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.installed-$(cat setup.cfg pyproject.toml | sha256sum | cut -c1-16)-${1:-run}
if [ ! -f "$stamp" ]; then
  if [ "${1:-}" = "--test" ]; then extra='.[test]'; else extra='.[postgresql]'; fi
  echo "bootstrap: installing the project into .venv ($extra)" >&2
  if ! { .venv/bin/python -m pip install -q --upgrade pip && .venv/bin/python -m pip install -q -e "$extra" --config-settings editable_mode=compat; } \
      >.venv/install.log 2>&1; then
    cat .venv/install.log >&2; echo "bootstrap: pip install failed (log above)" >&2; exit 1
  fi
  .venv/bin/python -c 'import callcenter, panoramisk, twisted, sqlalchemy' 
  touch "$stamp"
fi
if [ "${1:-}" = "--test" ]; then
  # System packages for the browser test and prompt rendering (Debian).
  need=()
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
  command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
  command -v sox >/dev/null 2>&1 || need+=(sox)
  command -v nginx >/dev/null 2>&1 || need+=(nginx)   # the TLS reverse-proxy test (docs/ops)
  # Chinese glyphs in the browser test's screenshots (without a CJK font they are boxes)
  fc-list :lang=zh family 2>/dev/null | grep -q . || need+=(fonts-noto-cjk)
  if [ ${#need[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}") >/dev/null 2>&1 \
      || echo "bootstrap: could not install ${need[*]} (tests that need them will say so)" >&2
  elif [ ${#need[@]} -gt 0 ]; then
    echo "bootstrap: missing ${need[*]}; install them (Debian: sudo apt-get install ${need[*]})" >&2
  fi
fi
