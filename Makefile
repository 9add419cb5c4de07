# The two commands of the README: `make demo` (the main job) and `make test` (every test).
# Both install the Debian packages they need when run as root (scripts/ensure-deps.sh).

CARGO ?= cargo

.PHONY: all deps build release demo test unit lint clean bench fuzz

all: build

deps:
	@scripts/ensure-deps.sh

build: deps
	$(CARGO) build --workspace

release: deps
	$(CARGO) build --release --workspace

demo: release
	scripts/demo.sh target/release

# Unit tests, end-to-end tests through real libpam and a real credd, then format and lint checks.
test: build
	$(CARGO) test --workspace
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean

# Benchmarks (issue 9): release build, prints ratios measured in one run; see docs/benchmarks.md.
bench:
	cargo bench -p credd --bench hashing

# Coverage-guided fuzzing of the frame, request, CSV and config parsers (docs/fuzzing.md): cargo-fuzz
# on the nightly toolchain, FUZZ_SECONDS per target, one after the other; fails on any crash.
FUZZ_SECONDS ?= 600
fuzz:
	scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)
