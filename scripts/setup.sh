#!/usr/bin/env bash
# Installs what building and testing need and is missing. Idempotent; quiet when all is there.
set -euo pipefail

if ! command -v swift >/dev/null 2>&1; then
  echo "setup: the Swift toolchain (6.2 or newer) is not on PATH; install it from swift.org first" >&2
  exit 1
fi

# Debian packages the build, the tests and the benchmark use: libsystemd for the journal and
# sd_notify, zlib's headers for the HTTP sinks' gzip, a real journald (systemd) and rsyslog (with TLS and RELP) for the tests, util-linux for
# unshare, openssl for the test certificates, dpkg-dev (dpkg-shlibdeps) and binutils (strip)
# for `make deb`, lintian to check it, prometheus (promtool) and curl for the metrics tests,
# tinyproxy for the proxy tests, logrotate for the file sink's, debootstrap and
# systemd-container (systemd-nspawn) to boot the package under a real systemd, postgresql
# (initdb, postgres) for the coordination tests.
packages=(python3 time procps libsystemd-dev zlib1g-dev pkg-config systemd util-linux rsyslog rsyslog-gnutls rsyslog-relp openssl
  dpkg-dev binutils prometheus curl lintian tinyproxy logrotate debootstrap systemd-container
  postgresql)
missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
