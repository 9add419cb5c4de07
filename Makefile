# The two commands of the README: `make demo` (the main job) and `make test` (every test).
# Both install the Debian packages they need when run as root (scripts/ensure-deps.sh).

CARGO ?= cargo

.PHONY: all deps build release demo test unit lint clean bench fuzz deb package-test systemd-test

all: build

deps:
	@scripts/ensure-deps.sh

build: deps
	$(CARGO) build --workspace

release: deps
	$(CARGO) build --release --workspace

demo: release
	scripts/demo.sh target/release

# Unit tests, end-to-end tests through real libpam and a real credd, format and lint checks, then
# the package test: it installs the .deb on this machine, enables it with pam-auth-update for a few
# seconds and purges it (root only). On a machine you do not want changed that way, set
# CREDD_SKIP_PACKAGE_TEST=1; it then says so. Last the systemd test: the same package in a minimal
# Debian 12 booted with systemd-nspawn (root only; changes nothing here but target/systemd-test/;
# CREDD_SKIP_SYSTEMD_TEST=1 skips it).
test: build
	$(CARGO) test --workspace
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	@if [ -n "$${CREDD_SKIP_PACKAGE_TEST:-}" ]; then \
	  echo "SKIPPED package test: CREDD_SKIP_PACKAGE_TEST is set"; \
	else \
	  tests/package/install-test.sh; \
	fi
	@if [ -n "$${CREDD_SKIP_SYSTEMD_TEST:-}" ]; then \
	  echo "SKIPPED systemd test: CREDD_SKIP_SYSTEMD_TEST is set"; \
	else \
	  tests/systemd/boot-test.sh; \
	fi

clean:
	$(CARGO) clean

# Benchmarks (issue 9): release build, prints ratios measured in one run; see docs/benchmarks.md.
bench: release
	cargo bench -p credd --bench hashing
	cargo bench -p credd-e2e --bench daemon
	scripts/bench-import.sh target/release

# Coverage-guided fuzzing of the frame, request, CSV and config parsers (docs/fuzzing.md): cargo-fuzz
# on the nightly toolchain, FUZZ_SECONDS per target, one after the other; fails on any crash.
FUZZ_SECONDS ?= 600
fuzz:
	scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# The Debian package (issue 8): target/debian/credd_<version>-<revision>_amd64.deb, built by
# cargo-deb (installed from crates.io when missing) from a release build; see docs/operations.md.
deb: deps
	scripts/build-deb.sh

# Builds that package, installs it on this machine, uses it through pamtester and a real sshd, then
# removes and purges it (tests/package/install-test.sh; root only, SKIPPED otherwise, before
# building anything).
package-test:
	tests/package/install-test.sh

# The package under a real systemd (issue 20): a minimal Debian 12 built by debootstrap (cached in
# target/systemd-test/), booted with systemd-nspawn; the unit's promises checked inside
# (tests/systemd/boot-test.sh; root only, SKIPPED otherwise or when the container cannot boot).
systemd-test:
	tests/systemd/boot-test.sh
