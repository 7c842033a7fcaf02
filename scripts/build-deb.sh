#!/usr/bin/env bash
# Builds dist/openai-auditd_<version>_<arch>.deb with dpkg-deb from the release binary (made
# by `make release`). No network: everything comes from this tree and the build.
#
# The package holds the binary, both units, the example configuration as the conffile
# /etc/openai-auditd/config.yaml, the journald catalog, a man page generated from the
# command line's own help, and the docs. docs/operations.md lists the same files; the
# package test compares the two.
set -euo pipefail
cd "$(dirname "$0")/.."

binary=.build/release/openai-auditd
[ -x "$binary" ] || { echo "build-deb: $binary is missing; run 'make release' first" >&2; exit 1; }
version=$(sed -n 's/.*static let current = "\(.*\)".*/\1/p' Sources/AuditShipper/Service/AuditShipperVersion.swift)
[ -n "$version" ] || { echo "build-deb: cannot read the version from AuditShipperVersion.swift" >&2; exit 1; }
built=$("$binary" --version)
[ "$built" = "$version" ] || { echo "build-deb: $binary says '$built', the source says '$version'; rebuild" >&2; exit 1; }
arch=$(dpkg --print-architecture)
package=openai-auditd
out=dist/${package}_${version}_${arch}.deb

stage=$(mktemp -d /tmp/auditd-deb.XXXXXX)
trap 'rm -rf "$stage"' EXIT
root=$stage/root
umask 022

install -D -m 0755 "$binary" "$root/usr/bin/openai-auditd"
strip --strip-unneeded "$root/usr/bin/openai-auditd"
install -D -m 0644 packaging/openai-auditd.service "$root/lib/systemd/system/openai-auditd.service"
install -D -m 0644 packaging/openai-auditd@.service "$root/lib/systemd/system/openai-auditd@.service"
install -D -m 0644 config/config.example.yaml "$root/etc/openai-auditd/config.yaml"
install -D -m 0644 packaging/logrotate/openai-auditd "$root/etc/logrotate.d/openai-auditd"
install -D -m 0644 packaging/openai-auditd.catalog "$root/usr/lib/systemd/catalog/openai-auditd.catalog"
install -D -m 0644 packaging/prometheus/openai-auditd.rules.yml \
  "$root/usr/share/openai-auditd/prometheus/openai-auditd.rules.yml"
install -D -m 0644 packaging/grafana/openai-auditd.json "$root/usr/share/openai-auditd/grafana/openai-auditd.json"
# The detection rules the daemon reads by default (detections.builtin_rules).
install -d -m 0755 "$root/usr/share/openai-auditd/rules"
install -m 0644 packaging/rules/*.yml "$root/usr/share/openai-auditd/rules/"
install -d -m 0755 "$root/usr/share/man/man8"
python3 scripts/make-manpage.py "$root/usr/bin/openai-auditd" | gzip -9n > "$root/usr/share/man/man8/openai-auditd.8.gz"
# Whoever publishes the package sets DEB_MAINTAINER; example.org is a placeholder.
maintainer=${DEB_MAINTAINER:-openai-auditd maintainers <openai-auditd@example.org>}
doc=$root/usr/share/doc/$package
install -D -m 0644 README.md "$doc/README.md"
install -D -m 0644 docs/operations.md "$doc/operations.md"
install -D -m 0644 config/config.example.yaml "$doc/examples/config.example.yaml"
install -D -m 0644 packaging/debian/copyright "$doc/copyright"
# What lintian reports that is true but intended, each with its reason (see the file).
install -D -m 0644 packaging/debian/lintian-overrides "$root/usr/share/lintian/overrides/$package"
printf '%s (%s) stable; urgency=medium\n\n  * Release %s.\n\n -- %s  %s\n' \
  "$package" "$version" "$version" "$maintainer" "$(date -R -d @"${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}")" \
  | gzip -9n > "$doc/changelog.gz"

# The shared libraries the binary links (the Swift runtime is static): libc, libsystemd, ...
mkdir -p "$stage/debian"
printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$package" "$package" > "$stage/debian/control"
depends=$(cd "$stage" && dpkg-shlibdeps -O -e root/usr/bin/openai-auditd 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || { echo "build-deb: dpkg-shlibdeps found no dependencies" >&2; exit 1; }

install -d -m 0755 "$root/DEBIAN"
for script in postinst prerm postrm; do
  install -m 0755 "packaging/debian/$script" "$root/DEBIAN/$script"
done
printf '%s\n' /etc/openai-auditd/config.yaml /etc/logrotate.d/openai-auditd > "$root/DEBIAN/conffiles"
cat > "$root/DEBIAN/control" <<EOF
Package: $package
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Depends: $depends, systemd, init-system-helpers (>= 1.54~)
Section: admin
Priority: optional
Homepage: https://github.com/openai-auditd/openai-auditd
Description: ship an OpenAI organization's audit log to the journal, syslog or a file
 openai-auditd polls the OpenAI Admin API's audit log and delivers every event
 once, oldest first, to the systemd journal (with fields to match on), to
 syslog (RFC 5424/3164, JSON, CEF or LEEF; unix, UDP, TCP or TLS), to a file
 that a SIEM agent tails (rotated by logrotate) or to standard output. It
 keeps its position in a state file, survives restarts and upstream failures
 without losing or repeating events, and runs as a hardened systemd service.
 See /usr/share/doc/openai-auditd/operations.md.
EOF

mkdir -p dist
rm -f "$out"
dpkg-deb --root-owner-group -Zxz --build "$root" "$out" > /dev/null
echo "build-deb: $out ($(du -h "$out" | cut -f1))"
