#!/usr/bin/env bash
# Set up everything the explorer and its tests need: Debian's graphviz, bubblewrap, chromium,
# redis-server and nginx, a virtual environment in .venv with the CPU build of torch, and the
# package with its test extras.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v dot >/dev/null 2>&1 || need_apt+=(graphviz)
# rsvg-convert draws PNG, PDF and the pages of decks (Pango finds Chinese glyphs)
command -v rsvg-convert >/dev/null 2>&1 || need_apt+=(librsvg2-bin)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
# the jail around the workers
command -v bwrap >/dev/null 2>&1 || need_apt+=(bubblewrap)
# curl and jq run the walkthrough of docs/clients/curl.md in the tests
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v jq >/dev/null 2>&1 || need_apt+=(jq)
# Redis and nginx: the scale-out tests run a shared Redis and two servers behind nginx
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_apt+=(nginx)
# a font with Chinese glyphs, for the zh-CN interface and exports
fc-list 2>/dev/null | grep -qiE "wqy|noto sans cjk" || need_apt+=(fonts-wqy-microhei)
if [ ${#need_apt[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    echo "setup: installing ${need_apt[*]} from Debian" >&2
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends \
      "${need_apt[@]}" >/dev/null
  else
    echo "setup: please install ${need_apt[*]} (no apt-get here)" >&2
  fi
fi

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip 2>/dev/null || true
# torch first and pinned: a bare 'torch' would pull the multi-GB CUDA build.
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[test,bench]"
# eslint and prettier for static/js, at the versions pinned in scripts/vendor (the tests run them)
if command -v npm >/dev/null 2>&1; then
  (cd scripts/vendor && npm ci --no-audit --no-fund --ignore-scripts >/dev/null)
else
  echo "setup: no npm here: the JavaScript lint and format tests will be skipped" >&2
fi
echo "setup: ready (.venv)" >&2
