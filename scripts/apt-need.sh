#!/usr/bin/env bash
# Install a Debian package when a command is missing: scripts/apt-need.sh COMMAND_OR_PATH [PACKAGE].
set -euo pipefail

cmd="$1" pkg="${2:-$1}"
if [[ -x "$cmd" ]] || { [[ "$cmd" != */* ]] && command -v "$cmd" >/dev/null 2>&1; }; then
  exit 0
fi
if [[ "$(id -u)" != 0 ]]; then
  echo "error: '$cmd' is missing; install the Debian package '$pkg' (sudo apt-get install -y $pkg)" >&2
  exit 1
fi
echo ">> installing Debian package $pkg (for $cmd)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq "$pkg" >/dev/null
