# openai-auditd — see README.md. Every target installs what it needs first (scripts/setup.sh).
SHELL := /bin/bash
SOURCES := Package.swift Sources Tests Fuzz
BIN := .build/debug
RELEASE_BIN := .build/release

.PHONY: all setup build release deb check units container fuzz-smoke integration test demo format lint fuzz bench bench-idle clean

all: build

setup:
	@scripts/setup.sh

build: setup
	swift build --build-tests

## Release binaries link the Swift runtime statically: nothing to install beside them, ~5 MB less RSS.
release: setup
	swift build -c release --static-swift-stdlib --product openai-auditd
	swift build -c release --static-swift-stdlib --product openai-audit-sim
	swift build -c release --static-swift-stdlib --product page-reader-bench
	swift build -c release --static-swift-stdlib --product http-exchange-bench

## The Debian package, dist/openai-auditd_<version>_<arch>.deb (see docs/operations.md).
deb: setup
	swift build -c release --static-swift-stdlib --product openai-auditd
	scripts/build-deb.sh

## The edit-test loop (minutes): lint, build, the unit tests (no journald, no root needed).
check: setup lint build
	set -o pipefail; swift test --skip-build --skip IntegrationTests 2>&1 | tee .build/unit-tests.log
	@scripts/count-tests.sh .build/unit-tests.log unit

## The packaged units, offline (systemd-analyze verify and security).
units: build
	scripts/check-units.sh $(BIN)/openai-auditd

## The package under a real systemd: a booted Debian 12 container (docs/operations.md, "Proven
## under systemd"). Its tree is cached outside the repository; the first run debootstraps it.
container: deb
	scripts/systemd-e2e.sh "$$(scripts/latest-deb.sh)"

## libFuzzer over the page reader and the formatters, briefly (`make fuzz` runs them longer).
fuzz-smoke: setup
	FUZZ_SECONDS=$${FUZZ_SECONDS:-20} scripts/fuzz.sh

## The built binaries as processes against real journald, rsyslog, logrotate, tinyproxy,
## promtool and the Debian package, in a private mount and PID namespace.
integration: build deb
	AUDITD_TEST_DEB="$$(scripts/latest-deb.sh)" scripts/run-tests.sh

## Everything CI runs: each part above once, in this order.
test: check units container fuzz-smoke integration

## The daemon against the bundled simulator, events on stdout. DEMO_SECONDS=N stops after N seconds.
demo: setup
	swift build --product openai-auditd
	swift build --product openai-audit-sim
	scripts/demo.sh

format:
	swift format format --in-place --recursive $(SOURCES)

lint:
	swift format lint --strict --recursive $(SOURCES)

## libFuzzer over the page reader and the syslog formatters, FUZZ_SECONDS (default 300) each (docs/fuzzing.md).
fuzz: setup
	scripts/fuzz.sh

## 200,000 events caught up by a release build; prints events/s and peak RSS (see docs/benchmark.md).
bench: release
	scripts/bench.sh

## DESIGN.md's idle budget: CPU per hour at a 60 s interval, RSS over a day's cycles (IDLE_MINUTES, default 24).
bench-idle: release
	scripts/bench-idle.sh

clean:
	rm -rf .build dist
