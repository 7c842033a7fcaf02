#!/usr/bin/env bash
# Prints the newest Debian package `make deb` built for this machine's architecture.
set -euo pipefail
cd "$(dirname "$0")/.."
deb=$(ls -t dist/openai-auditd_*_"$(dpkg --print-architecture)".deb 2>/dev/null | head -1)
[ -n "$deb" ] || { echo "latest-deb: no package in dist/ (make deb builds it)" >&2; exit 1; }
echo "$deb"
